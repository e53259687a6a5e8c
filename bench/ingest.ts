// Ingest over HTTP on loopback (issue 4): autocannon posts batches of 100 ~2 KB events (one new
// run per batch: 50 steps, started and finished, the events of bench/store.ts) to a server in a
// child process, on the same 2 cores as the load generator:
//   - Rewind's startServer (what `rewind serve` runs, request logging included) on SQLite,
//   - the same on PostgreSQL,
//   - the baseline, in the same run: a plain node:http server that parses the JSON and inserts
//     one row per event into node:sqlite, a transaction per batch (bench/ingest/server-child.ts).
// Per server: (a) throughput, events/s acknowledged with 200, at CONNECTIONS requests in flight
// for SECONDS; (b) the p99 acknowledgement latency at half that rate (autocannon's overallRate);
// (c) the server's CPU time per event over both (process.cpuUsage, all threads): on a machine shared
// with other work, the throughput moves with the load; CPU per event much less.
// Every body is fresh (new run id and event ids), so every event is stored, never a duplicate;
// the Rewind rows check afterwards that the server counted each one as accepted.

import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import pg from 'pg';
import {
  pacedAt,
  planRuns,
  runExportWorkload,
  type WorkloadOptions,
} from '../packages/sdk/src/export/testing/workload.ts';
import { Recorder } from '../packages/sdk/src/index.ts';
import type { BenchContext, BenchRow } from './lib.ts';
import { median, quantile } from './lib.ts';
import { runEvents } from './store.ts';

const BATCH = 100;
const CONNECTIONS = 8;
const SECONDS = Number(process.env.REWIND_BENCH_INGEST_SECONDS ?? 8);
/** Events per SDK exporter run (REWIND_BENCH_SDK_EVENTS). */
const SDK_EVENTS = Number(process.env.REWIND_BENCH_SDK_EVENTS ?? 50_000);
/** REWIND_BENCH_INGEST_SDK_ONLY=1: only the SDK exporter rows (skips autocannon and the baseline). */
const SDK_ONLY = process.env.REWIND_BENCH_INGEST_SDK_ONLY === '1';
const CHILD = new URL('./ingest/server-child.ts', import.meta.url).pathname;

/**
 * Bodies of BATCH events with a fresh run id and fresh event ids each: one serialized template,
 * copied, with the ids written over fixed-width placeholders (cheap for the load generator, which
 * shares the cores with the server).
 */
function bodyFactory(): () => Buffer {
  const nonce = randomBytes(4).toString('hex');
  const RUN = 'R'.repeat(32);
  const EVENT = 'E'.repeat(36);
  const text = `{"events":[${runEvents('big', RUN, 0, BATCH)
    .map((event) => JSON.stringify({ ...(event as Record<string, unknown>), eventId: EVENT }))
    .join(',')}]}`;
  const template = Buffer.from(text, 'latin1');
  const runAt: number[] = [];
  const eventAt: number[] = [];
  for (let at = text.indexOf(RUN); at !== -1; at = text.indexOf(RUN, at + RUN.length)) runAt.push(at);
  for (let at = text.indexOf(EVENT); at !== -1; at = text.indexOf(EVENT, at + EVENT.length)) eventAt.push(at);
  let counter = 0;
  return () => {
    counter++;
    const c = counter.toString(16).padStart(12, '0');
    const body = Buffer.from(template);
    const runId = `ingest-${nonce}-${c}`.padEnd(RUN.length, '0');
    for (const at of runAt) body.write(runId, at, 'latin1');
    eventAt.forEach((at, i) => {
      body.write(
        `${nonce}-${c.slice(0, 4)}-7${c.slice(4, 7)}-8${c.slice(7, 10)}-${c.slice(10, 12)}${i.toString(16).padStart(10, '0')}`,
        at,
        'latin1',
      );
    });
    return body;
  };
}

interface Child {
  process: ChildProcess;
  url: string;
  /** The child's CPU time in µs (all threads), known once it has stopped. */
  cpuUs: Promise<number>;
}

