import assert from 'node:assert/strict';
import { hash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, test } from 'node:test';
import type { BlobHash, RewindEvent } from '@rewind/schema';
import fc from 'fast-check';
import { Reporter, type RewindCaptureError } from '../errors.ts';
import { uuidv7 } from '../ids.ts';
import type { CaptureStats } from '../pipeline.ts';
import { Recorder, type RecorderOptions } from '../recorder.ts';
import type { SinkBatch } from '../sink.ts';
import { HttpExporter, type HttpExporterOptions } from './exporter.ts';
import { startFaultProxy } from './testing/fault-proxy.ts';
import {
  type Fault,
  type IngestServer,
  type IngestServerOptions,
  startIngestServer as start,
} from './testing/ingest-server.ts';

const temp = mkdtempSync(join(tmpdir(), 'rewind-exporter-'));
after(() => rmSync(temp, { recursive: true, force: true }));
let dirs = 0;
function freshDir(): string {
  return join(temp, `d${dirs++}`);
}

/** Closed after each test, even a failing one, so that no server or socket outlives it. */
const open: Array<{ close(): Promise<unknown> }> = [];
afterEach(async () => {
  for (const resource of open.splice(0).reverse()) await resource.close().catch(() => {});
});

async function startIngestServer(options: IngestServerOptions = {}): Promise<IngestServer> {
  const server = await start(options);
  open.push(server);
  return server;
}

function addsUp(stats: CaptureStats): void {
  assert.equal(
    stats.produced,
    stats.delivered + stats.spooled + stats.dropped + stats.pending,
    `counters add up: ${JSON.stringify(stats)}`,
  );
  for (const value of Object.values(stats)) assert.ok(value >= 0, JSON.stringify(stats));
}

function collect(): { errors: RewindCaptureError[]; onError: (error: RewindCaptureError) => void } {
  const errors: RewindCaptureError[] = [];
  return { errors, onError: (error) => errors.push(error) };
}

/** Waits that record the delays asked for and return at once (no wall-clock waiting in tests). */
function instantSleep(): { delays: number[]; sleep: (ms: number, signal: AbortSignal) => Promise<void> } {
  const delays: number[] = [];
  return {
    delays,
    sleep: (ms, signal) => {
      delays.push(ms);
      return signal.aborted ? Promise.reject(signal.reason) : new Promise((resolve) => setImmediate(resolve));
    },
  };
}

function sha(bytes: Buffer): BlobHash {
  return `sha256:${hash('sha256', bytes, 'hex')}`;
}

/** n valid run.started events, each with its own input blob. */
function batchOf(n: number, tag = 'x'): SinkBatch {
  const events: RewindEvent[] = [];
  const uses: BlobHash[][] = [];
  const blobs = new Map<BlobHash, Buffer>();
  for (let i = 0; i < n; i++) {
    const bytes = Buffer.from(JSON.stringify({ tag, i }));
    const blob = sha(bytes);
    blobs.set(blob, bytes);
    events.push({
      schemaVersion: 1,
      eventId: uuidv7(Date.now()),
      type: 'run.started',
      runId: uuidv7(Date.now()),
      time: new Date().toISOString(),
      agent: 'agent',
      input: { hash: blob, size: bytes.length },
      sdk: { name: '@rewind/sdk', version: '0.0.0' },
    });
    uses.push([blob]);
  }
  return { events, uses, blobs };
}

function exporterFor(
  server: IngestServer,
  options: Partial<HttpExporterOptions> = {},
  reporter = new Reporter(() => {}),
): HttpExporter {
  const exporter = new HttpExporter(
    { endpoint: server.url, spoolDir: freshDir(), maxAttempts: 3, ...options },
    reporter,
  );
  open.push(exporter);
  return exporter;
}

