import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { openStore, type Store } from '@rewind/store';
import { Recorder } from '../recorder.ts';
import { ReplayDivergenceError, ReplayError } from './errors.ts';
import { replay } from './replay.ts';

// The replay runtime on the generic wrappers, against a real SQLite store.

let dir: string;
let store: Store;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rewind-replay-'));
  store = await openStore(join(dir, 'store'));
});
after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Variant {
  word?: string;
  city?: string;
  extra?: boolean;
  skipTool?: boolean;
}

function makeAgent(recorder: Recorder, variant: Variant = {}) {
  let live = 0;
  const weather = recorder.tool('weather', async (args: { city: string }) => {
    live++;
    await sleep(Math.floor(Math.random() * 8));
    return { city: args.city, temp: Math.round(Math.random() * 30) };
  });
  const clock = recorder.tool('clock', () => {
    live++;
    return new Date().toISOString();
  });
  const model = recorder.model('llm', async (prompt: string) => {
    live++;
    await sleep(1);
    return `answer to: ${prompt}`;
  });
  const agent = recorder.agent('weather-bot', async (question: string) => {
    const first = await model(`${variant.word ?? 'Please'} ${question}`);
    const order: string[] = [];
    const cities = ['Paris', variant.city ?? 'Oslo', 'Lima'];
    const reports = variant.skipTool
      ? []
      : await Promise.all(
          cities.map(async (city) => {
            const report = await weather({ city });
            order.push(city);
            return report;
          }),
        );
    if (variant.extra) await weather({ city: 'Rome' });
    const now = clock();
    const id = crypto.randomUUID();
    return { first, order, reports, now, id, r: Math.random(), t: Date.now() };
  });
  return { agent, live: () => live };
}

async function record(variant: Variant = {}) {
  const recorder = new Recorder({ store, onError: () => {} });
  const { agent } = makeAgent(recorder, variant);
  const output = await agent('weather?');
  await recorder.flush();
  const runs = await store.listRuns({ limit: 1 });
  return { runId: runs.items[0]!.id, output };
}

