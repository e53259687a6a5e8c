import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { type BlobHash, blobHashOf, type RewindEvent } from '@rewind/schema';
import { buildStream, newNamespace, simpleRunPlan } from '@rewind/store/contract';
import { type LogLine, ServerConfigError, startServer } from './server.ts';
import {
  BACKENDS,
  invalidEventCases,
  postJson,
  seededRandom,
  startTestServer,
  type TestServer,
} from './testing/backends.ts';

// The HTTP API against both stores, over real HTTP on 127.0.0.1 (docs/api.md).

const GOLDEN = new URL('../../../fixtures/traces/v1/pending-blobs/', import.meta.url);

function goldenPendingTrace(): { events: RewindEvent[]; blobs: Map<BlobHash, Uint8Array> } {
  const events = readFileSync(new URL('events.jsonl', GOLDEN), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as RewindEvent);
  const blobs = new Map<BlobHash, Uint8Array>();
  for (const hex of readdirSync(new URL('blobs/sha256/', GOLDEN)))
    blobs.set(`sha256:${hex}`, readFileSync(new URL(`blobs/sha256/${hex}`, GOLDEN)));
  return { events, blobs };
}

function blobFrame(hash: string, bytes: Uint8Array): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([Buffer.from(hash, 'latin1'), length, bytes]);
}

async function errorOf(
  response: Response,
): Promise<{ code: string; message: string; details?: Record<string, unknown> }> {
  const body = (await response.json()) as {
    error: { code: string; message: string; details?: Record<string, unknown> };
  };
  assert.equal(typeof body.error.message, 'string');
  assert.ok(body.error.message.length > 20, `a message that says what to do: ${body.error.message}`);
  return body.error;
}

