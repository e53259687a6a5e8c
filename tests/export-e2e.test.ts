// The SDK's HTTP exporter against the REAL server (`rewind serve` as a child process), on SQLite and
// on PostgreSQL (a fresh schema per test), under the faults of issue 4's acceptance:
//   - the server SIGKILLed at 20 seeded random points while a 100,000-event workload is exported,
//     restarted on the same store and port each time;
//   - every request forwarded three times and 5% of connections cut after the server committed
//     (the fault proxy in front of the server; every 20th POST is cut).
// After flush(): every event stored exactly once (checked by eventId through the store), nothing
// pending, the SDK's counters 0 dropped and produced = delivered.
//
// Pacing: the producer makes 2,000 events per second on average (REWIND_E2E_RATE), yielding to the
// event loop after every run (~70 events) — a busy fleet of agents whose model calls take time.
// The test is about server death, not the in-memory queue overflowing: a producer that only yields
// after every run, with no other pacing, outruns the SDK's own drain (its hashing and event
// building cost several times the hot path's CPU per event) on this loaded 2-core machine and
// fills the 64 MiB queue (`queue_full` drops, seen here at a load average of 11), whatever the
// server does. Overflow is tested in the SDK (`queue_full`, back-pressure spilling to the spool).
//
// REWIND_E2E_EVENTS overrides the size of the SIGKILL workload (default 100,000, the issue's).
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Recorder, type RewindCaptureError } from '@rewind/sdk';
import { findPendingArtifacts, openStore, type Store } from '@rewind/store';
import { startFaultProxy } from '../packages/sdk/src/export/testing/fault-proxy.ts';
import { pacedAt, runExportWorkload, type WorkloadRun } from '../packages/sdk/src/export/testing/workload.ts';
import { BACKENDS, seededRandom } from '../packages/server/src/testing/backends.ts';
import { type ServeProcess, startServe } from './rewind-cli.ts';

const SIGKILL_EVENTS = Number(process.env.REWIND_E2E_EVENTS ?? 100_000);
const RATE = Number(process.env.REWIND_E2E_RATE ?? 2000);
const KILLS = 20;

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'rewind-e2e-'));
}

function recorderFor(endpoint: string, dir: string, errors: RewindCaptureError[]): Recorder {
  return new Recorder({
    endpoint,
    cwd: dir,
    env: {},
    spoolDir: join(dir, 'spool'),
    onError: (error) => errors.push(error),
  });
}

/**
 * Every event of `runs` is in the store exactly once: each run holds run.started, a started and a
 * finished event for each of its steps (seq 1..n) and run.finished, under distinct eventIds (also
 * across runs); no other run is stored; no payload is pending.
 */