/** A workload: `runs` runs of `steps` tool calls each; 2 + 2 × steps events per run. */
async function workload(r: Recorder, runs: number, steps: number, label = 'w'): Promise<void> {
  const tool = r.tool('lookup', async (query: string) => ({ answer: `${query} `.repeat(40) }));
  const agent = r.agent('agent', async (n: number) => {
    for (let i = 0; i < steps; i++) await tool(`${label}-${n}-${i}`);
    return n;
  });
  await Promise.all(Array.from({ length: runs }, (_, n) => agent(n)));
}

function recorderFor(server: IngestServer | string, options: RecorderOptions = {}): Recorder {
  const cwd = freshDir();
  const recorder = new Recorder({
    endpoint: typeof server === 'string' ? server : server.url,
    cwd,
    env: {},
    spoolDir: join(cwd, 'spool'),
    onError: () => {},
    ...options,
  });
  open.push({ close: () => recorder.shutdown({ timeoutMs: 1000 }) });
  return recorder;
}

// ---- the status table ---------------------------------------------------------------------------

const RETRY_AT = Date.parse('Wed, 21 Oct 2026 07:28:00 GMT');

const TABLE: Array<{ name: string; fault: Fault; retried: boolean; delays?: number[] }> = [
  ...[400, 401, 403, 404, 408, 413, 500].map((status) => ({
    name: String(status),
    fault: { status },
    retried: false,
  })),
  {
    name: '429 Retry-After: 7',
    fault: { status: 429, headers: { 'retry-after': '7' } },
    retried: true,
    delays: [7000, 7000],
  },
  {
    name: '429 Retry-After: <HTTP-date>',
    fault: { status: 429, headers: { 'retry-after': 'Wed, 21 Oct 2026 07:28:05 GMT' } },
    retried: true,
    delays: [5000, 5000],
  },
  // full jitter with random() = 0.5: half of 200 ms, then half of 400 ms
  ...[429, 502, 503, 504].map((status) => ({
    name: String(status),
    fault: { status },
    retried: true,
    delays: [100, 200],
  })),
  { name: 'connection dropped', fault: { drop: 'before' as const }, retried: true, delays: [100, 200] },
];

for (const row of TABLE) {
  test(`status table: ${row.name} is ${row.retried ? 'retried (3 attempts), then spooled' : 'not retried, and dropped'}`, async () => {
    const server = await startIngestServer({
      fault: (request) => (request.path === '/v1/events' ? row.fault : undefined),
    });
    const { delays, sleep } = instantSleep();
    const { errors, onError } = collect();
    const exporter = exporterFor(
      server,
      { sleep, random: () => 0.5, now: () => RETRY_AT },
      new Reporter(onError),
    );
    const outcome = await exporter.write(batchOf(4));
    const attempts = server.requestsTo('POST', '/v1/events');
    assert.equal(attempts.length, row.retried ? 3 : 1, 'attempts');
    assert.deepEqual(delays, row.delays ?? []);
    if (row.retried) {
      assert.deepEqual(outcome.spooled + outcome.dropped + outcome.delivered, 4);
      assert.equal(outcome.spooled, 4);
      assert.equal(errors[0]?.code, 'export_unreachable');
    } else {
      assert.equal(outcome.dropped, 4);
      assert.equal(outcome.spooled, 0);
      assert.deepEqual(
        errors.map((error) => error.code),
        ['export_failed'],
      );
      assert.match(errors[0]!.message, new RegExp(`with ${row.name}`));
    }
    // the blobs went first, once, and are known to be stored whatever happened to the events
    assert.equal(server.uploads.length, 4);
    assert.equal(outcome.stored.length, 4);
    await exporter.close();
    await server.close();
  });
}

test('a Retry-After longer than maxRetryAfterMs spools at once instead of waiting', async () => {
  const server = await startIngestServer({
    fault: (request) =>
      request.path === '/v1/events' ? { status: 503, headers: { 'retry-after': '3600' } } : undefined,
  });
  const { delays, sleep } = instantSleep();
  const exporter = exporterFor(server, { sleep, maxRetryAfterMs: 60_000 });
  const outcome = await exporter.write(batchOf(2));
  assert.equal(server.requestsTo('POST', '/v1/events').length, 1);
  assert.deepEqual(delays, []);
  assert.equal(outcome.spooled, 2);
  await exporter.close();
  await server.close();
});