for (const backend of BACKENDS) {
  describe(`server on ${backend.name}`, () => {
    let t: TestServer;
    const logs: LogLine[] = [];
    before(async () => {
      t = await startTestServer(backend, { log: (line) => logs.push(line) });
    });
    after(async () => {
      await t.close();
    });

    test('a batch of 1,000 events with 37 invalid answers exactly those 37 with reasons; the other 963 are stored', async () => {
      const plan = simpleRunPlan(481);
      plan.steps.at(-1)!.status = 'running';
      const stream = buildStream([plan], newNamespace());
      assert.equal(stream.events.length, 963);
      const cases = invalidEventCases();
      const random = seededRandom(37);
      const batch: unknown[] = [...stream.events];
      const invalidAt = new Map<number, { field: string; name: string }>();
      for (let i = 0; i < 37; i++) {
        const testCase = cases[i % cases.length]!;
        const at = Math.floor(random() * (batch.length + 1));
        batch.splice(at, 0, testCase.event);
        // Positions after `at` shift by one.
        const shifted = new Map<number, { field: string; name: string }>();
        for (const [position, c] of invalidAt) shifted.set(position >= at ? position + 1 : position, c);
        shifted.set(at, { field: testCase.field, name: testCase.name });
        invalidAt.clear();
        for (const [position, c] of shifted) invalidAt.set(position, c);
      }
      assert.equal(batch.length, 1000);
      const response = await postJson(`${t.url}/v1/events`, { events: batch });
      assert.equal(response.status, 200);
      const body = (await response.json()) as {
        accepted: number;
        duplicates: number;
        rejected: number;
        results: Array<{ eventId: string | null; status: string; reason?: string; field?: string }>;
      };
      assert.equal(body.results.length, 1000);
      assert.deepEqual([body.accepted, body.duplicates, body.rejected], [963, 0, 37]);
      body.results.forEach((result, i) => {
        const invalid = invalidAt.get(i);
        if (invalid === undefined) {
          assert.deepEqual(result, { eventId: (batch[i] as RewindEvent).eventId, status: 'accepted' });
        } else {
          assert.equal(result.status, 'rejected', `${invalid.name} at ${i}`);
          assert.ok((result.reason ?? '').length > 10, `a reason for ${invalid.name}`);
          assert.equal(result.field, invalid.field, `field of ${invalid.name}`);
        }
      });
      const runId = stream.runIds[0]!;
      const events = (await (await fetch(`${t.url}/v1/runs/${runId}/events`)).json()) as {
        events: RewindEvent[];
      };
      assert.deepEqual(
        events.events.map((e) => e.eventId).sort(),
        stream.events.map((e) => e.eventId).sort(),
      );
    });

    test('the same batch sent three times is stored once: accepted, then duplicates', async () => {
      const stream = buildStream([simpleRunPlan(20)], newNamespace());
      const answers = [];
      for (let i = 0; i < 3; i++) {
        const response = await postJson(`${t.url}/v1/events`, { events: stream.events });
        assert.equal(response.status, 200);
        answers.push((await response.json()) as { accepted: number; duplicates: number; rejected: number });
      }
      assert.deepEqual(
        answers.map((a) => [a.accepted, a.duplicates, a.rejected]),
        [
          [42, 0, 0],
          [0, 42, 0],
          [0, 42, 0],
        ],
      );
      const stored = (await (await fetch(`${t.url}/v1/runs/${stream.runIds[0]}/events`)).json()) as {
        events: unknown[];
      };
      assert.equal(stored.events.length, 42);
      const run = (await (await fetch(`${t.url}/v1/runs/${stream.runIds[0]}`)).json()) as {
        run: { stepCount: number; status: string };
      };
      assert.equal(run.run.stepCount, 20);
      assert.equal(run.run.status, 'ok');
    });

    test('a gzip body is accepted; invalid gzip is 400 invalid_body', async () => {
      const stream = buildStream([simpleRunPlan(3)], newNamespace());
      const response = await fetch(`${t.url}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
        body: gzipSync(JSON.stringify({ events: stream.events })),
      });
      assert.equal(response.status, 200);
      assert.equal(((await response.json()) as { accepted: number }).accepted, 8);
      const bad = await fetch(`${t.url}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
        body: 'this is not gzip',
      });
      assert.equal(bad.status, 400);
      assert.equal((await errorOf(bad)).code, 'invalid_body');
    });

    describe('batch limits answer a clear 4xx', () => {
      test('more than 10,000 events: 413 too_large', async () => {
        const response = await postJson(`${t.url}/v1/events`, {
          events: Array.from({ length: 10_001 }, () => ({})),
        });
        assert.equal(response.status, 413);
        const error = await errorOf(response);
        assert.equal(error.code, 'too_large');
        assert.equal(error.details?.unit, 'events');
      });
      test('a body over 16 MiB: 413 too_large', async () => {
        const response = await postJson(`${t.url}/v1/events`, { events: [], pad: 'x'.repeat(16 * 2 ** 20) });
        assert.equal(response.status, 413);
        assert.equal((await errorOf(response)).code, 'too_large');
      });
      test('a gzip bomb (64 MiB of zeros in 64 KiB) stops at 16 MiB decoded: 413 too_large', async () => {
        const bomb = gzipSync(Buffer.alloc(64 * 2 ** 20));
        assert.ok(bomb.length < 100_000);
        const response = await fetch(`${t.url}/v1/events`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
          body: bomb,
        });
        assert.equal(response.status, 413);
        const error = await errorOf(response);
        assert.equal(error.code, 'too_large');
        assert.equal(error.details?.unit, 'decompressed_bytes');
      });
      test('nesting deeper than 64: 400 too_deep, even 100,000 deep; brackets inside strings do not count', async () => {
        for (const depth of [65, 100_000]) {
          const response = await fetch(`${t.url}/v1/events`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: `{"events":[${'['.repeat(depth)}${']'.repeat(depth)}]}`,
          });
          assert.equal(response.status, 400);
          assert.equal((await errorOf(response)).code, 'too_deep');
        }
        const shallow = await postJson(`${t.url}/v1/events`, {
          events: [{ note: `${'['.repeat(1000)}\\"[[[` }],
        });
        assert.equal(shallow.status, 200);
        assert.equal(((await shallow.json()) as { rejected: number }).rejected, 1);
      });
      test('wrong Content-Type: 415 unsupported_media_type; unknown Content-Encoding: 415 unsupported_encoding', async () => {
        const text = await fetch(`${t.url}/v1/events`, {
          method: 'POST',
          headers: { 'content-type': 'text/plain' },
          body: '{"events":[]}',
        });
        assert.equal(text.status, 415);
        assert.equal((await errorOf(text)).code, 'unsupported_media_type');
        const brotli = await fetch(`${t.url}/v1/events`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-encoding': 'br' },
          body: '{"events":[]}',
        });
        assert.equal(brotli.status, 415);
        assert.equal((await errorOf(brotli)).code, 'unsupported_encoding');
      });
      test('not JSON: 400 invalid_json; not {"events": [...]}: 400 invalid_body', async () => {
        const notJson = await fetch(`${t.url}/v1/events`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{"events": [',
        });
        assert.equal(notJson.status, 400);
        assert.equal((await errorOf(notJson)).code, 'invalid_json');
        for (const body of [[], { events: 5 }, { event: [] }, 'events']) {
          const response = await postJson(`${t.url}/v1/events`, body);
          assert.equal(response.status, 400);
          assert.equal((await errorOf(response)).code, 'invalid_body');
        }
      });
    });

    describe('blobs', () => {
      const bytes = Buffer.from(`{"blob":"${backend.name} ${Date.now()}"}`);
      const hash = blobHashOf(bytes);
      const path = `/v1/blobs/sha256/${hash.slice(7)}`;

      test('PUT stores once (201, then 200), HEAD gives the size, GET the bytes; the server re-hashes', async () => {
        const missingBefore = await postJson(`${t.url}/v1/blobs/missing`, { hashes: [hash] });
        assert.deepEqual(await missingBefore.json(), { missing: [hash] });
        const put = await fetch(`${t.url}${path}`, {
          method: 'PUT',
          headers: { 'content-type': 'application/octet-stream' },
          body: bytes,
        });
        assert.equal(put.status, 201);
        assert.deepEqual(await put.json(), { hash, size: bytes.length });
        const again = await fetch(`${t.url}${path}`, {
          method: 'PUT',
          body: gzipSync(bytes),
          headers: { 'content-encoding': 'gzip' },
        });
        assert.equal(again.status, 200);
        const head = await fetch(`${t.url}${path}`, { method: 'HEAD' });
        assert.equal(head.status, 200);
        assert.equal(head.headers.get('content-length'), String(bytes.length));
        const get = await fetch(`${t.url}${path}`);
        assert.equal(get.status, 200);
        assert.deepEqual(Buffer.from(await get.arrayBuffer()), bytes);
        const missingAfter = await postJson(`${t.url}/v1/blobs/missing`, { hashes: [hash] });
        assert.deepEqual(await missingAfter.json(), { missing: [] });
      });

      test('PUT with bytes that hash to something else: 400 hash_mismatch, nothing stored', async () => {
        const other = blobHashOf('never stored');
        const response = await fetch(`${t.url}/v1/blobs/sha256/${other.slice(7)}`, {
          method: 'PUT',
          body: 'something else',
        });
        assert.equal(response.status, 400);
        assert.equal((await errorOf(response)).code, 'hash_mismatch');
        assert.equal(
          (await fetch(`${t.url}/v1/blobs/sha256/${other.slice(7)}`, { method: 'HEAD' })).status,
          404,
        );
        assert.equal((await fetch(`${t.url}/v1/blobs/sha256/${other.slice(7)}`)).status, 404);
      });

      test('a hash that is not 64 lowercase hex digits is 400 invalid_hash (no traversal)', async () => {
        // fetch resolves `..` and `%2e%2e` segments itself: raw paths are fuzzed in fuzz.test.ts.
        for (const bad of [
          '..%2F..%2Fetc%2Fpasswd',
          'ABCDEF'.padEnd(64, '0'),
          `${hash.slice(8)}.`,
          `${hash.slice(7)}%00`,
        ]) {
          const response = await fetch(`${t.url}/v1/blobs/sha256/${bad}`);
          assert.equal(response.status, 400, bad);
          assert.equal((await errorOf(response)).code, 'invalid_hash');
        }
      });

      test('POST /v1/blobs stores each framed blob it can verify and rejects the others', async () => {
        const a = Buffer.from(`frame a ${backend.name} ${Date.now()}`);
        const b = Buffer.from(`frame b ${backend.name} ${Date.now()}`);
        const liar = blobHashOf('not these bytes');
        const body = Buffer.concat([
          blobFrame(blobHashOf(a), a),
          blobFrame(liar, b),
          blobFrame(blobHashOf(b), b),
        ]);
        const response = await fetch(`${t.url}/v1/blobs`, {
          method: 'POST',
          headers: { 'content-type': 'application/vnd.rewind.blobs', 'content-encoding': 'gzip' },
          body: gzipSync(body),
        });
        assert.equal(response.status, 200);
        const { results } = (await response.json()) as {
          results: Array<{ hash: string; status: string; reason?: string }>;
        };
        assert.deepEqual(
          results.map((r) => [r.hash, r.status]),
          [
            [blobHashOf(a), 'stored'],
            [liar, 'rejected'],
            [blobHashOf(b), 'stored'],
          ],
        );
        assert.match(results[1]!.reason!, /hash_mismatch/);
        const missing = await postJson(`${t.url}/v1/blobs/missing`, {
          hashes: [blobHashOf(b), liar, blobHashOf(a)],
        });
        assert.deepEqual(await missing.json(), { missing: [liar] });
      });

      test('a truncated frame stream is 400 invalid_body and stores nothing', async () => {
        const a = Buffer.from(`truncated a ${backend.name} ${Date.now()}`);
        const b = Buffer.from(`truncated b ${backend.name} ${Date.now()}`);
        const whole = Buffer.concat([blobFrame(blobHashOf(a), a), blobFrame(blobHashOf(b), b)]);
        const response = await fetch(`${t.url}/v1/blobs`, {
          method: 'POST',
          headers: { 'content-type': 'application/vnd.rewind.blobs' },
          body: whole.subarray(0, whole.length - 3),
        });
        assert.equal(response.status, 400);
        const error = await errorOf(response);
        assert.equal(error.code, 'invalid_body');
        assert.equal(error.details?.frame, 1);
        const missing = await postJson(`${t.url}/v1/blobs/missing`, {
          hashes: [blobHashOf(a), blobHashOf(b)],
        });
        assert.deepEqual(await missing.json(), { missing: [blobHashOf(a), blobHashOf(b)] });
      });

      test('POST /v1/blobs/missing checks its input', async () => {
        for (const body of [{ hashes: ['sha256:xyz'] }, { hashes: 'sha256:' }, {}]) {
          const response = await postJson(`${t.url}/v1/blobs/missing`, body);
          assert.equal(response.status, 400);
          assert.equal((await errorOf(response)).code, 'invalid_body');
        }
        const tooMany = await postJson(`${t.url}/v1/blobs/missing`, {
          hashes: Array.from({ length: 10_001 }, () => hash),
        });
        assert.equal(tooMany.status, 413);
      });
    });

    test('an event whose blobs are not stored is accepted; GET /v1/runs/:id lists them until they are uploaded', async () => {
      const { events, blobs } = goldenPendingTrace();
      const response = await postJson(`${t.url}/v1/events`, { events });
      assert.equal(((await response.json()) as { accepted: number }).accepted, events.length);
      const runId = events[0]!.runId;
      const before = (await (await fetch(`${t.url}/v1/runs/${runId}`)).json()) as {
        run: { id: string };
        pendingArtifacts: Array<{ hash: string; where: string }>;
      };
      assert.equal(before.run.id, runId);
      // Nothing uploaded yet: every blob the events name is pending, each with where it is needed.
      assert.ok(before.pendingArtifacts.length >= blobs.size + 2);
      assert.ok(before.pendingArtifacts.some((p) => p.where === 'run input'));
      assert.ok(
        before.pendingArtifacts.every((p) =>
          /^(run (input|output|tape)|step \d+ (request|response))$/.test(p.where),
        ),
      );
      for (const [hash, bytes] of blobs) {
        const put = await fetch(`${t.url}/v1/blobs/sha256/${hash.slice(7)}`, { method: 'PUT', body: bytes });
        assert.equal(put.status, 201);
      }
      const afterUpload = (await (await fetch(`${t.url}/v1/runs/${runId}`)).json()) as {
        pendingArtifacts: Array<{ hash: string; where: string }>;
      };
      // The trace leaves out a response blob and a payload part on purpose.
      assert.equal(afterUpload.pendingArtifacts.length, 2, JSON.stringify(afterUpload.pendingArtifacts));
      for (const pending of afterUpload.pendingArtifacts)
        assert.equal(blobs.has(pending.hash as BlobHash), false);
      // The step detail resolves what it can and gives null for a payload that cannot be read.
      const missingStep = Number(
        /^step (\d+)/.exec(afterUpload.pendingArtifacts.find((p) => p.where.startsWith('step'))!.where)![1],
      );
      const step = (await (await fetch(`${t.url}/v1/runs/${runId}/steps/${missingStep}`)).json()) as {
        step: { seq: number };
        request: unknown;
        response: unknown;
      };
      assert.equal(step.step.seq, missingStep);
      assert.ok(step.request === null || step.response === null);
    });

    test('reads: runs with filters and cursors, timeline pages, step detail, 404 and 400', async () => {
      const ns = newNamespace();
      const stream = buildStream(
        [
          simpleRunPlan(5, { agent: `reader-${ns}` }),
          simpleRunPlan(2, { agent: `reader-${ns}`, startOffsetS: 60, finish: 'error' }),
        ],
        ns,
      );
      await postJson(`${t.url}/v1/events`, { events: stream.events });
      const page1 = (await (await fetch(`${t.url}/v1/runs?agent=reader-${ns}&limit=1`)).json()) as {
        items: Array<{ id: string; status: string }>;
        nextCursor?: string;
      };
      assert.equal(page1.items.length, 1);
      assert.equal(page1.items[0]!.id, stream.runIds[1]);
      assert.ok(page1.nextCursor !== undefined);
      const page2 = (await (
        await fetch(
          `${t.url}/v1/runs?agent=reader-${ns}&limit=1&cursor=${encodeURIComponent(page1.nextCursor!)}`,
        )
      ).json()) as {
        items: Array<{ id: string }>;
        nextCursor?: string;
      };
      assert.deepEqual(
        page2.items.map((r) => r.id),
        [stream.runIds[0]],
      );
      const errors = (await (await fetch(`${t.url}/v1/runs?agent=reader-${ns}&status=error`)).json()) as {
        items: Array<{ id: string }>;
      };
      assert.deepEqual(
        errors.items.map((r) => r.id),
        [stream.runIds[1]],
      );
      const windowed = (await (
        await fetch(
          `${t.url}/v1/runs?agent=reader-${ns}&since=${stream.window.since}&until=${stream.window.until}`,
        )
      ).json()) as { items: unknown[] };
      assert.equal(windowed.items.length, 2);

      const runId = stream.runIds[0]!;
      const steps1 = (await (await fetch(`${t.url}/v1/runs/${runId}/steps?limit=2`)).json()) as {
        items: Array<{ seq: number }>;
        nextCursor?: string;
      };
      assert.deepEqual(
        steps1.items.map((s) => s.seq),
        [1, 2],
      );
      assert.equal(steps1.nextCursor, '2');
      const steps2 = (await (await fetch(`${t.url}/v1/runs/${runId}/steps?cursor=2`)).json()) as {
        items: Array<{ seq: number }>;
        nextCursor?: string;
      };
      assert.deepEqual(
        steps2.items.map((s) => s.seq),
        [3, 4, 5],
      );
      assert.equal(steps2.nextCursor, undefined);
      const step = (await (await fetch(`${t.url}/v1/runs/${runId}/steps/3`)).json()) as {
        step: { seq: number; name: string };
        request: unknown;
        response: unknown;
      };
      assert.equal(step.step.seq, 3);
      assert.equal(step.request, null); // the contract events name blobs that were never uploaded

      for (const [path, status, code] of [
        ['/v1/runs/no-such-run', 404, 'not_found'],
        ['/v1/runs/no-such-run/steps', 404, 'not_found'],
        ['/v1/runs/no-such-run/events', 404, 'not_found'],
        [`/v1/runs/${runId}/steps/99`, 404, 'not_found'],
        [`/v1/runs/${runId}/steps/0`, 400, 'invalid_query'],
        [`/v1/runs/${runId}/steps/abc`, 400, 'invalid_query'],
        [`/v1/runs/${runId}/steps?limit=0`, 400, 'invalid_query'],
        ['/v1/runs?status=done', 400, 'invalid_query'],
        ['/v1/runs?limit=5000', 400, 'invalid_query'],
        ['/v1/runs?cursor=garbage', 400, 'invalid_query'],
        ['/v1/runs?since=yesterday', 400, 'invalid_query'],
        ['/v1/nothing', 404, 'not_found'],
        ['/v1/runs/%E0%A4%A', 400, 'invalid_path'],
      ] as const) {
        const response = await fetch(`${t.url}${path}`);
        assert.equal(response.status, status, path);
        assert.equal((await errorOf(response)).code, code, path);
      }
      const wrongMethod = await fetch(`${t.url}/v1/runs`, { method: 'DELETE' });
      assert.equal(wrongMethod.status, 405);
      assert.equal(wrongMethod.headers.get('allow'), 'GET');
    });

    test('request ids: an incoming X-Request-Id is echoed and logged, otherwise one is generated; one log line per request', async () => {
      const echoed = await fetch(`${t.url}/healthz`, { headers: { 'x-request-id': 'trace-abc.123' } });
      assert.deepEqual(await echoed.json(), { status: 'ok' });
      assert.equal(echoed.headers.get('x-request-id'), 'trace-abc.123');
      const generated = await fetch(`${t.url}/healthz`, {
        headers: { 'x-request-id': 'bad id with spaces' },
      });
      const id = generated.headers.get('x-request-id')!;
      assert.match(id, /^[0-9a-f-]{36}$/);
      await new Promise((resolve) => setImmediate(resolve));
      const lines = logs.filter((line) => line.requestId === 'trace-abc.123' || line.requestId === id);
      assert.equal(lines.length, 2);
      assert.deepEqual(
        lines.map((line) => [line.msg, line.route, line.status]),
        [
          ['request', 'GET /healthz', 200],
          ['request', 'GET /healthz', 200],
        ],
      );
    });

    test('/readyz and /metrics', async () => {
      assert.deepEqual(await (await fetch(`${t.url}/readyz`)).json(), { status: 'ready' });
      const metrics = await fetch(`${t.url}/metrics`);
      assert.match(metrics.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
      const text = await metrics.text();
      const value = (line: string) =>
        Number(new RegExp(`^${line.replace(/[{}"+.]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
      assert.ok(value('rewind_events_total{outcome="accepted"}') >= 963 + 42);
      assert.ok(value('rewind_events_total{outcome="duplicate"}') >= 84);
      assert.ok(value('rewind_events_total{outcome="rejected"}') >= 37);
      assert.ok(value('rewind_ingest_batch_seconds_count') >= 5);
      assert.ok(value('rewind_blob_bytes_total') > 0);
      assert.equal(value('rewind_store_errors_total'), 0);
      assert.ok(value('rewind_http_requests_total{route="POST /v1/events",status="200"}') >= 5);
      assert.ok(value('rewind_http_requests_total{route="POST /v1/events",status="413"}') >= 3);
      assert.ok(Number.isFinite(value('rewind_pending_artifacts')));
    });
  });

  describe(`auth on ${backend.name}`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer(backend, {
        ingestKeys: ['ingest-key-1', 'ingest-key-2'],
        readKeys: ['read-key-1'],
      });
    });
    after(async () => {
      await t.close();
    });
    const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

    test('write routes need an ingest key: none or unknown → 401, a read key → 403', async () => {
      const stream = buildStream([simpleRunPlan(1)], newNamespace());
      const none = await postJson(`${t.url}/v1/events`, { events: stream.events });
      assert.equal(none.status, 401);
      assert.equal(none.headers.get('www-authenticate'), 'Bearer');
      assert.equal((await errorOf(none)).code, 'unauthorized');
      const unknown = await postJson(`${t.url}/v1/events`, { events: stream.events }, bearer('ingest-key-3'));
      assert.equal(unknown.status, 401);
      assert.equal((await errorOf(unknown)).code, 'unauthorized');
      const read = await postJson(`${t.url}/v1/events`, { events: stream.events }, bearer('read-key-1'));
      assert.equal(read.status, 403);
      assert.equal((await errorOf(read)).code, 'forbidden');
      const ok = await postJson(`${t.url}/v1/events`, { events: stream.events }, bearer('ingest-key-2'));
      assert.equal(ok.status, 200);
      const hash = blobHashOf('x').slice(7);
      for (const method of ['PUT', 'HEAD'] as const) {
        assert.equal(
          (
            await fetch(`${t.url}/v1/blobs/sha256/${hash}`, {
              method,
              headers: bearer('read-key-1'),
              ...(method === 'PUT' ? { body: 'x' } : {}),
            })
          ).status,
          403,
        );
      }
      assert.equal(
        (await postJson(`${t.url}/v1/blobs/missing`, { hashes: [] }, bearer('read-key-1'))).status,
        403,
      );
    });

    test('read routes and /metrics need a read key; /healthz and /readyz need none', async () => {
      for (const path of ['/v1/runs', '/metrics', `/v1/blobs/sha256/${blobHashOf('x').slice(7)}`]) {
        assert.equal((await fetch(`${t.url}${path}`)).status, 401, path);
        assert.equal((await fetch(`${t.url}${path}`, { headers: bearer('ingest-key-1') })).status, 403, path);
        assert.equal(
          (await fetch(`${t.url}${path}`, { headers: { authorization: 'Basic cmVhZC1rZXktMQ==' } })).status,
          401,
          path,
        );
      }
      assert.equal((await fetch(`${t.url}/v1/runs`, { headers: bearer('read-key-1') })).status, 200);
      assert.equal((await fetch(`${t.url}/metrics`, { headers: bearer('read-key-1') })).status, 200);
      assert.equal((await fetch(`${t.url}/healthz`)).status, 200);
      assert.equal((await fetch(`${t.url}/readyz`)).status, 200);
    });
  });
}

describe('startServer', () => {
  test('refuses to listen on a non-loopback address without keys, and says what to do', async () => {
    const opened = await BACKENDS[0]!.open();
    try {
      for (const host of ['0.0.0.0', '::']) {
        await assert.rejects(
          startServer({ store: opened.store, host, port: 0, log: false }),
          (error: unknown) => {
            assert.ok(error instanceof ServerConfigError);
            assert.match(error.message, /refusing to listen on .* without API keys.*--ingest-key/);
            return true;
          },
        );
      }
      const withKeys = await startServer({
        store: opened.store,
        host: '0.0.0.0',
        port: 0,
        log: false,
        readKeys: ['k'],
      });
      assert.equal((await fetch(`${withKeys.url.replace('0.0.0.0', '127.0.0.1')}/healthz`)).status, 200);
      await withKeys.close();
    } finally {
      await opened.cleanup();
    }
  });

  test('/readyz is 503 when the store does not answer', async () => {
    for (const backend of BACKENDS) {
      const t = await startTestServer(backend);
      try {
        await t.store.close();
        const response = await fetch(`${t.url}/readyz`);
        assert.equal(response.status, 503, backend.name);
        assert.equal((await errorOf(response)).code, 'store_unavailable');
        const write = await postJson(`${t.url}/v1/events`, {
          events: buildStream([simpleRunPlan(1)], newNamespace()).events,
        });
        assert.equal(write.status, 503, backend.name);
        assert.equal(write.headers.get('retry-after'), '1');
        assert.equal((await fetch(`${t.url}/healthz`)).status, 200);
      } finally {
        await t.close();
      }
    }
  });
});

describe('clients that go away', () => {
  test('a client that drops the connection mid-body leaves the server serving', async () => {
    const { connect } = await import('node:net');
    const t = await startTestServer(BACKENDS[0]!);
    try {
      const { port } = new URL(t.url);
      for (let i = 0; i < 5; i++) {
        const socket = connect(Number(port), '127.0.0.1');
        await new Promise((resolve) => socket.once('connect', resolve));
        socket.write(
          'POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"events":[',
        );
        await new Promise((resolve) => setTimeout(resolve, 20));
        socket.destroy();
      }
      const response = await postJson(`${t.url}/v1/events`, {
        events: buildStream([simpleRunPlan(1)], newNamespace()).events,
      });
      assert.equal(response.status, 200);
      assert.equal((await fetch(`${t.url}/healthz`)).status, 200);
    } finally {
      await t.close();
    }
  });
});

describe('close()', () => {
  test('lets the request in flight finish, answering it with Connection: close, then resolves', async () => {
    const { request } = await import('node:http');
    const t = await startTestServer(BACKENDS[0]!);
    try {
      const body = Buffer.from(
        JSON.stringify({ events: buildStream([simpleRunPlan(2)], newNamespace()).events }),
      );
      const { port } = new URL(t.url);
      const agent = new (await import('node:http')).Agent({ keepAlive: true });
      let sent!: () => void;
      const halfSent = new Promise<void>((resolve) => {
        sent = resolve;
      });
      const answer = new Promise<{ status: number; connection: string | undefined; body: string }>(
        (resolve, reject) => {
          const req = request(
            {
              host: '127.0.0.1',
              port,
              method: 'POST',
              path: '/v1/events',
              agent,
              headers: { 'content-type': 'application/json', 'content-length': body.length },
            },
            (res) => {
              let text = '';
              res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
              res.on('end', () =>
                resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body: text }),
              );
            },
          );
          req.on('error', reject);
          req.write(body.subarray(0, 50), () => sent());
          halfSent.then(() => setTimeout(() => req.end(body.subarray(50)), 50));
        },
      );
      await halfSent;
      const closed = t.server.close();
      const response = await answer;
      assert.equal(response.status, 200, response.body);
      assert.equal(response.connection, 'close');
      await closed;
      agent.destroy();
    } finally {
      await t.close();
    }
  });
});
