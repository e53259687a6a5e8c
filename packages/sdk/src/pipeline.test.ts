import assert from 'node:assert/strict';
import { hash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { BlobHash, StepStarted } from '@rewind/schema';
import { openStore, readPayload } from '@rewind/store';
import { currentRunId } from './capture.ts';
import type { RewindCaptureError } from './errors.ts';
import { Recorder } from './recorder.ts';
import { enospc, fullDiskStore, hangingStore, MemoryStore } from './testing.ts';

function addsUp(stats: {
  produced: number;
  delivered: number;
  spooled: number;
  dropped: number;
  pending: number;
}): void {
  assert.equal(
    stats.produced,
    stats.delivered + stats.spooled + stats.dropped + stats.pending,
    JSON.stringify(stats),
  );
}

function collect(): { errors: RewindCaptureError[]; onError: (error: RewindCaptureError) => void } {
  const errors: RewindCaptureError[] = [];
  return { errors, onError: (error) => errors.push(error) };
}

test('blobs are written before the events that reference them, parts before their payloads', async () => {
  const store = new MemoryStore();
  const r = new Recorder({ store, cwd: '/', env: {} });
  const model = r.model(
    'llm',
    async (messages: Array<{ role: string; content: string }>) => `echo ${messages.length}`,
  );
  await r.agent('a', async () => {
    const messages = [{ role: 'system', content: 'You are terse. '.repeat(20) }];
    for (let i = 0; i < 3; i++) {
      messages.push({ role: 'user', content: `question ${i} `.repeat(20) });
      messages.push({ role: 'assistant', content: await model(messages) });
    }
  })();
  const result = await r.flush();
  assert.equal(result.done, true);
  assert.equal(result.dropped, 0);
  const putAt = new Map(
    store.log.flatMap((entry, index) => (entry.op === 'put' ? [[entry.hash, index]] : [])),
  );
  for (const [index, entry] of store.log.entries()) {
    if (entry.op !== 'append') continue;
    const event = store.events.find((e) => e.eventId === entry.eventId)!;
    const refs = JSON.stringify(event).match(/sha256:[0-9a-f]{64}/g) ?? [];
    for (const hash of refs) {
      if (
        (event as StepStarted).requestHash === hash ||
        (event as { responseHash?: string }).responseHash === hash
      )
        continue; // content hashes name no blob
      assert.ok(
        (putAt.get(hash as `sha256:${string}`) ?? Infinity) < index,
        `${hash} put before ${event.type}`,
      );
    }
  }
  // each blob is written once per process
  const puts = store.log.filter((entry) => entry.op === 'put').map((entry) => entry.hash);
  assert.equal(new Set(puts).size, puts.length);
  await r.shutdown();
});

test('a full disk (every write ENOSPC) leaves the agent untouched, is reported once, and counted', async () => {
  const { errors, onError } = collect();
  const store = fullDiskStore();
  const r = new Recorder({ store, cwd: '/', env: {}, onError });
  const failing = r.tool('fails', () => {
    throw new TypeError('bad input');
  });
  const agent = r.agent('a', async (n: number) => {
    let caught: unknown;
    try {
      failing();
    } catch (error) {
      caught = error;
    }
    return { n, caught: (caught as Error).message };
  });
  for (let i = 0; i < 5; i++) assert.deepEqual(await agent(i), { n: i, caught: 'bad input' });
  const thrower = r.agent('b', async () => {
    throw new RangeError('agent failed');
  });
  await assert.rejects(
    thrower(),
    (error: unknown) => error instanceof RangeError && error.message === 'agent failed',
  );
  const result = await r.flush({ timeoutMs: 5000 });
  assert.equal(result.done, true);
  assert.equal(result.delivered, 0);
  assert.equal(result.dropped, result.produced);
  assert.ok(result.produced >= 5 * 4 + 2);
  addsUp(r.stats());
  assert.equal(errors.length, 1, errors.map((e) => e.message).join('\n'));
  assert.equal(errors[0]!.code, 'store_failed');
  assert.match(errors[0]!.message, /ENOSPC/);
  assert.ok(store.attempts > 1);
  await r.shutdown();
});

test('the default error handler warns once with a [rewind] prefix', async () => {
  const warnings: unknown[][] = [];
  const original = console.warn;
  console.warn = (...args: unknown[]) => warnings.push(args);
  try {
    const r = new Recorder({ store: fullDiskStore(), cwd: '/', env: {} });
    const agent = r.agent('a', (x: number) => x + 1);
    for (let i = 0; i < 3; i++) assert.equal(agent(i), i + 1);
    await r.flush();
    await agent(9);
    await r.flush();
    assert.equal(warnings.length, 1);
    assert.match(String(warnings[0]![0]), /^\[rewind\] /);
  } finally {
    console.warn = original;
  }
});

test('flush({timeoutMs}) meets its deadline when the store never answers, and says what is pending', async () => {
  const { errors, onError } = collect();
  const r = new Recorder({ store: hangingStore(), cwd: '/', env: {}, onError });
  const tool = r.tool('t', (x: number) => x);
  await r.agent('a', async () => {
    for (let i = 0; i < 10; i++) tool(i);
  })();
  const started = performance.now();
  const result = await r.flush({ timeoutMs: 100 });
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= 95 && elapsed < 1100, `flush took ${elapsed} ms`);
  assert.equal(result.timedOut, true);
  assert.equal(result.done, false);
  assert.equal(result.pending, 22);
  addsUp(result);
  assert.deepEqual(
    errors.map((e) => e.code),
    ['deadline'],
  );
  await r.shutdown({ timeoutMs: 50 });
});