function startChild(args: string[]): Promise<Child> {
  // REWIND_BENCH_PROFILE=<dir>: each server writes a CPU profile there (node --cpu-prof) when stopped.
  const profile = process.env.REWIND_BENCH_PROFILE;
  const flags = profile === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profile}`];
  const child = spawn(process.execPath, [...flags, CHILD, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let resolveCpu: (us: number) => void;
  const cpuUs = new Promise<number>((resolve) => {
    resolveCpu = resolve;
  });
  return new Promise((resolve, reject) => {
    let tail = '';
    let found = false;
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      // Keep only the end of the request log: the lines looked for are the first and the last.
      tail = (tail + chunk).slice(-65_536);
      for (;;) {
        const newline = tail.indexOf('\n');
        if (newline === -1) break;
        const line = tail.slice(0, newline);
        tail = tail.slice(newline + 1);
        if (!found && line.includes('"listening"')) {
          found = true;
          resolve({ process: child, url: (JSON.parse(line) as { url: string }).url, cpuUs });
        } else if (line.startsWith('{"msg":"cpu"')) {
          resolveCpu((JSON.parse(line) as { cpuUs: number }).cpuUs);
        }
      }
    });
    child.on('exit', (code) => {
      if (!found) reject(new Error(`bench server ${args[0]} exited with ${code}`));
      resolveCpu(Number.NaN);
    });
  });
}

async function stopChild(child: Child): Promise<number> {
  const exited = new Promise((resolve) => child.process.on('exit', resolve));
  child.process.kill('SIGTERM');
  await exited;
  return child.cpuUs;
}

interface Load {
  acknowledged: number;
  eventsPerSecond: number;
  p99Ms: number;
  p50Ms: number;
  non2xx: number;
  errors: number;
}

async function load(url: string, nextBody: () => Buffer, rate?: number): Promise<Load> {
  const result = await autocannon({
    url: `${url}/v1/events`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    connections: CONNECTIONS,
    duration: SECONDS,
    ...(rate === undefined ? {} : { overallRate: rate }),
    requests: [{ setupRequest: (request: Record<string, unknown>) => ({ ...request, body: nextBody() }) }],
  });
  return {
    acknowledged: result['2xx'] * BATCH,
    eventsPerSecond: (result['2xx'] * BATCH) / (result.duration ?? SECONDS),
    p99Ms: result.latency.p99,
    p50Ms: result.latency.p50,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

async function acceptedCount(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^rewind_events_total\{outcome="accepted"\} (\d+)$/m.exec(text)?.[1] ?? Number.NaN);
}

function sdkRecorder(url: string, dir: string): Recorder {
  return new Recorder({ endpoint: url, cwd: dir, env: {}, spoolDir: join(dir, 'spool'), onError: () => {} });
}

interface SdkLoad {
  eventsPerSecond: number;
  /** This process's CPU time per event (capture, drain, gzip, HTTP), all threads. */
  clientCpuUs: number;
}

/**
 * The SDK exporter with its defaults, in this process, exporting the realistic workload of
 * `packages/sdk/src/export/testing/workload.ts` (runs of model and tool steps, ~2 KB of payload per
 * step) as fast as it goes, yielding to the event loop after every run: events per second from
 * the first capture until flush() has delivered the last one.
 */
async function sdkLoad(url: string, dir: string, seed: number): Promise<SdkLoad> {
  const recorder = sdkRecorder(url, dir);
  const cpu = process.cpuUsage();
  const started = performance.now();
  await runExportWorkload(recorder, { events: SDK_EVENTS, seed });
  const result = await recorder.flush({ timeoutMs: 300_000 });
  const seconds = (performance.now() - started) / 1000;
  const { user, system } = process.cpuUsage(cpu);
  await recorder.shutdown();
  if (result.delivered !== SDK_EVENTS || result.dropped !== 0)
    throw new Error(`SDK exporter: ${JSON.stringify(result)} of ${SDK_EVENTS} events`);
  return { eventsPerSecond: SDK_EVENTS / seconds, clientCpuUs: (user + system) / SDK_EVENTS };
}

/** How often the visibility poller reads the timelines it follows. */
const POLL_MS = 20;

/**
 * Visibility: the producer is paced at `rate` events/s; for every 5th run, a poller reads the
 * run's timeline (`GET /v1/runs/:id/steps`) every POLL_MS and takes, per step, the time from the
 * SDK capturing its outcome (the wrapped call returning) to the first read that shows the step
 * finished: an upper bound (it includes up to POLL_MS of polling granularity and the read itself).
 */
async function visibility(url: string, dir: string, rate: number, seed: number): Promise<number[]> {
  const recorder = sdkRecorder(url, dir);
  const options: WorkloadOptions = { events: 2 * Math.min(SDK_EVENTS / 2, Math.round(rate * 4)), seed };
  const plan = planRuns(options);
  const captured = new Map<string, number>();
  const runIndex = new Map<string, number>();
  const followed: Array<{ runId: string; steps: number; seen: Set<number> }> = [];
  const latencies: number[] = [];
  options.onStepCaptured = (runId, seq) => {
    let index = runIndex.get(runId);
    if (index === undefined) {
      index = runIndex.size;
      runIndex.set(runId, index);
      if (index % 5 === 0) followed.push({ runId, steps: plan[index]!, seen: new Set() });
    }
    if (index % 5 === 0) captured.set(`${runId}/${seq}`, performance.now());
  };
  options.pace = pacedAt(rate);
  let producing = true;
  const poller = (async () => {
    while (producing || followed.length > 0) {
      const turn = performance.now();
      await Promise.all(
        followed.map(async (run) => {
          const page = (await (await fetch(`${url}/v1/runs/${run.runId}/steps?limit=1000`)).json()) as {
            items?: Array<{ seq: number; status: string }>;
          };
          const now = performance.now();
          for (const step of page.items ?? []) {
            const at = captured.get(`${run.runId}/${step.seq}`);
            if (step.status === 'running' || at === undefined || run.seen.has(step.seq)) continue;
            run.seen.add(step.seq);
            latencies.push(now - at);
          }
        }),
      );
      for (let i = followed.length - 1; i >= 0; i--)
        if (followed[i]!.seen.size === followed[i]!.steps) followed.splice(i, 1);
      const wait = POLL_MS - (performance.now() - turn);
      await new Promise((resolve) => (wait > 1 ? setTimeout(resolve, wait) : setImmediate(resolve)));
    }
  })();
  await runExportWorkload(recorder, options);
  const result = await recorder.flush({ timeoutMs: 60_000 });
  producing = false;
  await poller;
  await recorder.shutdown();
  if (result.dropped !== 0) throw new Error(`SDK exporter dropped ${result.dropped} events`);
  return latencies;
}

export default async function ingest(ctx: BenchContext): Promise<BenchRow[]> {
  const kinds = ['baseline', 'sqlite', 'postgres'] as const;
  const results = Object.fromEntries(
    kinds.map((k) => [k, { rate: [] as number[], p99: [] as number[], cpu: [] as number[] }]),
  ) as Record<(typeof kinds)[number], { rate: number[]; p99: number[]; cpu: number[] }>;
  const sdk = {
    sqlite: { rate: [] as number[], cpu: [] as number[], visible: [] as number[] },
    postgres: { rate: [] as number[], cpu: [] as number[], visible: [] as number[] },
  };
  const schemas: string[] = [];
  const argsFor = (kind: 'sqlite' | 'postgres', name: string): string[] => {
    if (kind === 'sqlite') return ['rewind-sqlite', join(ctx.tmpDir, name)];
    const schema = `rewind_bench_ingest_${randomBytes(4).toString('hex')}`;
    schemas.push(schema);
    return ['rewind-postgres', ctx.postgresUrl, schema, join(ctx.tmpDir, `${name}-blobs`)];
  };
  try {
    for (let run = 0; run < ctx.runs; run++) {
      for (const kind of SDK_ONLY ? [] : kinds) {
        let args: string[];
        if (kind === 'baseline') args = ['baseline', join(ctx.tmpDir, `baseline-${run}.db`)];
        else if (kind === 'sqlite') args = ['rewind-sqlite', join(ctx.tmpDir, `sqlite-${run}`)];
        else {
          const schema = `rewind_bench_ingest_${randomBytes(4).toString('hex')}`;
          schemas.push(schema);
          args = ['rewind-postgres', ctx.postgresUrl, schema, join(ctx.tmpDir, `pg-blobs-${run}`)];
        }
        const child = await startChild(args);
        let events = 0;
        let stopped = false;
        try {
          const nextBody = bodyFactory();
          const full = await load(child.url, nextBody);
          const half = await load(child.url, nextBody, Math.max(1, (full.eventsPerSecond / BATCH) * 0.5));
          if (full.non2xx + full.errors + half.non2xx + half.errors > 0)
            throw new Error(
              `${kind}: ${full.non2xx + half.non2xx} non-2xx answers, ${full.errors + half.errors} errors`,
            );
          if (kind !== 'baseline') {
            const accepted = await acceptedCount(child.url);
            const sent = full.acknowledged + half.acknowledged;
            // Every acknowledged event was accepted (new), none a duplicate; autocannon may count a
            // request or two in flight at the end that the server also finished.
            if (Math.abs(accepted - sent) > 2 * CONNECTIONS * BATCH)
              throw new Error(
                `${kind}: the server accepted ${accepted} events, autocannon got ${sent} acknowledged`,
              );
          }
          events = full.acknowledged + half.acknowledged;
          const cpuUs = await stopChild(child);
          stopped = true;
          results[kind].cpu.push(cpuUs / events);
          results[kind].rate.push(full.eventsPerSecond);
          results[kind].p99.push(half.p99Ms);
          ctx.log(
            `run ${run + 1}/${ctx.runs} ${kind}: ${Math.round(full.eventsPerSecond)} events/s (p99 ${full.p99Ms} ms at full load); p99 ${half.p99Ms} ms, p50 ${half.p50Ms} ms at half load (${Math.round(half.eventsPerSecond)} events/s); server CPU ${(cpuUs / events).toFixed(1)} µs/event`,
          );
        } finally {
          if (!stopped) await stopChild(child);
        }
      }
      for (const kind of ['sqlite', 'postgres'] as const) {
        const child = await startChild(argsFor(kind, `sdk-${kind}-${run}`));
        try {
          const loaded = await sdkLoad(child.url, join(ctx.tmpDir, `sdk-client-${kind}-${run}`), run);
          const latencies = await visibility(
            child.url,
            join(ctx.tmpDir, `sdk-visibility-${kind}-${run}`),
            loaded.eventsPerSecond / 2,
            1000 + run,
          );
          sdk[kind].rate.push(loaded.eventsPerSecond);
          sdk[kind].cpu.push(loaded.clientCpuUs);
          sdk[kind].visible.push(...latencies);
          ctx.log(
            `run ${run + 1}/${ctx.runs} SDK exporter → ${kind}: ${Math.round(loaded.eventsPerSecond)} events/s, client CPU ${loaded.clientCpuUs.toFixed(1)} µs/event; visible after p50 ${quantile(latencies, 0.5).toFixed(1)} ms, p95 ${quantile(latencies, 0.95).toFixed(1)} ms, max ${Math.max(...latencies).toFixed(1)} ms (${latencies.length} steps at ${Math.round(loaded.eventsPerSecond / 2)} events/s)`,
          );
        } finally {
          await stopChild(child);
        }
      }
    }
  } finally {
    if (schemas.length > 0) {
      const client = new pg.Client({ connectionString: ctx.postgresUrl });
      await client.connect();
      for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await client.end();
    }
  }
  const baseline = median(results.baseline.rate);
  const baselineName = 'ingest baseline: node:http + JSON.parse + node:sqlite INSERT (100/tx)';
  const sdkRows: BenchRow[] = (['sqlite', 'postgres'] as const).flatMap((kind) => {
    const store = kind === 'sqlite' ? 'SQLite' : 'PostgreSQL';
    return [
      {
        name: `ingest over HTTP, ${store}: SDK exporter (defaults, ~2 KB/step model+tool runs)`,
        unit: 'events/s',
        median: median(sdk[kind].rate),
        peer: `client CPU ${median(sdk[kind].cpu).toFixed(1)} µs/event`,
      },
      {
        name: `ingest over HTTP, ${store}: event visible in the timeline after capture (at half the SDK rate)`,
        unit: 'ms',
        median: quantile(sdk[kind].visible, 0.5),
        p99: quantile(sdk[kind].visible, 0.99),
        peer: `p95 ${quantile(sdk[kind].visible, 0.95).toFixed(1)} ms`,
        target: 'p95 <= 1000',
      },
    ];
  });
  sdkRows.push({
    name: 'SDK exporter: client CPU per event (capture + drain + gzip + HTTP, all threads)',
    unit: 'µs',
    median: median([...sdk.sqlite.cpu, ...sdk.postgres.cpu]),
  });
  if (SDK_ONLY) return sdkRows;
  return [
    {
      name: 'ingest over HTTP, SQLite (autocannon, batches of 100 ~2 KB events)',
      unit: 'events/s',
      median: median(results.sqlite.rate),
      peer: `${baselineName}: ${Math.round(baseline)} events/s; ratio ${(median(results.sqlite.rate) / baseline).toFixed(2)}`,
      target: '>= 50000 and >= 2x baseline',
    },
    {
      name: 'ingest over HTTP, SQLite: p99 ack at half load',
      unit: 'ms',
      median: median(results.sqlite.p99),
      target: '<= 50',
    },
    {
      name: 'ingest over HTTP, PostgreSQL (autocannon, batches of 100 ~2 KB events)',
      unit: 'events/s',
      median: median(results.postgres.rate),
      target: '>= 20000',
    },
    {
      name: 'ingest over HTTP, PostgreSQL: p99 ack at half load',
      unit: 'ms',
      median: median(results.postgres.p99),
      target: '<= 50',
    },
    {
      name: 'ingest over HTTP: server CPU per event, SQLite (all threads, full + half load)',
      unit: 'µs',
      median: median(results.sqlite.cpu),
      peer: `baseline: ${median(results.baseline.cpu).toFixed(1)} µs`,
    },
    {
      name: 'ingest over HTTP: server CPU per event, PostgreSQL (server process only)',
      unit: 'µs',
      median: median(results.postgres.cpu),
    },
    { name: `${baselineName}: server CPU per event`, unit: 'µs', median: median(results.baseline.cpu) },
    { name: baselineName, unit: 'events/s', median: baseline },
    { name: `${baselineName}: p99 ack at half load`, unit: 'ms', median: median(results.baseline.p99) },
    ...sdkRows,
  ];
}