test('the API key is sent as a bearer token; a wrong one is a 401, not retried, with advice', async () => {
  const server = await startIngestServer({ apiKey: 'secret' });
  const good = exporterFor(server, { apiKey: 'secret' });
  assert.equal((await good.write(batchOf(3))).delivered, 3);
  const { errors, onError } = collect();
  const bad = exporterFor(server, { apiKey: 'wrong' }, new Reporter(onError));
  const outcome = await bad.write(batchOf(3, 'y'));
  assert.equal(outcome.dropped, 3);
  assert.equal(server.requestsTo('POST', '/v1/blobs/missing').filter((r) => r.outcome === 401).length, 1);
  assert.match(errors.map((e) => e.message).join('\n'), /check the API key/);
  await good.close();
  await bad.close();
  await server.close();
});

// ---- blobs ----------------------------------------------------------------------------------------

test('blobs: only the hashes the server lacks are uploaded, each before the events that use it', async () => {
  const server = await startIngestServer();
  const batch = batchOf(10);
  // the server already has half of them
  const preloaded = [...batch.blobs].slice(0, 5);
  for (const [blob, bytes] of preloaded) server.blobs.set(blob, bytes);
  const exporter = exporterFor(server);
  const outcome = await exporter.write(batch);
  assert.equal(outcome.delivered, 10);
  assert.deepEqual(new Set(server.asked), new Set(batch.blobs.keys()));
  assert.deepEqual(
    new Set(server.uploads),
    new Set([...batch.blobs.keys()].filter((blob) => !preloaded.some(([p]) => p === blob))),
  );
  assert.equal(server.uploads.length, 5, 'each missing blob uploaded once');
  assert.deepEqual(new Set(outcome.stored), new Set(batch.blobs.keys()));
  await exporter.close();
  await server.close();
});

test('through the recorder: blobs go before their events, and a blob shared by batches is uploaded once', async () => {
  const server = await startIngestServer();
  const r = recorderFor(server);
  const tool = r.tool('same', async () => 'the same long answer '.repeat(100));
  const agent = r.agent('agent', async () => tool());
  for (let i = 0; i < 5; i++) {
    await agent();
    await r.flush(); // one batch per run
  }
  const result = await r.shutdown();
  assert.equal(result.delivered, 20);
  addsUp(result);
  const position = new Map(server.writes.map((write, i) => ['blob' in write ? write.blob : write.event, i]));
  for (const event of server.events.values()) {
    for (const blob of JSON.stringify(event).match(/sha256:[0-9a-f]{64}/g) ?? []) {
      if ((event as { requestHash?: string }).requestHash === blob) continue;
      if ((event as { responseHash?: string }).responseHash === blob) continue;
      assert.ok(
        (position.get(blob) ?? Infinity) < position.get(event.eventId)!,
        `${blob} before ${event.type}`,
      );
    }
  }
  assert.equal(new Set(server.uploads).size, server.uploads.length, 'no blob uploaded twice');
  await server.close();
});

// ---- per-event rejections -------------------------------------------------------------------------

