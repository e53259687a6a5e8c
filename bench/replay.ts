// Replay (issue 6): exact replay throughput and the cost of serving one recorded model response.
//
// 1. Throughput. A run of N sequential tool steps (N = 1,000, 10,000, 100,000; each request
//    `{i, query}` and response `{output: {i, text}}` distinct, ~150 bytes each) is recorded by
//    the real recorder into the local store (SQLite + filesystem blobs, in a temp directory).
//    Then `replay(agent, runId, {mode: 'exact'})` is timed end to end: reading the run's events
//    from SQLite and its N+2 outcome blobs from the CAS (the N request blobs are only checked),
//    re-running the agent with every step served,
//    and writing the new run (N steps, labels) through the recorder into the same store,
//    flushed. Steps/s = N ÷ that time. The rows also split the time: load (events + blobs)
//    and the rest (run + record + flush). Linear means steps/s does not fall with N.
// 2. One model response through the `openai` client. A run of 2,000 sequential
//    `chat.completions.create` calls (wrapped client) is recorded against the testkit's scripted
//    provider; it is then replayed exactly with the provider stopped, and each call is timed
//    inside the agent with process.hrtime (not taped) from `create()` to the awaited
//    ChatCompletion: the served response, step bookkeeping and the completion-order gate
//    included. Peer, in the same run: `nock` playing back the same HTTP exchange (the same
//    response body) to an unwrapped `openai` client, the same 2,000 calls timed the same way.
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { Recorder, replay, storeSource } from '@rewind/sdk';
import { wrapOpenAI } from '@rewind/sdk/openai';
import { openStore, type Store } from '@rewind/store';
import { startScriptedProvider } from '@rewind/testkit';
import nock from 'nock';
import OpenAI from 'openai';
import type { BenchContext, BenchRow } from './lib.ts';
import { median, quantile } from './lib.ts';

const SIZES = [1_000, 10_000, 100_000];
const MODEL_CALLS = 2_000;

/**
 * A store that accepts the new run and keeps nothing: replay reading from SQLite with the cost
 * of writing its new run taken out (the engine's own throughput).
 */
function discardingStore(): Store {
  const blobs = {
    location: 'discard',
    put: async () => 'sha256:0' as const,
    putMany: async (_items: readonly Uint8Array[], options?: { hashes?: readonly string[] }) => [
      ...(options?.hashes ?? []),
    ],
  };
  return {
    location: 'discard',
    blobs,
    append: async (events: readonly unknown[]) => ({
      accepted: events.length,
      duplicates: 0,
      rejected: 0,
      outcomes: [],
    }),
    close: async () => {},
  } as unknown as Store;
}

function toolAgent(recorder: Recorder, steps: number) {
  const search = recorder.tool('search', async (request: { i: number; query: string }) => ({
    i: request.i,
    text: `result ${request.i} for ${request.query}`,
  }));
  return recorder.agent('bench-replay', async (count: number) => {
    let last = '';
    for (let i = 0; i < Math.min(count, steps); i++)
      last = (await search({ i, query: `query number ${i}` })).text;
    return last;
  });
}

async function throughput(ctx: BenchContext, store: Store, steps: number): Promise<BenchRow[]> {
  // The loop never yields to the recorder's drain: the queue must hold the whole run.
  const recorder = new Recorder({
    store,
    env: {},
    onError: () => {},
    maxQueueSize: 1_000_000,
    maxQueueBytes: 2 ** 30,
  });
  await toolAgent(recorder, steps)(steps);
  const flushed = await recorder.flush({ timeoutMs: 600_000 });
  if (flushed.dropped > 0) throw new Error(`recording dropped ${flushed.dropped} events`);
  const runId = (await store.listRuns({ agent: 'bench-replay', limit: 1 })).items[0]!.id;
  const rounds = steps >= 100_000 ? 1 : steps >= 10_000 ? Math.min(3, ctx.runs) : ctx.runs;
  const totals: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const agent = toolAgent(new Recorder({ store, enabled: false }), steps);
    const start = process.hrtime.bigint();
    const result = await replay(agent, runId, { store });
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    if (result.verdict !== 'reproduced' || result.labels.replayed !== steps)
      throw new Error(`replay of ${steps} steps: ${result.verdict} ${JSON.stringify(result.divergence)}`);
    totals.push(steps / seconds);
    ctx.log(`${steps} steps: ${Math.round(steps / seconds)} steps/s (${seconds.toFixed(2)} s)`);
  }
  const engine: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const agent = toolAgent(new Recorder({ store, enabled: false }), steps);
    const start = process.hrtime.bigint();
    const result = await replay(agent, runId, { store: discardingStore(), source: storeSource(store) });
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    if (result.verdict !== 'reproduced') throw new Error(`replay of ${steps} steps: ${result.verdict}`);
    engine.push(steps / seconds);
    ctx.log(`${steps} steps, new run discarded: ${Math.round(steps / seconds)} steps/s`);
  }
  // The load alone, as replay does it: events from SQLite, every response blob read from the
  // CAS, the request blobs only checked (read on demand for divergence diffs and fork edits).
  const loadStart = process.hrtime.bigint();
  const events = await store.readEvents(runId);
  await Promise.all([
    store.blobs.missing(
      events.flatMap((event) => (event.type === 'step.started' ? [event.request.hash] : [])),
    ),
    ...events.flatMap((event) =>
      event.type === 'step.finished' && event.status === 'ok' ? [store.blobs.get(event.response.hash)] : [],
    ),
  ]);
  const loadSeconds = Number(process.hrtime.bigint() - loadStart) / 1e9;
  const label = steps.toLocaleString('en-US');
  return [
    {
      name: `replay: exact, ${label}-step run (load + run + record)`,
      unit: 'steps/s',
      median: median(totals),
      target: '>= 20000, linear',
    },
    {
      name: `replay: exact, ${label}-step run (load + run; new run discarded)`,
      unit: 'steps/s',
      median: median(engine),
      target: '>= 20000, linear',
    },
    {
      name: `replay: reading a ${label}-step recording (events + outcome blobs; requests checked)`,
      unit: 'steps/s',
      median: steps / loadSeconds,
    },
  ];
}

