// Capture overhead: what recording a wrapped call costs the agent, Rewind against OpenTelemetry
// JS, Langfuse's JS SDK and LangSmith's `traceable`, measured in the same run.
//
// Workload: rounds (max(5, ctx.runs)) × 5,000 sequential `await tool(request)` calls, each with a
// ~2 KB request and a ~2 KB response (bench/capture/workload.ts: a JSON round trip of a
// tool-call-like payload and a response computed from it, with text from a seeded PRNG so that
// no two calls carry the same content). Each round is one run / root span whose calls never
// yield to the event loop (a burst of sequential tool calls: the tracers' background export
// cannot run during it, so the per-call wall time is their hot path), then the tracer's flush:
// the run is awaited until delivered, as a job or a serverless invocation does (for a server,
// the most idle time between two runs it could hope for). The last round ends with shutdown.
//
// Fairness:
// - Every tracer runs in a fresh child process of its own (bench/capture/peer.ts), one after
//   the other, at its library defaults, exporting to a sink on 127.0.0.1 that runs in another
//   child process (bench/capture/sink.ts), so decoding and counting at the sink is not billed
//   to the measured process. Rewind writes to its default local store (SQLite + filesystem
//   blobs) in a temp directory, in-process: its storage CPU is billed, which is the point.
// - A baseline child runs the same workload unwrapped, before and after the peers; the mean of
//   its two runs is subtracted.
// - Each child first warms up the workload (3,000 untraced calls) and the tracer (1,000 traced
//   calls named `warmup` in a run of their own, flushed and not counted), then measures.
// - Added wall time per call: the real `performance.now()` (taken before any tracer loads;
//   Rewind's tape patches it inside runs) around each call; median and p99 over all calls,
//   minus the baseline's median per-call time.
// - CPU per call: `process.cpuUsage()` (user + system, all threads of the process) from the
//   first measured call to the end of the final shutdown (every flush included), divided by
//   the calls, minus the baseline's CPU per call.
// - Flush: the wall time of the flush after each round (median over rounds), informative.
// - Delivered: the wrapped calls the sink decoded with their output (counted by span/run id)
//   after the peer's flushes and shutdown (30 s deadline each), over the calls made. For Rewind: the
//   measured runs' steps in the store's timeline (`openStore` + `readTimeline`), finished with
//   a response, cross-checked against `recorder.stats()`.
//
// Peers: OpenTelemetry = BasicTracerProvider (@opentelemetry/sdk-trace-base) with the
// AsyncLocalStorage context manager, BatchSpanProcessor at its defaults and the OTLP/HTTP
// (JSON) exporter, a span per call with the JSON of request and response as attributes.
// Langfuse = its current OpenTelemetry-based SDK (@langfuse/tracing `observe` +
// @langfuse/otel LangfuseSpanProcessor at defaults). LangSmith = `traceable` with a
// `Client({apiUrl: sink})`; the sink's /info allows compressed multipart ingestion.
// docs/benchmarks.md, "Capture overhead", has the figures and the caveats.

import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchContext, BenchRow } from './lib.ts';
import { median } from './lib.ts';

// For development: fewer calls per round, or only some peers (the baseline always runs).
const CALLS = Number(process.env.REWIND_BENCH_CAPTURE_CALLS ?? 5000);
const ONLY = process.env.REWIND_BENCH_CAPTURE_PEERS?.split(',');
const CHILD_TIMEOUT_MS = 10 * 60_000;
const SINK = new URL('capture/sink.ts', import.meta.url).pathname;
const PEER = new URL('capture/peer.ts', import.meta.url).pathname;

interface PeerResult {
  peer: string;
  calls: number;
  wallMedianUs: number;
  wallP99Us: number;
  cpuUs: number;
  loopMs: number;
  flushMs: number[];
  totalMs: number;
  report: { delivered?: number; storeSteps?: number; stats?: Record<string, number>; storeError?: string };
}

interface SinkCounts {
  calls: Record<string, { received: number; complete: number }>;
  requests: Record<string, number>;
  bytes: number;
  errors: number;
}

interface Measured extends PeerResult {
  delivered: number;
  sink: SinkCounts;
}

const LABELS: Record<string, string> = {
  rewind: 'Rewind',
  opentelemetry: 'OpenTelemetry',
  langfuse: 'Langfuse',
  langsmith: 'LangSmith',
};