test('events the server rejects are dropped, counted, and reported once per reason', async () => {
  const server = await startIngestServer({
    reject: (event) =>
      event.type === 'step.started'
        ? event.name === 'bad'
          ? 'scripted: bad step'
          : event.name === 'worse'
            ? 'scripted: worse step'
            : undefined
        : undefined,
  });
  const { errors, onError } = collect();
  const r = recorderFor(server, { onError });
  const bad = r.tool('bad', async () => 1);
  const worse = r.tool('worse', async () => 2);
  const agent = r.agent('agent', async () => {
    for (let i = 0; i < 3; i++) await bad();
    await worse();
  });
  await agent();
  await agent();
  const result = await r.shutdown();
  // per run: 2 run events, 4 step.started (rejected), 4 step.finished
  assert.deepEqual(
    {
      produced: result.produced,
      delivered: result.delivered,
      dropped: result.dropped,
      spooled: result.spooled,
    },
    { produced: 20, delivered: 12, dropped: 8, spooled: 0 },
  );
  addsUp(result);
  const rejected = errors.filter((error) => error.code === 'events_rejected');
  assert.equal(rejected.length, 2, 'one report per reason');
  assert.match(rejected[0]!.message, /scripted: bad step/);
  assert.match(rejected[1]!.message, /scripted: worse step/);
  await server.close();
});

// ---- deadlines, the spool, and recovery ---------------------------------------------------------

test('a hanging server: flush and shutdown return by their deadline with everything spooled; a new exporter delivers it exactly once', async () => {
  const hanging = await startIngestServer({
    fault: (request) => (request.path === '/v1/events' ? { hang: true } : undefined),
  });
  const cwd = freshDir();
  const spoolDir = join(cwd, 'spool');
  const first = new Recorder({ endpoint: hanging.url, cwd, env: {}, spoolDir, onError: () => {} });
  await workload(first, 5, 3, 'hang');
  // 2 s deadlines: the last fifth (400 ms) is for spooling, time enough for fdatasync on a loaded machine
  const flushed = await first.flush({ timeoutMs: 2000 });
  assert.equal(flushed.timedOut, true);
  assert.equal(flushed.done, false);
  assert.equal(flushed.pending, 0, 'nothing left in memory');
  assert.equal(flushed.spooled, 40);
  addsUp(flushed);
  await workload(first, 2, 1, 'late');
  const shut = await first.shutdown({ timeoutMs: 2000 });
  assert.equal(shut.timedOut, true);
  assert.deepEqual(
    { produced: shut.produced, spooled: shut.spooled, dropped: shut.dropped, pending: shut.pending },
    { produced: 48, spooled: 48, dropped: 0, pending: 0 },
  );
  addsUp(shut);
  assert.equal(hanging.events.size, 0);
  await hanging.close();

  const healthy = await startIngestServer();
  const second = new Recorder({ endpoint: healthy.url, cwd, env: {}, spoolDir, onError: () => {} });
  await workload(second, 1, 1, 'after');
  const result = await second.flush({ timeoutMs: 10_000 });
  assert.equal(result.done, true);
  assert.equal(result.delivered, 4);
  addsUp(result);
  assert.deepEqual(second.exportStats()?.recovered, { delivered: 48, dropped: 0 });
  assert.equal(healthy.events.size, 52);
  for (const [eventId, count] of healthy.received) assert.equal(count, 1, `${eventId} sent once`);
  await second.shutdown();
  assert.deepEqual(readdirSync(spoolDir), [], 'the spool is empty');
  await healthy.close();
});

test('a server that comes back: the exporter delivers its own spool and flush() reports everything delivered', async () => {
  let down = true;
  const server = await startIngestServer({ fault: () => (down ? { status: 503 } : undefined) });
  const { sleep } = instantSleep();
  const r = recorderFor(server, { exporter: { sleep, maxAttempts: 2, probeMs: 5 } });
  await workload(r, 4, 2, 'outage');
  // wait until everything is spooled (not delivered, not lost)
  for (let i = 0; i < 200 && r.stats().spooled < 24; i++)
    await new Promise((resolve) => setTimeout(resolve, 5));
  const during = r.stats();
  assert.equal(during.spooled, 24);
  addsUp(during);
  down = false;
  const result = await r.flush({ timeoutMs: 10_000 });
  assert.equal(result.done, true);
  assert.deepEqual(
    { delivered: result.delivered, spooled: result.spooled, dropped: result.dropped },
    { delivered: 24, spooled: 0, dropped: 0 },
  );
  assert.equal(server.events.size, 24);
  await r.shutdown();
  await server.close();
});