test('shutdown({timeoutMs}) meets its deadline with a hanging store (blobs and appends), drops what is pending', async () => {
  const { errors, onError } = collect();
  const r = new Recorder({ store: hangingStore(undefined, { blobs: true }), cwd: '/', env: {}, onError });
  const agent = r.agent('a', async (x: number) => x);
  for (let i = 0; i < 3; i++) await agent(i);
  const started = performance.now();
  const result = await r.shutdown({ timeoutMs: 150 });
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= 140 && elapsed < 1150, `shutdown took ${elapsed} ms`);
  assert.equal(result.timedOut, true);
  assert.equal(result.pending, 6, 'what was still pending at the deadline');
  const after = r.stats();
  assert.deepEqual(after, { produced: 6, delivered: 0, spooled: 0, dropped: 6, pending: 0 });
  assert.ok(errors.some((e) => e.code === 'deadline' && /6 event\(s\)/.test(e.message)));
  // after shutdown the wrappers just run, and nothing more is produced
  assert.equal(await agent(41), 41);
  assert.equal(r.stats().produced, 6);
  assert.equal(r.recording, false);
  // shutdown is idempotent
  assert.equal(await r.shutdown(), result);
});

test('a full queue drops and counts, reports once, and the agent is unaffected', async () => {
  const { errors, onError } = collect();
  const store = new MemoryStore();
  const r = new Recorder({ store, cwd: '/', env: {}, onError, maxQueueSize: 50 });
  const tool = r.tool('t', (x: number) => x * 2);
  const total = await r.agent('burst', () => {
    let sum = 0;
    for (let i = 0; i < 200; i++) sum += tool(i);
    return sum;
  })();
  assert.equal(total, 39800);
  const stats = r.stats();
  assert.equal(stats.produced, 402);
  assert.ok(stats.dropped >= 350, JSON.stringify(stats));
  addsUp(stats);
  const result = await r.flush();
  assert.equal(result.done, true);
  assert.equal(result.delivered + result.dropped, 402);
  assert.equal(store.events.length, result.delivered);
  assert.deepEqual(
    errors.map((e) => e.code),
    ['queue_full'],
  );
  await r.shutdown();
});

test('events the store rejects are counted as dropped and reported', async () => {
  const { errors, onError } = collect();
  const store = new MemoryStore();
  store.append = async (events) => ({
    accepted: 0,
    duplicates: 0,
    rejected: events.length,
    outcomes: events.map((event) => ({
      eventId: String((event as { eventId: string }).eventId),
      status: 'rejected' as const,
      reason: 'schema version too new',
    })),
  });
  const r = new Recorder({ store, cwd: '/', env: {}, onError });
  await r.agent('a', () => 1)();
  const result = await r.flush();
  assert.deepEqual(
    { delivered: result.delivered, dropped: result.dropped, pending: result.pending },
    { delivered: 0, dropped: 2, pending: 0 },
  );
  assert.equal(errors[0]?.code, 'events_rejected');
  assert.match(errors[0]!.message, /schema version too new/);
  await r.shutdown();
});

test('stats always add up while events flow', async () => {
  const store = new MemoryStore();
  const r = new Recorder({ store, cwd: '/', env: {} });
  const tool = r.tool('t', async (x: number) => x);
  const agent = r.agent('a', async (n: number) => {
    for (let i = 0; i < n; i++) await tool(i);
    return n;
  });
  const runs = Promise.all([agent(50), agent(30)]);
  for (let i = 0; i < 20; i++) {
    addsUp(r.stats());
    await new Promise((resolve) => setImmediate(resolve));
  }
  await runs;
  await r.flush();
  assert.deepEqual(r.stats(), { produced: 164, delivered: 164, spooled: 0, dropped: 0, pending: 0 });
  await r.shutdown();
});