async function assertStoredExactlyOnce(store: Store, runs: WorkloadRun[], events: number): Promise<void> {
  const listed = new Set<string>();
  let cursor: string | undefined;
  do {
    const page = await store.listRuns({ limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
    for (const run of page.items) listed.add(run.id);
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  assert.equal(listed.size, runs.length, 'runs stored');
  const eventIds = new Set<string>();
  let stored = 0;
  for (const { runId, steps } of runs) {
    assert.ok(listed.has(runId), `run ${runId} is listed`);
    const runEvents = await store.readEvents(runId);
    stored += runEvents.length;
    for (const event of runEvents) eventIds.add(event.eventId);
    // a step's events by seq (step.finished names its step by stepId only)
    const seqOf = new Map<string, number>();
    for (const event of runEvents) if (event.type === 'step.started') seqOf.set(event.stepId, event.seq);
    const kinds = runEvents.map((event) =>
      event.type === 'step.started' || event.type === 'step.finished'
        ? `${event.type} ${seqOf.get(event.stepId)}`
        : event.type,
    );
    const expected = ['run.started'];
    for (let seq = 1; seq <= steps; seq++) expected.push(`step.started ${seq}`, `step.finished ${seq}`);
    expected.push('run.finished');
    assert.deepEqual(kinds.sort(), expected.sort(), `the events of run ${runId}`);
    const run = await store.getRun(runId);
    assert.equal(run?.status, 'ok');
    assert.equal(run?.stepCount, steps);
  }
  assert.equal(stored, events, 'events stored');
  assert.equal(eventIds.size, events, 'distinct eventIds stored');
  // every blob the events reference reached the server (nothing left pending by a kill or a cut)
  for (const { runId } of runs) assert.deepEqual(await findPendingArtifacts(store, runId), [], runId);
}

/** Opens the store the server used (a postgres location names its schema in `?schema=`). */
function reopen(opened: { location: string; blobs: string }): Promise<Store> {
  const schema = opened.location.startsWith('postgres')
    ? new URL(opened.location).searchParams.get('schema')
    : null;
  return openStore(opened.location, { blobs: opened.blobs, ...(schema === null ? {} : { schema }) });
}

async function metric(url: string, outcome: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const match = new RegExp(`^rewind_events_total\\{outcome="${outcome}"\\} (\\d+)$`, 'm').exec(text);
  return Number(match?.[1] ?? 0);
}

/** No progress for this long fails the test (with what the exporter and the server were doing). */
const STALL_MS = 60_000;

async function stalled(recorder: Recorder, serve: ServeProcess, dir: string, point: number): Promise<string> {
  const ready = await fetch(`${serve.url}/readyz`).then(
    async (response) => `${response.status} ${await response.text()}`,
    (error: Error) => error.message,
  );
  return [
    `delivery stalled for ${STALL_MS / 1000} s before kill point ${point}`,
    `stats ${JSON.stringify(recorder.stats())}, export ${JSON.stringify(recorder.exportStats())}`,
    `spool ${JSON.stringify(await readdir(join(dir, 'spool')).catch(() => []))}`,
    `readyz ${ready}`,
    `server log tail ${JSON.stringify(serve.lines.slice(-5))}`,
  ].join('\n');
}

async function stop(serve: ServeProcess): Promise<void> {
  serve.child.kill('SIGTERM');
  assert.equal(await serve.exited, 0);
}

for (const backend of BACKENDS) {
  describe(`the SDK exporter against rewind serve on ${backend.name}`, () => {
    test(`SIGKILLed ${KILLS} times at random points during a ${SIGKILL_EVENTS}-event export and restarted: every event stored exactly once, 0 dropped`, async (t) => {
      const opened = await backend.open();
      await opened.store.close();
      const dir = await tempDir();
      const serveArgs = ['--store', opened.location, '--blobs', opened.blobs, '--workers', '0'];
      let serve = await startServe(serveArgs);
      const port = Number(new URL(serve.url).port);
      const errors: RewindCaptureError[] = [];
      const recorder = recorderFor(serve.url, dir, errors);
      try {
        // Kill points are counts of delivered events, so the kills spread over the whole delivery
        // (the spool included) whatever the machine's speed; a random delay after each point lands
        // the kill at a random moment of a request.
        const random = seededRandom(backend.name === 'sqlite' ? 2026 : 1125);
        const points = Array.from({ length: KILLS }, () =>
          Math.floor((0.02 + 0.93 * random()) * SIGKILL_EVENTS),
        ).sort((a, b) => a - b);
        let kills = 0;
        let maxSpooled = 0;
        const killer = (async () => {
          for (const point of points) {
            const since = Date.now();
            // (dropped too: drops would never be delivered, and fail the test below, not as a stall)
            while (recorder.stats().delivered + recorder.stats().dropped < point) {
              maxSpooled = Math.max(maxSpooled, recorder.stats().spooled);
              if (Date.now() - since > STALL_MS) throw new Error(await stalled(recorder, serve, dir, point));
              await new Promise((resolve) => setTimeout(resolve, 5));
            }
            await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 40)));
            serve.child.kill('SIGKILL');
            await serve.exited;
            kills++;
            serve = await startServe(serveArgs, { port });
          }
        })();
        const runs = await runExportWorkload(recorder, {
          events: SIGKILL_EVENTS,
          seed: 7,
          pace: pacedAt(RATE),
        });
        await killer;
        const result = await recorder.flush({ timeoutMs: 120_000 });
        assert.equal(kills, KILLS);
        assert.deepEqual(
          {
            produced: result.produced,
            delivered: result.delivered,
            spooled: result.spooled,
            dropped: result.dropped,
            pending: result.pending,
          },
          { produced: SIGKILL_EVENTS, delivered: SIGKILL_EVENTS, spooled: 0, dropped: 0, pending: 0 },
          errors.map((e) => e.message).join('\n'),
        );
        const exported = recorder.exportStats();
        t.diagnostic(
          `${kills} kills; ${exported?.requests} requests, ${exported?.retries} retries; at most ${maxSpooled} events spooled at once`,
        );
        assert.ok((exported?.retries ?? 0) > 0, 'the kills cut requests that were retried');
        await stop(serve);
        const store = await reopen(opened);
        try {
          await assertStoredExactlyOnce(store, runs, SIGKILL_EVENTS);
        } finally {
          await store.close();
        }
      } finally {
        await recorder.shutdown({ timeoutMs: 1000 });
        serve.child.kill('SIGKILL');
        await serve.exited;
        await opened.cleanup();
        await rm(dir, { recursive: true, force: true });
      }
    });

    test('every request sent three times and 5% of connections cut after the server committed: no duplicates, nothing missing, counters add up', async () => {
      const opened = await backend.open();
      await opened.store.close();
      const dir = await tempDir();
      const serve = await startServe(['--store', opened.location, '--blobs', opened.blobs, '--workers', '0']);
      // every POST forwarded three times; every 20th (5%) cut after the server answered
      let posts = 0;
      const proxy = await startFaultProxy(serve.url, (request) =>
        request.method === 'POST'
          ? { repeat: 3, ...(++posts % 20 === 0 ? { drop: 'after' as const } : {}) }
          : undefined,
      );
      const errors: RewindCaptureError[] = [];
      // 100 events per request, so that 10,000 events make ~120 requests and ~6 cuts
      const recorder = new Recorder({
        endpoint: proxy.url,
        cwd: dir,
        env: {},
        spoolDir: join(dir, 'spool'),
        onError: (error) => errors.push(error),
        exporter: { maxEventsPerRequest: 100 },
      });
      try {
        const events = 10_000;
        const runs = await runExportWorkload(recorder, { events, seed: 11, pace: pacedAt(RATE) });
        const result = await recorder.flush({ timeoutMs: 60_000 });
        assert.deepEqual(
          {
            produced: result.produced,
            delivered: result.delivered,
            spooled: result.spooled,
            dropped: result.dropped,
            pending: result.pending,
          },
          { produced: events, delivered: events, spooled: 0, dropped: 0, pending: 0 },
          errors.map((e) => e.message).join('\n'),
        );
        const cuts = proxy.log.filter((entry) => entry.action.includes('drop after')).length;
        assert.ok(cuts >= 5, `connections cut: ${cuts}`);
        assert.ok((recorder.exportStats()?.retries ?? 0) >= cuts, 'every cut request was sent again');
        // each event reached the server at least three times and was stored once
        assert.equal(await metric(serve.url, 'accepted'), events);
        assert.equal(await metric(serve.url, 'rejected'), 0);
        assert.ok((await metric(serve.url, 'duplicate')) >= 2 * events);
        await stop(serve);
        const store = await reopen(opened);
        try {
          await assertStoredExactlyOnce(store, runs, events);
        } finally {
          await store.close();
        }
      } finally {
        await recorder.shutdown({ timeoutMs: 1000 });
        await proxy.close();
        serve.child.kill('SIGKILL');
        await serve.exited;
        await opened.cleanup();
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
}