test('connections cut after the server committed: every event stored once, none lost, none counted twice', async () => {
  let n = 0;
  const server = await startIngestServer({
    fault: (request) => (request.path === '/v1/events' && n++ % 3 === 0 ? { drop: 'after' } : undefined),
  });
  const { sleep } = instantSleep();
  const r = recorderFor(server, { exporter: { sleep, maxAttempts: 5 } });
  for (let i = 0; i < 6; i++) {
    await workload(r, 3, 2, `cut${i}`);
    await r.flush();
  }
  const result = await r.shutdown();
  assert.deepEqual(
    {
      produced: result.produced,
      delivered: result.delivered,
      dropped: result.dropped,
      spooled: result.spooled,
    },
    { produced: 108, delivered: 108, dropped: 0, spooled: 0 },
  );
  assert.equal(server.events.size, 108);
  assert.ok(
    [...server.received.values()].some((count) => count > 1),
    'some batches were sent again',
  );
  await server.close();
});

test('a server that cannot be reached at all: events are spooled, nothing else is written locally', async () => {
  const gone = await startIngestServer();
  const url = gone.url;
  await gone.close();
  const cwd = freshDir();
  const r = new Recorder({ endpoint: url, cwd, env: {}, onError: () => {}, exporter: { maxAttempts: 1 } });
  assert.equal(r.location, url);
  await workload(r, 2, 1, 'gone');
  const result = await r.shutdown({ timeoutMs: 2000 });
  assert.equal(result.spooled, 8);
  addsUp(result);
  assert.deepEqual(readdirSync(cwd), ['.rewind']);
  assert.deepEqual(readdirSync(join(cwd, '.rewind')), ['spool']);
  assert.equal(readdirSync(join(cwd, '.rewind', 'spool')).length, 1);
});

test('the recorder with an endpoint (option, env or config) writes nothing locally when the server answers', async () => {
  const server = await startIngestServer();
  const { mkdirSync, writeFileSync } = await import('node:fs');
  for (const how of ['option', 'env', 'config'] as const) {
    const cwd = freshDir();
    mkdirSync(cwd, { recursive: true });
    if (how === 'config')
      writeFileSync(join(cwd, 'rewind.config.json'), JSON.stringify({ endpoint: server.url }));
    const { errors, onError } = collect();
    const r = new Recorder(
      how === 'option'
        ? { endpoint: server.url, cwd, env: {}, onError }
        : { cwd, env: how === 'env' ? { REWIND_ENDPOINT: server.url } : {}, onError },
    );
    assert.equal(r.recording, true);
    assert.equal(r.location, server.url);
    assert.equal(await r.agent('a', async (x: number) => x * 2)(21), 42);
    const result = await r.shutdown();
    assert.equal(result.delivered, 2);
    assert.deepEqual(errors, []);
    assert.deepEqual(
      readdirSync(cwd),
      how === 'config' ? ['rewind.config.json'] : [],
      `${how}: nothing written locally`,
    );
  }
  assert.equal(server.events.size, 6);
});