describe('replay (generic wrappers)', () => {
  it('exact replay reproduces a run with a race, the clock, random numbers and uuids, calling nothing', async () => {
    const { runId, output } = await record();
    for (let i = 0; i < 5; i++) {
      const recorder = new Recorder({ store, onError: () => {} });
      const { agent, live } = makeAgent(recorder);
      const result = await replay(agent, runId, { store });
      assert.equal(result.verdict, 'reproduced', JSON.stringify(result.divergence));
      assert.deepEqual(result.output, JSON.parse(JSON.stringify(output)));
      assert.equal(live(), 0);
      assert.equal(result.labels.replayed, 5);
      const run = await store.getRun(result.runId);
      assert.deepEqual(run?.replayOf, { runId, mode: 'exact' });
      assert.deepEqual(run?.labels, { replayed: 5 });
    }
    const original = await store.getRun(runId);
    assert.deepEqual(original?.labels, { recorded: 5 });
  });

  it('onStep reports every step of the new run with its seq and label as it is recorded', async () => {
    const { runId } = await record();
    const recorder = new Recorder({ store, onError: () => {} });
    const { agent } = makeAgent(recorder, { city: 'Rome' });
    const steps: { seq: number | null; label: string; stepsTotal: number }[] = [];
    const result = await replay(agent, runId, {
      store,
      mode: 'cached',
      onStep: (step) => steps.push({ seq: step.seq, label: step.label, stepsTotal: step.stepsTotal }),
    });
    assert.equal(steps.length, 5);
    assert.deepEqual(
      steps.map((s) => s.seq).sort((a, b) => (a ?? 0) - (b ?? 0)),
      [1, 2, 3, 4, 5],
    );
    assert.ok(steps.every((s) => s.stepsTotal === 5));
    const counts: Record<string, number> = {};
    for (const step of steps) counts[step.label] = (counts[step.label] ?? 0) + 1;
    assert.deepEqual(counts, { cached: 4, live: 1 });
    assert.equal(result.labels.cached, 4);
    assert.equal(result.labels.live, 1);
  });

  it('a changed prompt word diverges at seq 1 with a field diff', async () => {
    const { runId } = await record();
    const seen: ReplayDivergenceError[] = [];
    const { agent } = makeAgent(new Recorder({ store, onError: () => {} }), { word: 'Kindly' });
    const result = await replay(agent, runId, { store, onDivergence: (d) => seen.push(d) });
    assert.equal(result.verdict, 'diverged');
    assert.equal(result.divergence?.reason, 'request');
    assert.equal(result.divergence?.seq, 1);
    assert.equal(result.divergence?.callKey, 'model:llm#0');
    assert.deepEqual(result.divergence?.diff, [
      { path: '/messages/0/content', recorded: 'Please weather?', replayed: 'Kindly weather?' },
    ]);
    assert.ok(ReplayDivergenceError.isInstance(seen[0]));
    assert.equal(result.error?.type, 'ReplayDivergenceError');
    assert.equal(result.labels.diverged, 1);
  });

  it('a changed tool argument, an extra call and a removed call diverge at the right seq', async () => {
    const { runId } = await record();
    const changed = await replay(makeAgent(new Recorder({ store }), { city: 'Bergen' }).agent, runId, {
      store,
    });
    assert.equal(changed.divergence?.reason, 'request');
    assert.equal(changed.divergence?.seq, 3);
    assert.equal(changed.divergence?.callKey, 'tool:weather#1');
    const extra = await replay(makeAgent(new Recorder({ store }), { extra: true }).agent, runId, { store });
    assert.equal(extra.divergence?.reason, 'extra');
    assert.equal(extra.divergence?.seq, 5);
    assert.equal(extra.divergence?.callKey, 'tool:weather#3');
    const removed = await replay(makeAgent(new Recorder({ store }), { skipTool: true }).agent, runId, {
      store,
    });
    assert.equal(removed.divergence?.reason, 'missing');
    assert.equal(removed.divergence?.seq, 2);
    assert.equal(removed.divergence?.callKey, 'tool:weather#0');
  });

  it('cached mode serves matching calls and runs the rest live', async () => {
    const { runId } = await record();
    const { agent, live } = makeAgent(new Recorder({ store }), { city: 'Bergen' });
    const result = await replay(agent, runId, { store, mode: 'cached' });
    assert.equal(result.labels.cached, 4);
    assert.equal(result.labels.live, 1);
    assert.equal(live(), 1);
    assert.equal(result.verdict, 'diverged');
  });

  it('fork with a replacement tool output: overridden at the step, the rest cached or live', async () => {
    const { runId } = await record();
    const { agent } = makeAgent(new Recorder({ store }));
    const result = await replay(agent, runId, {
      store,
      fork: { atSeq: 3, response: { city: 'Oslo', temp: -40 } },
    });
    assert.equal(result.labels.overridden, 1);
    assert.equal(result.labels.replayed, 2);
    assert.deepEqual((result.output as { reports: unknown[] }).reports[1], { city: 'Oslo', temp: -40 });
    const run = await store.getRun(result.runId);
    assert.deepEqual(run?.forkOf, {
      runId,
      atSeq: 3,
      edit: { response: { output: { city: 'Oslo', temp: -40 } }, then: 'cached' },
    });
  });

  it('refuses a run with missing blobs and lists them', async () => {
    const { runId } = await record();
    const events = await store.readEvents(runId);
    const started = events.find((e) => e.type === 'run.started')!;
    const fakeSource = {
      location: 'test',
      getRun: (id: string) => store.getRun(id),
      readEvents: (id: string) => store.readEvents(id),
      getBlob: async (hash: string) =>
        hash === started.input.hash ? undefined : store.blobs.get(hash as `sha256:${string}`),
    };
    await assert.rejects(
      replay(makeAgent(new Recorder({ store })).agent, runId, { store, source: fakeSource }),
      (error: unknown) =>
        ReplayError.isInstance(error) &&
        error.code === 'blobs_missing' &&
        error.missing[0] === started.input.hash,
    );
    // A source that can say what it lacks: request blobs are checked without being read.
    const firstRequest = events.find((e) => e.type === 'step.started')!.request.hash;
    const lacking = {
      ...fakeSource,
      getBlob: (hash: string) => store.blobs.get(hash as `sha256:${string}`),
      missingBlobs: async (hashes: readonly string[]) => hashes.filter((hash) => hash === firstRequest),
    };
    await assert.rejects(
      replay(makeAgent(new Recorder({ store })).agent, runId, { store, source: lacking as never }),
      (error: unknown) => ReplayError.isInstance(error) && error.missing.join() === firstRequest,
    );
  });

  it('cached mode serves identical repeats in recorded order; a store given as a directory is opened and closed', async () => {
    const storeDir = join(dir, 'by-path');
    const make = (recorder: Recorder) => {
      let calls = 0;
      const next = recorder.tool('next', async (_what: string) => ++calls);
      return {
        agent: recorder.agent('counter', async () => [await next('x'), await next('x'), await next('x')]),
        calls: () => calls,
      };
    };
    const recorder = new Recorder({ store: storeDir, env: {} });
    assert.deepEqual(await make(recorder).agent(), [1, 2, 3]);
    await recorder.shutdown();
    const pathStore = await openStore(storeDir);
    const runId = (await pathStore.listRuns({ limit: 1 })).items[0]!.id;
    await pathStore.close();
    const replayed = make(new Recorder({ enabled: false }));
    const result = await replay(replayed.agent, runId, { store: storeDir, mode: 'cached' });
    assert.deepEqual(result.output, [1, 2, 3]);
    assert.equal(result.labels.cached, 3);
    assert.equal(replayed.calls(), 0);
    assert.equal(result.verdict, 'reproduced');
  });
});