async function timedCalls(client: OpenAI, calls: number, times: number[]): Promise<void> {
  for (let i = 0; i < calls; i++) {
    const start = process.hrtime.bigint();
    await client.chat.completions.create({
      model: 'gpt-bench',
      messages: [{ role: 'user', content: `call ${i}` }],
    });
    times.push(Number(process.hrtime.bigint() - start) / 1000);
  }
}

async function modelResponse(ctx: BenchContext, store: Store): Promise<BenchRow[]> {
  const provider = await startScriptedProvider({
    rules: [{ reply: { text: 'A recorded answer of a few words.' } }],
  });
  const baseURL = provider.openaiBaseURL;
  const recorder = new Recorder({ store, env: {}, onError: () => {} });
  const agentOf = (rec: Recorder, times: number[]) => {
    const client = wrapOpenAI(new OpenAI({ baseURL, apiKey: 'test', maxRetries: 0 }));
    return rec.agent('bench-openai', async (calls: number) => {
      await timedCalls(client, calls, times);
      return calls;
    });
  };
  await agentOf(recorder, [])(MODEL_CALLS);
  await recorder.flush({ timeoutMs: 120_000 });
  await provider.close();
  const runId = (await store.listRuns({ agent: 'bench-openai', limit: 1 })).items[0]!.id;
  const served: number[] = [];
  const result = await replay(agentOf(new Recorder({ store, enabled: false }), served), runId, { store });
  if (result.verdict !== 'reproduced') throw new Error(`openai replay: ${JSON.stringify(result.divergence)}`);

  // nock plays back the same exchange: the response body the provider sent for the last call.
  const timeline = await store.readTimeline(runId, { afterSeq: MODEL_CALLS - 1 });
  const step = timeline.items[0]!;
  const response = JSON.parse(new TextDecoder().decode(await store.blobs.get(step.response!.hash))) as {
    raw: unknown;
  };
  const played: number[] = [];
  nock('http://openai.bench.invalid')
    .post('/v1/chat/completions')
    .times(MODEL_CALLS)
    .reply(200, response.raw as nock.Body, {
      'content-type': 'application/json',
    });
  try {
    await timedCalls(
      new OpenAI({ baseURL: 'http://openai.bench.invalid/v1', apiKey: 'test', maxRetries: 0 }),
      MODEL_CALLS,
      played,
    );
  } finally {
    nock.cleanAll();
    nock.restore();
  }
  ctx.log(`served median ${median(served).toFixed(1)} µs, nock ${median(played).toFixed(1)} µs`);
  return [
    {
      name: 'replay: one model response served through the openai client',
      unit: 'µs',
      median: median(served),
      p99: quantile(served, 0.99),
      target: '<= 50',
    },
    {
      name: 'replay: the same exchange played back by nock (peer)',
      unit: 'µs',
      median: median(played),
      p99: quantile(played, 0.99),
      peer: 'nock 15 + openai client',
    },
  ];
}

export default async function replayBench(ctx: BenchContext): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const store = await openStore(join(mkdtempSync(join(ctx.tmpDir, 'store-')), '.rewind'));
  try {
    rows.push(...(await modelResponse(ctx, store)));
    for (const steps of SIZES) rows.push(...(await throughput(ctx, store, steps)));
  } finally {
    await store.close();
  }
  return rows;
}
