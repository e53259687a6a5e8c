// `rewind serve` and `rewind doctor` as real processes: the listening line, graceful SIGTERM with a
// request in flight, refusing a public bind without keys, doctor's exit codes on both stores, and
// several server processes on one PostgreSQL schema ingesting overlapping batches side by side.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { after, describe, test } from 'node:test';
import { type BlobHash, blobHashOf, type RewindEvent } from '@rewind/schema';
import { buildStream, newNamespace, simpleRunPlan } from '@rewind/store/contract';
import { BACKENDS, postJson, seededRandom } from '../packages/server/src/testing/backends.ts';
import { runRewind, startServe } from './rewind-cli.ts';

const GOLDEN = new URL('../fixtures/traces/v1/pending-blobs/', import.meta.url);

function goldenPending(): { events: RewindEvent[]; blobs: Map<BlobHash, Uint8Array> } {
  const events = readFileSync(new URL('events.jsonl', GOLDEN), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as RewindEvent);
  const blobs = new Map<BlobHash, Uint8Array>();
  for (const hex of readdirSync(new URL('blobs/sha256/', GOLDEN)))
    blobs.set(`sha256:${hex}`, readFileSync(new URL(`blobs/sha256/${hex}`, GOLDEN)));
  return { events, blobs };
}

describe('rewind serve', () => {
  const cleanups: Array<() => Promise<void>> = [];
  after(async () => {
    for (const cleanup of cleanups) await cleanup();
  });

  test('prints the listening line, serves, and on SIGTERM finishes the request in flight, closes the store and exits 0', async () => {
    const opened = await BACKENDS[0]!.open();
    await opened.store.close();
    cleanups.push(opened.cleanup);
    const serve = await startServe(['--store', opened.location]);
    assert.match(serve.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const stream = buildStream([simpleRunPlan(3)], newNamespace());
    const body = Buffer.from(JSON.stringify({ events: stream.events }));
    const { port } = new URL(serve.url);
    // A request in flight: half its body sent before SIGTERM, the rest after.
    const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/v1/events',
          headers: { 'content-type': 'application/json', 'content-length': body.length },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      req.on('error', reject);
      req.write(body.subarray(0, 100));
      setTimeout(() => {
        serve.child.kill('SIGTERM');
        setTimeout(() => req.end(body.subarray(100)), 300);
      }, 200);
    });
    const response = await answer;
    assert.equal(response.status, 200, response.body);
    assert.equal((JSON.parse(response.body) as { accepted: number }).accepted, 8);
    assert.equal(await serve.exited, 0);
    // The request was answered after the server began stopping, and before it stopped.
    const at = (predicate: (line: Record<string, unknown>) => boolean) => serve.lines.findIndex(predicate);
    const stopping = at((line) => line.msg === 'stopping');
    const answered = at(
      (line) => line.msg === 'request' && line.route === 'POST /v1/events' && line.status === 200,
    );
    const stopped = at((line) => line.msg === 'stopped');
    assert.ok(stopping !== -1 && stopping < answered && answered < stopped, JSON.stringify(serve.lines));
    // The events are in the store the server closed.
    const show = await runRewind(['show', stream.runIds[0]!, '--json', '--store', opened.location]);
    assert.equal(show.code, 3, show.stderr); // its payload blobs were never uploaded
    assert.equal((JSON.parse(show.stdout) as { steps: unknown[] }).steps.length, 3);
  });

  test('refuses to listen on 0.0.0.0 without keys (exit 2, says what to do); starts with keys from the environment', async () => {
    const opened = await BACKENDS[0]!.open();
    await opened.store.close();
    cleanups.push(opened.cleanup);
    const refused = await runRewind([
      'serve',
      '--host',
      '0.0.0.0',
      '--port',
      '0',
      '--store',
      opened.location,
    ]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /refusing to listen on 0\.0\.0\.0 without API keys.*--ingest-key/);
    const serve = await startServe(['--host', '0.0.0.0', '--store', opened.location], {
      env: { REWIND_INGEST_KEYS: 'k-ingest-1, k-ingest-2', REWIND_READ_KEYS: 'k-read' },
    });
    const local = serve.url.replace('0.0.0.0', '127.0.0.1');
    assert.equal((await fetch(`${local}/v1/runs`)).status, 401);
    assert.equal(
      (await fetch(`${local}/v1/runs`, { headers: { authorization: 'Bearer k-read' } })).status,
      200,
    );
    assert.equal(
      (await postJson(`${local}/v1/events`, { events: [] }, { authorization: 'Bearer k-ingest-2' })).status,
      200,
    );
    serve.child.kill('SIGINT');
    assert.equal(await serve.exited, 0);
  });

  test('bad flags are usage errors', async () => {
    for (const args of [['--port', '70000'], ['--port', 'x'], ['extra']]) {
      const result = await runRewind(['serve', ...args]);
      assert.equal(result.code, 2, args.join(' '));
      assert.match(result.stderr, /^rewind: /);
    }
  });
});