test('a malformed endpoint is reported and nothing is recorded', () => {
  const { errors, onError } = collect();
  const r = new Recorder({ endpoint: 'ftp://nope', cwd: freshDir(), env: {}, onError });
  assert.equal(r.recording, false);
  assert.equal(r.agent('a', () => 1)(), 1);
  assert.equal(errors[0]?.code, 'invalid_config');
  assert.match(errors[0]!.message, /http:\/\/ or https:\/\//);
});

// ---- random fault schedules ---------------------------------------------------------------------

const FAULTS: Array<Fault | undefined> = [
  undefined,
  { status: 503 },
  { status: 429, headers: { 'retry-after': '0' } },
  { status: 502 },
  { drop: 'before' },
  { drop: 'after' },
  { status: 500 },
  { status: 400 },
];

test('property: under any fault schedule the counters add up, and the server holds exactly what was counted delivered', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.integer({ min: 0, max: FAULTS.length - 1 }), { maxLength: 30 }),
      fc.integer({ min: 1, max: 4 }),
      async (schedule, runs) => {
        let request = 0;
        const server = await startIngestServer({
          fault: () => FAULTS[schedule[request++] ?? 0],
        });
        const { sleep } = instantSleep();
        const r = recorderFor(server, { exporter: { sleep, maxAttempts: 2, probeMs: 1, maxProbeMs: 4 } });
        await workload(r, runs, 2, 'prop');
        const during = r.stats();
        addsUp(during);
        const result = await r.flush({ timeoutMs: 20_000 });
        addsUp(result);
        assert.equal(result.done, true, JSON.stringify(result));
        assert.equal(result.produced, runs * 6);
        assert.equal(result.spooled + result.pending, 0);
        const finalOnly = schedule.every(
          (i) =>
            FAULTS[i] === undefined ||
            !('status' in FAULTS[i]!) ||
            [429, 502, 503].includes((FAULTS[i] as { status: number }).status),
        );
        if (finalOnly) {
          assert.equal(result.dropped, 0);
          assert.equal(server.events.size, result.produced);
        } else {
          // a batch refused for good may still have been stored by an earlier attempt cut after commit
          assert.ok(server.events.size >= result.delivered && server.events.size <= result.produced);
        }
        const shut = await r.shutdown();
        addsUp(shut);
        await server.close();
      },
    ),
    { numRuns: 25 },
  );
});

// ---- a process killed with its spool half-written ------------------------------------------------

test('a process SIGKILLed after spooling (with a torn last write): a later process delivers every event exactly once', async () => {
  const gone = await startIngestServer();
  const unreachable = gone.url;
  await gone.close();
  const cwd = freshDir();
  const spoolDir = join(cwd, 'spool');
  const script = `
    import { Recorder } from ${JSON.stringify(new URL('../recorder.ts', import.meta.url).href)};
    const r = new Recorder({ endpoint: ${JSON.stringify(unreachable)}, cwd: ${JSON.stringify(cwd)}, env: {},
      spoolDir: ${JSON.stringify(spoolDir)}, onError: () => {}, exporter: { maxAttempts: 1 } });
    const tool = r.tool('t', async (x) => 'answer '.repeat(30) + x);
    const agent = r.agent('a', async (n) => { for (let i = 0; i < 3; i++) await tool(n * 10 + i); return n; });
    for (let n = 0; n < 20; n++) await agent(n);
    while (r.stats().spooled < r.stats().produced) await new Promise((resolve) => setTimeout(resolve, 5));
    process.stdout.write(JSON.stringify(r.stats()) + '\\n');
    setInterval(() => {}, 1000);
  `;
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) resolve(out.trim());
    });
    child.on('exit', (code) => reject(new Error(`the child exited (${code}) before spooling: ${out}`)));
  });
  const stats = JSON.parse(line) as CaptureStats;
  assert.deepEqual(stats, { produced: 160, delivered: 0, spooled: 160, dropped: 0, pending: 0 });
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('close', resolve));
  const files = readdirSync(spoolDir);
  assert.equal(files.length, 1);
  assert.match(files[0]!, /\.open$/, 'the killed writer never sealed its file');
  // a write the kill cut short
  const { appendFileSync } = await import('node:fs');
  appendFileSync(
    join(spoolDir, files[0]!),
    Buffer.concat([Buffer.from('RWS1'), Buffer.from([0, 0, 9, 0, 1, 2])]),
  );

  const healthy = await startIngestServer();
  const { errors, onError } = collect();
  const later = recorderFor(healthy, { cwd, spoolDir, onError });
  const result = await later.flush({ timeoutMs: 10_000 });
  assert.equal(result.done, true);
  assert.deepEqual(later.exportStats()?.recovered, { delivered: 160, dropped: 0 });
  assert.equal(healthy.events.size, 160);
  for (const count of healthy.received.values()) assert.equal(count, 1);
  assert.deepEqual(
    errors.map((error) => error.code),
    ['spool_corrupt'],
  );
  assert.deepEqual(readdirSync(spoolDir), []);
});