export default async function capture(ctx: BenchContext): Promise<BenchRow[]> {
  const rounds = Math.max(5, ctx.runs);
  const order = ['baseline', 'rewind', 'opentelemetry', 'langfuse', 'langsmith', 'baseline'].filter(
    (peer) => peer === 'baseline' || ONLY === undefined || ONLY.includes(peer),
  );
  const results: Measured[] = [];
  for (const [index, peer] of order.entries()) {
    let result: Measured;
    try {
      result = await measure(ctx, peer, rounds, join(ctx.tmpDir, `${index}-${peer}`));
    } catch (error) {
      // A peer that fails (a library, or Rewind's work in progress) gets rows of NaN, not a
      // missing table; the baseline cannot be done without.
      if (peer === 'baseline') throw error;
      ctx.log(`${peer} FAILED: ${(error as Error).message}`);
      result = failed(peer);
    }
    results.push(result);
    ctx.log(
      `${peer}: ${result.calls} calls, wall/call median ${result.wallMedianUs.toFixed(1)} µs p99 ${result.wallP99Us.toFixed(1)} µs, ` +
        `CPU/call ${(result.cpuUs / result.calls).toFixed(1)} µs, calls ${(result.loopMs / 1000).toFixed(2)} s + flushes ${result.flushMs.map((ms) => (ms / 1000).toFixed(2)).join('/')} s, ` +
        `delivered ${result.delivered}/${result.calls}` +
        (peer === 'baseline' ? '' : `; ${describeDelivery(result)}`),
    );
  }
  const baselines = results.filter((result) => result.peer === 'baseline');
  const mean = (values: number[]): number => values.reduce((sum, value) => sum + value, 0) / values.length;
  const baseWall = mean(baselines.map((result) => result.wallMedianUs));
  const baseCpu = mean(baselines.map((result) => result.cpuUs / result.calls));

  const what = `${rounds} × ${CALLS.toLocaleString('en-US')} sequential ~2 KB tool calls`;
  const byPeer = new Map(results.map((result) => [result.peer, result]));
  const otel = byPeer.get('opentelemetry');
  const otelCpu = otel === undefined ? Number.NaN : cpuPerCall(otel, baseCpu);
  const peerNames = (metric: string): string =>
    ['opentelemetry', 'langfuse', 'langsmith'].map((peer) => `${LABELS[peer]} ${metric}`).join('; ');
  const rows: BenchRow[] = [];
  for (const peer of ['rewind', 'opentelemetry', 'langfuse', 'langsmith']) {
    const result = byPeer.get(peer);
    if (result === undefined) continue;
    const label = LABELS[peer]!;
    const isRewind = peer === 'rewind';
    rows.push(
      {
        name: `${label} added wall per call (${what})`,
        unit: 'µs',
        median: result.wallMedianUs - baseWall,
        p99: result.wallP99Us - baseWall,
        ...(isRewind ? { peer: peerNames('added wall per call'), target: '<= 8 (p99 <= 25)' } : {}),
      },
      {
        name: `${label} CPU per call, incl. flush (${what})`,
        unit: 'µs',
        median: cpuPerCall(result, baseCpu),
        ...(isRewind
          ? {
              peer: peerNames('CPU per call'),
              target: `<= 15 and <= 0.5 × OpenTelemetry (= ${(otelCpu / 2).toFixed(1)})`,
            }
          : {}),
      },
      {
        name: `${label} calls delivered (${what})`,
        unit: '%',
        median: (100 * result.delivered) / result.calls,
        ...(isRewind ? { peer: peerNames('calls delivered'), target: '100%' } : {}),
      },
      {
        name: `${label} flush after each ${CALLS.toLocaleString('en-US')}-call run (${what})`,
        unit: 'ms',
        median: median(result.flushMs),
        ...(isRewind ? { peer: peerNames('flush after each run') } : {}),
      },
    );
  }
  rows.push(
    { name: `baseline wall per call, no tracing (${what})`, unit: 'µs', median: baseWall },
    { name: `baseline CPU per call, no tracing (${what})`, unit: 'µs', median: baseCpu },
  );
  return rows;
}

function failed(peer: string): Measured {
  const nan = Number.NaN;
  return {
    peer,
    calls: 1,
    wallMedianUs: nan,
    wallP99Us: nan,
    cpuUs: nan,
    loopMs: nan,
    flushMs: [nan],
    totalMs: nan,
    report: {},
    delivered: nan,
    sink: { calls: {}, requests: {}, bytes: 0, errors: 0 },
  };
}