for (const backend of BACKENDS) {
  describe(`rewind doctor on ${backend.name}`, () => {
    test('lists every run’s pending artifacts with where they are needed (exit 3), and exit 0 once uploaded', async () => {
      const opened = await backend.open();
      try {
        const { events, blobs } = goldenPending();
        const clean = buildStream([simpleRunPlan(1)], newNamespace());
        await opened.store.append([...events, ...clean.events]);
        const runId = events[0]!.runId;
        const before = await runRewind([
          'doctor',
          '--store',
          opened.location,
          '--blobs',
          opened.blobs,
          '--json',
        ]);
        assert.equal(before.code, 3, before.stderr);
        const report = JSON.parse(before.stdout) as {
          checkedRuns: number;
          pendingArtifacts: number;
          runs: Array<{ runId: string; pendingArtifacts: Array<{ hash: string; where: string }> }>;
        };
        assert.equal(report.checkedRuns, 2);
        assert.deepEqual(report.runs.map((run) => run.runId).sort(), [runId, clean.runIds[0]].sort());
        const text = await runRewind(['doctor', '--store', opened.location, '--blobs', opened.blobs]);
        assert.equal(text.code, 3);
        assert.match(text.stdout, new RegExp(`run ${runId} \\(summarizer, ok\\): \\d+ pending artifacts`));
        assert.match(text.stdout, /^ {2}run input: sha256:[0-9a-f]{64}$/m);

        for (const [hash, bytes] of blobs) await opened.store.blobs.putVerified(hash, bytes);
        const partly = JSON.parse(
          (await runRewind(['doctor', '--store', opened.location, '--blobs', opened.blobs, '--json'])).stdout,
        ) as typeof report;
        const golden = partly.runs.find((run) => run.runId === runId)!;
        // The trace leaves out one response and one payload part on purpose.
        assert.equal(golden.pendingArtifacts.length, 2, JSON.stringify(golden));
        assert.ok(golden.pendingArtifacts.every((p) => /^step \d+ (request|response)$/.test(p.where)));

        // The golden run's two missing blobs cannot be made (they are named by hash): a store holding
        // only the contract run, with the blobs its refs name (hashes of these texts), gives exit 0.
        const texts = ['input 0', 'output 0', 'output part 0', 'tape 0', 'request 0.0', 'response 0.0'];
        const cleanOnly = await backend.open();
        try {
          await cleanOnly.store.append(clean.events);
          for (const text of texts)
            await cleanOnly.store.blobs.putVerified(blobHashOf(text), new TextEncoder().encode(text));
          const ok = await runRewind(['doctor', '--store', cleanOnly.location, '--blobs', cleanOnly.blobs]);
          assert.equal(ok.code, 0, ok.stdout + ok.stderr);
          assert.match(ok.stdout, /no pending artifacts: every blob the 1 run in .* refer to is stored/);
        } finally {
          await cleanOnly.cleanup();
        }
      } finally {
        await opened.cleanup();
      }
    });
  });
}

describe('several rewind serve processes on one PostgreSQL schema', () => {
  test('ingesting overlapping batches side by side stores every event exactly once', async () => {
    const opened = await BACKENDS[1]!.open();
    try {
      const servers = await Promise.all(
        [0, 1, 2].map(() => startServe(['--store', opened.location, '--blobs', opened.blobs])),
      );
      const plan = Array.from({ length: 8 }, (_, i) => simpleRunPlan(60, { startOffsetS: i }));
      const stream = buildStream(plan, newNamespace());
      const all = stream.events;
      // Each server gets every event, in its own order and batching, so every event arrives three
      // times at once through different processes.
      const totals = await Promise.all(
        servers.map(async (server, s) => {
          const next = seededRandom(s + 1);
          const order = [...all].sort(() => next() - 0.5);
          let accepted = 0;
          let duplicates = 0;
          const sends: Promise<void>[] = [];
          for (let at = 0; at < order.length; ) {
            const size = 20 + Math.floor(next() * 100);
            const batch = order.slice(at, at + size);
            at += size;
            sends.push(
              (async () => {
                const response = await postJson(`${server.url}/v1/events`, { events: batch });
                assert.equal(response.status, 200);
                const body = (await response.json()) as {
                  accepted: number;
                  duplicates: number;
                  rejected: number;
                };
                assert.equal(body.rejected, 0);
                accepted += body.accepted;
                duplicates += body.duplicates;
              })(),
            );
            if (sends.length % 4 === 0) await Promise.all(sends.splice(0));
          }
          await Promise.all(sends);
          return { accepted, duplicates };
        }),
      );
      const accepted = totals.reduce((sum, t) => sum + t.accepted, 0);
      const duplicates = totals.reduce((sum, t) => sum + t.duplicates, 0);
      assert.equal(accepted, all.length);
      assert.equal(duplicates, 2 * all.length);
      for (const runId of stream.runIds) {
        const stored = await opened.store.readEvents(runId);
        assert.equal(stored.length, 122);
        assert.equal(new Set(stored.map((e) => e.eventId)).size, 122);
        const run = await opened.store.getRun(runId);
        assert.equal(run?.stepCount, 60);
        assert.equal(run?.status, 'ok');
      }
      for (const server of servers) server.child.kill('SIGTERM');
      assert.deepEqual(await Promise.all(servers.map((s) => s.exited)), [0, 0, 0]);
    } finally {
      await opened.cleanup();
    }
  });
});