// ---- through a fault proxy (the shape of the end-to-end tests against the real server) ----------

test('every batch sent three times and 5% of connections cut after commit: no duplicates stored, nothing missing, nothing dropped', async () => {
  const server = await startIngestServer();
  let seed = 42;
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const proxy = await startFaultProxy(server.url, (request) =>
    request.method === 'POST'
      ? { repeat: 3, ...(random() < 0.05 ? { drop: 'after' as const } : {}) }
      : undefined,
  );
  open.push(proxy);
  const { sleep } = instantSleep();
  const r = recorderFor(proxy.url, { exporter: { sleep, maxEventsPerRequest: 50 } });
  for (let i = 0; i < 5; i++) await workload(r, 20, 3, `p${i}`);
  const result = await r.shutdown({ timeoutMs: 30_000 });
  assert.deepEqual(
    {
      produced: result.produced,
      delivered: result.delivered,
      spooled: result.spooled,
      dropped: result.dropped,
    },
    { produced: 800, delivered: 800, spooled: 0, dropped: 0 },
  );
  assert.equal(server.events.size, 800);
  for (const count of server.received.values()) assert.ok(count >= 3);
  assert.ok(
    proxy.log.some((entry) => entry.action.includes('drop after')),
    'some connections were cut',
  );
});

test('a flush deadline cuts a backoff wait short: the batch is spooled, not held until the retry', async () => {
  const server = await startIngestServer({
    fault: (request) => (request.path === '/v1/events' ? { status: 503 } : undefined),
  });
  // real waits of 30 s between attempts, far beyond the deadline
  const r = recorderFor(server, {
    exporter: { backoff: { baseMs: 60_000, maxMs: 60_000 }, random: () => 0.5 },
  });
  await workload(r, 2, 1, 'backoff');
  // a fifth of the 2 s deadline is for spooling: time enough for fdatasync on a loaded machine
  const result = await r.flush({ timeoutMs: 2000 });
  assert.equal(result.timedOut, true);
  assert.deepEqual(
    { pending: result.pending, spooled: result.spooled, dropped: result.dropped },
    { pending: 0, spooled: 8, dropped: 0 },
  );
  assert.equal(server.requestsTo('POST', '/v1/events').length, 1, 'the retry never happened');
});

test('an agent faster than a failing server: batches spill to the spool instead of being dropped for a full queue', async () => {
  let down = true;
  const server = await startIngestServer({ fault: () => (down ? { status: 503 } : undefined) });
  // a retry waits 30 s (real time): far longer than the queue takes to fill
  const r = recorderFor(server, {
    maxQueueSize: 40,
    exporter: { backoff: { baseMs: 60_000, maxMs: 60_000 }, random: () => 0.5, probeMs: 20 },
  });
  // 8 events every 50 ms, 80 in all, twice what the queue (40) holds, while a retry waits 30 s: only
  // spilling to the spool makes room. 50 ms (not less) so that a loaded machine's slow drain and
  // fdatasync do not turn this into a race; it is still far faster than the server's retries.
  for (let i = 0; i < 10; i++) {
    await workload(r, 1, 3, `fast${i}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  for (let i = 0; i < 6000 && r.stats().pending > 0; i++)
    await new Promise((resolve) => setTimeout(resolve, 5));
  const during = r.stats();
  assert.deepEqual(
    { produced: during.produced, spooled: during.spooled, dropped: during.dropped },
    { produced: 80, spooled: 80, dropped: 0 },
  );
  down = false;
  const result = await r.flush({ timeoutMs: 10_000 });
  assert.equal(result.done, true);
  assert.equal(result.delivered, 80);
  assert.equal(server.events.size, 80);
});