function cpuPerCall(result: Measured, baseCpu: number): number {
  return result.cpuUs / result.calls - baseCpu;
}

function describeDelivery(result: Measured): string {
  if (result.peer === 'rewind') {
    const stats = result.report.stats ?? {};
    const error =
      result.report.storeError === undefined ? '' : `, store not readable: ${result.report.storeError}`;
    return `store steps ${result.report.storeSteps}, stats ${JSON.stringify(stats)}${error}`;
  }
  const lookup = result.sink.calls.lookup ?? { received: 0, complete: 0 };
  return `sink received ${lookup.received} lookup spans/runs (${lookup.complete} with output) in ${JSON.stringify(result.sink.requests)}, ${(result.sink.bytes / 1e6).toFixed(1)} MB, ${result.sink.errors} errors`;
}

/** Starts a sink, runs one peer's child against it, reads the sink's counts, stops the sink. */
async function measure(ctx: BenchContext, peer: string, rounds: number, dir: string): Promise<Measured> {
  mkdirSync(dir, { recursive: true });
  const sink = spawn(process.execPath, [SINK, peer], { stdio: ['ignore', 'pipe', 'pipe'], env: cleanEnv() });
  try {
    sink.stderr.on('data', (chunk: Buffer) => ctx.log(`sink: ${chunk.toString().trim()}`));
    const port = await new Promise<number>((resolve, reject) => {
      let text = '';
      sink.stdout.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        const line = text.split('\n')[0];
        if (text.includes('\n')) resolve((JSON.parse(line!) as { port: number }).port);
      });
      sink.once('exit', (code) => reject(new Error(`the sink exited (${code}) before listening`)));
    });
    const sinkUrl = `http://127.0.0.1:${port}`;
    const result = await runPeer(ctx, peer, rounds, sinkUrl, dir);
    const response = await fetch(`${sinkUrl}/__counts`);
    const counts = (await response.json()) as SinkCounts;
    const delivered =
      peer === 'rewind' ? (result.report.delivered ?? 0) : (counts.calls.lookup?.complete ?? 0);
    return { ...result, delivered, sink: counts };
  } finally {
    sink.kill();
  }
}

function runPeer(
  ctx: BenchContext,
  peer: string,
  rounds: number,
  sinkUrl: string,
  dir: string,
): Promise<PeerResult> {
  const env = {
    ...cleanEnv(),
    // LangSmith: tracing on, and every default endpoint pointed at the sink.
    LANGSMITH_TRACING: 'true',
    LANGSMITH_ENDPOINT: sinkUrl,
    LANGSMITH_API_KEY: 'ls-bench',
    LANGCHAIN_BASE_URL: sinkUrl,
    // Langfuse: the same, in case anything reads the environment rather than the options.
    LANGFUSE_BASE_URL: sinkUrl,
    LANGFUSE_PUBLIC_KEY: 'pk-lf-bench',
    LANGFUSE_SECRET_KEY: 'sk-lf-bench',
  };
  const child = spawn(
    process.execPath,
    ['--expose-gc', PEER, peer, String(rounds), String(CALLS), sinkUrl, dir],
    { stdio: ['ignore', 'pipe', 'pipe'], env, cwd: dir },
  );
  return new Promise<PeerResult>((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      for (const line of stderr.split('\n').filter(Boolean).slice(0, 20)) ctx.log(`${peer}: ${line}`);
      for (const line of stdout.split('\n')) {
        if (line.startsWith('RESULT ')) {
          resolve(JSON.parse(line.slice('RESULT '.length)) as PeerResult);
          return;
        } else if (line.trim() !== '') {
          ctx.log(`${peer}: ${line.slice(0, 300)}`);
        }
      }
      reject(new Error(`capture bench: ${peer} exited (${code ?? signal}) without a result`));
    });
  });
}

/** The environment without any tracer or Rewind settings (OTEL_*, LANGFUSE_*, LANGSMITH_*, …; REWIND_BENCH_* stays). */
function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined) continue;
    if (/^(OTEL_|LANGFUSE_|LANGSMITH_|LANGCHAIN_|REWIND_)/.test(key) && !key.startsWith('REWIND_BENCH_'))
      continue;
    env[key] = value;
  }
  env.NO_PROXY = '127.0.0.1,localhost';
  env.no_proxy = '127.0.0.1,localhost';
  return env;
}