/** A MemoryStore whose blob store also has putMany (the filesystem store's batch API), logging each call. */
function packingStore(fail?: (call: number) => unknown): MemoryStore & { putManyCalls: BlobHash[][] } {
  const store = new MemoryStore() as MemoryStore & { putManyCalls: BlobHash[][] };
  store.putManyCalls = [];
  store.blobs.put = async () => assert.fail('put is not used when putMany exists');
  store.blobs.putMany = async (items, options) => {
    const error = fail?.(store.putManyCalls.length);
    const hashes = items.map((bytes) => `sha256:${hash('sha256', bytes, 'hex')}` as BlobHash);
    store.putManyCalls.push(hashes);
    if (error !== undefined) throw error;
    assert.deepEqual(options?.hashes, hashes, 'the SDK passes the hashes it computed');
    for (const [i, key] of hashes.entries()) {
      store.blobMap.set(key, new Uint8Array(items[i]!));
      store.log.push({ op: 'put', hash: key });
    }
    return hashes;
  };
  return store;
}

test('with putMany: one call per drained batch, before the batch is appended, each blob once', async () => {
  const store = packingStore();
  const r = new Recorder({ store, cwd: '/', env: {} });
  const model = r.model(
    'llm',
    async (messages: Array<{ role: string; content: string }>) => `echo ${messages.length}`,
  );
  const agent = r.agent('a', async (run: number) => {
    const messages = [{ role: 'system', content: 'You are terse. '.repeat(20) }];
    for (let i = 0; i < 5; i++) {
      messages.push({ role: 'user', content: `question ${run}.${i} `.repeat(20) });
      messages.push({ role: 'assistant', content: await model(messages) });
    }
  });
  await agent(1);
  await r.flush();
  await agent(2); // a second batch: the shared system prompt part is not written again
  const result = await r.flush();
  assert.equal(result.dropped, 0);
  assert.equal(store.putManyCalls.length, 2);
  const all = store.putManyCalls.flat();
  assert.equal(new Set(all).size, all.length, 'each blob written once per process');
  // every blob an event references was written in a putMany logged before the event's append
  const putAt = new Map(
    store.log.flatMap((entry, i) => (entry.op === 'put' ? [[entry.hash, i] as const] : [])),
  );
  for (const [at, entry] of store.log.entries()) {
    if (entry.op !== 'append') continue;
    const event = store.events.find((e) => e.eventId === entry.eventId)!;
    for (const match of JSON.stringify(event).matchAll(/"hash":"(sha256:[0-9a-f]{64})"/g)) {
      assert.ok((putAt.get(match[1] as BlobHash) ?? Infinity) < at, `${match[1]} put before ${event.type}`);
    }
  }
  await r.shutdown();
});

test('a putMany that fails drops the events that need its blobs, reports once, and the next batch tries again', async () => {
  const { errors, onError } = collect();
  const store = packingStore((call) => (call === 0 ? enospc() : undefined));
  const r = new Recorder({ store, cwd: '/', env: {}, onError });
  const tool = r.tool('t', async (x: string) => x.toUpperCase());
  const agent = r.agent('a', async (input: string) => tool(input));
  assert.equal(await agent('first'), 'FIRST');
  const first = await r.flush();
  assert.equal(first.delivered, 0);
  assert.equal(first.dropped, 4);
  assert.equal(await agent('second'), 'SECOND');
  const second = await r.flush();
  assert.equal(second.delivered, 4);
  addsUp(second);
  assert.deepEqual(
    errors.map((e) => e.code),
    ['store_failed'],
  );
  assert.match(errors[0]!.message, /ENOSPC/);
  await r.shutdown();
});

test('into a local filesystem store, small blobs land in packs and read back', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rewind-pipeline-'));
  try {
    const r = new Recorder({ store: dir, cwd: dir, env: {} });
    const tool = r.tool('lookup', async (id: string) => ({ id, text: `result for ${id} `.repeat(80) }));
    const runId = await r.agent('a', async () => {
      for (let i = 0; i < 20; i++) await tool(`order-${i}`);
      return currentRunId();
    })();
    const shut = await r.shutdown();
    assert.equal(shut.dropped, 0);
    assert.ok(readdirSync(join(dir, 'blobs', 'packs')).length >= 1);
    const store = await openStore(dir);
    try {
      const steps = await store.readTimeline(runId!);
      assert.equal(steps.items.length, 20);
      const last = steps.items.at(-1)!;
      assert.deepEqual(await readPayload(store.blobs, last.response!), {
        output: { id: 'order-19', text: 'result for order-19 '.repeat(80) },
      });
      assert.deepEqual((await store.blobs.verify()).corrupt, []);
    } finally {
      await store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
