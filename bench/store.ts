// The metadata stores. (a) Append throughput, events/s, of ~2 KB events (step events with large
// attributes, or with a long stream-timing list) in batches of 500, for SQLite and PostgreSQL;
// (b) the floor: raw node:sqlite INSERTs of the same events' JSON, already serialized, with the
// same pragmas and batching, so the price of validation, idempotency and the run projection is
// visible; (c) timeline reads: ms to read a page of 1,000 steps from the middle of a
// 100,000-step run, both stores.

import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { validateEvent } from '@rewind/schema';
import { blobRef, hashOf, newEventId } from '../packages/store/src/contract/events.ts';
import { openFsBlobStore } from '../packages/store/src/fs-blob-store.ts';
import { PostgresStore } from '../packages/store/src/postgres/postgres-store.ts';
import { SqliteStore } from '../packages/store/src/sqlite/sqlite-store.ts';
import type { Store } from '../packages/store/src/store.ts';
import type { BenchContext, BenchRow } from './lib.ts';
import { median, quantile } from './lib.ts';

const BATCH = 500;
const SQLITE_EVENTS = 100_000;
const POSTGRES_EVENTS = 50_000;
const TIMELINE_STEPS = 100_000;
const PAGE = 1000;
const READS = 200;

export default async function store(ctx: BenchContext): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const schemas: string[] = [];
  // The metadata benches never touch blobs; each store still gets its (empty) blob store.
  const openSqlite = async (name: string) =>
    SqliteStore.open(join(ctx.tmpDir, name), {
      blobs: await openFsBlobStore(join(ctx.tmpDir, name, 'blobs')),
    });
  const openPostgres = async () => {
    const schema = `rewind_bench_${randomBytes(4).toString('hex')}`;
    schemas.push(schema);
    return PostgresStore.open(ctx.postgresUrl, {
      schema,
      blobs: () => openFsBlobStore(join(ctx.tmpDir, schema, 'blobs')),
    });
  };
  const raw = 'raw node:sqlite INSERT of the same 2 KB JSON rows (500/tx)';
  const cpu = 'validateEvent + JSON.stringify of the same events (CPU only, no storage)';
  try {
    const sqliteRates: number[] = [];
    const rawRates: number[] = [];
    const pgRates: number[] = [];
    const cpuRates: number[] = [];
    for (let run = 0; run < ctx.runs; run++) {
      cpuRates.push(cpuFloorRate(SQLITE_EVENTS));
      const sqlite = await openSqlite(`append-${run}`);
      sqliteRates.push(await appendRate(sqlite, SQLITE_EVENTS, bigEvents));
      await sqlite.close();
      rawRates.push(rawSqliteRate(join(ctx.tmpDir, `raw-${run}.db`), SQLITE_EVENTS));
      const postgres = await openPostgres();
      pgRates.push(await appendRate(postgres, POSTGRES_EVENTS, bigEvents));
      await postgres.close();
      ctx.log(
        `append run ${run + 1}/${ctx.runs}: sqlite ${Math.round(sqliteRates.at(-1)!)}/s, raw ${Math.round(rawRates.at(-1)!)}/s, postgres ${Math.round(pgRates.at(-1)!)}/s`,
      );
    }
    rows.push(
      {
        name: 'SQLite store append (~2 KB events, 500/batch)',
        unit: 'events/s',
        median: median(sqliteRates),
        peer: `${raw}; ${cpu}`,
        target: '>= 100000',
      },
      { name: raw, unit: 'rows/s', median: median(rawRates) },
      { name: cpu, unit: 'events/s', median: median(cpuRates) },
      {
        name: 'PostgreSQL store append (~2 KB events, 500/batch)',
        unit: 'events/s',
        median: median(pgRates),
        target: '>= 20000',
      },
    );

    const sizes = [
      ['typical', '~0.5 KB events'],
      ['big', '~2 KB events'],
    ] as const;
    for (const [size, sizeLabel] of sizes) {
      for (const [label, open] of [
        ['SQLite', () => openSqlite(`timeline-${size}`)],
        ['PostgreSQL', openPostgres],
      ] as const) {
        const s = await open();
        const runId = 'timeline-run';
        const started = performance.now();
        await appendRate(s, TIMELINE_STEPS * 2, (from, count) => runEvents(size, runId, from, count));
        ctx.log(
          `${label}: wrote a ${TIMELINE_STEPS}-step run (${sizeLabel}) in ${((performance.now() - started) / 1000).toFixed(1)} s`,
        );
        const times: number[] = [];
        for (let i = 0; i < READS + 10; i++) {
          // Pages from the middle fifth of the run, at varying offsets.
          const afterSeq = 40_000 + Math.floor(Math.random() * 20_000);
          const t = performance.now();
          const page = await s.readTimeline(runId, { afterSeq, limit: PAGE });
          const ms = performance.now() - t;
          if (page.items.length !== PAGE || page.items[0]!.seq !== afterSeq + 1)
            throw new Error('bad timeline page');
          if (i >= 10) times.push(ms); // the first reads warm the caches
        }
        await s.close();
        rows.push({
          name: `${label} timeline page (1,000 of 100,000 steps, mid-run, ${sizeLabel})`,
          unit: 'ms',
          median: median(times),
          p99: quantile(times, 0.99),
          target: '< 20',
        });
        ctx.log(
          `${label} timeline (${sizeLabel}): median ${median(times).toFixed(2)} ms, p99 ${quantile(times, 0.99).toFixed(2)} ms`,
        );
      }
    }
  } finally {
    await dropSchemas(ctx.postgresUrl, schemas);
  }
  return rows;
}

type Events = (from: number, count: number) => unknown[];

/** Appends `total` events in batches of 500; only the append calls are timed. */
async function appendRate(store: Store, total: number, events: Events): Promise<number> {
  let ms = 0;
  for (let from = 0; from < total; from += BATCH) {
    const batch = events(from, Math.min(BATCH, total - from));
    const t = performance.now();
    const result = await store.append(batch);
    ms += performance.now() - t;
    if (result.accepted !== batch.length)
      throw new Error(
        `append rejected events: ${JSON.stringify(result.outcomes.find((o) => o.status !== 'accepted'))}`,
      );
  }
  return total / (ms / 1000);
}

/** What every store must spend before it writes anything: checking and serializing each event. */
function cpuFloorRate(total: number): number {
  let ms = 0;
  let bytes = 0;
  for (let from = 0; from < total; from += BATCH) {
    const batch = bigEvents(from, Math.min(BATCH, total - from));
    const t = performance.now();
    for (const event of batch) {
      if (!validateEvent(event).ok) throw new Error('invalid bench event');
      bytes += JSON.stringify(event).length;
    }
    ms += performance.now() - t;
  }
  if (bytes === 0) throw new Error('nothing serialized');
  return total / (ms / 1000);
}

function rawSqliteRate(file: string, total: number): number {
  const db = new DatabaseSync(file);
  db.exec(
    'PRAGMA page_size = 8192; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536',
  );
  db.exec('CREATE TABLE events (id INTEGER PRIMARY KEY, body TEXT NOT NULL)');
  const insert = db.prepare('INSERT INTO events (body) VALUES (?)');
  let ms = 0;
  for (let from = 0; from < total; from += BATCH) {
    const bodies = bigEvents(from, Math.min(BATCH, total - from)).map((e) => JSON.stringify(e));
    const t = performance.now();
    db.exec('BEGIN');
    for (const body of bodies) insert.run(body);
    db.exec('COMMIT');
    ms += performance.now() - t;
  }
  db.close();
  return total / (ms / 1000);
}

const FILLER = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor. '
  .repeat(7)
  .slice(0, 530);
const OFFSETS = Array.from({ length: 335 }, (_, i) => 20 + i * 7);
const HASH = hashOf('request');
const START_MS = Date.UTC(2026, 0, 1);
let benchRuns = 0;

export type EventSize = 'typical' | 'big';

/**
 * ~2 KB events spread over runs of 5,000 steps (a new run every 10,000 events): event k is step
 * k/2's step.started or step.finished. The attempt number keeps each repetition's runs apart.
 */
export function bigEvents(from: number, count: number): unknown[] {
  if (from === 0) benchRuns++;
  const out: unknown[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const k = from + i;
    out[i] = stepEvent('big', k, `bench-${benchRuns}-${Math.floor(k / 10_000)}`, (k % 10_000) >> 1);
  }
  return out;
}

/** Events of one run: event k is step k/2's step.started or step.finished. */
export function runEvents(size: EventSize, runId: string, from: number, count: number): unknown[] {
  const out: unknown[] = new Array(count);
  for (let i = 0; i < count; i++) out[i] = stepEvent(size, from + i, runId, (from + i) >> 1);
  return out;
}

/**
 * A step event of ~2 KB (`big`: a step.started with three ~530-character attributes, a
 * step.finished with a 335-chunk stream timing list) or ~0.5 KB (`typical`: a few attributes,
 * usage), nested ten steps to a chain.
 */
function stepEvent(size: EventSize, k: number, runId: string, step: number): unknown {
  const time = new Date(START_MS + k).toISOString();
  const stepId = stepIdOf(step);
  if (k % 2 === 0)
    return {
      schemaVersion: 1,
      eventId: newEventId(),
      type: 'step.started',
      runId,
      time,
      stepId,
      seq: step + 1,
      parentStepId: step % 10 === 0 ? null : stepIdOf(step - (step % 10)),
      kind: step % 10 === 0 ? 'chain' : 'model',
      name: 'chat',
      callKey: `/chain:agent#${Math.floor(step / 10)}/model:chat#${step % 10}`,
      request: blobRef(`request ${k}`),
      requestHash: HASH,
      attributes:
        size === 'big'
          ? { 'gen_ai.prompt.summary': `${k} ${FILLER}`, 'app.notes': FILLER, 'app.trace': FILLER }
          : { 'gen_ai.system': 'openai', 'gen_ai.request.model': 'gpt-4o-mini' },
    };
  return {
    schemaVersion: 1,
    eventId: newEventId(),
    type: 'step.finished',
    runId,
    time,
    stepId,
    status: 'ok',
    label: 'recorded',
    response: blobRef(`response ${k}`),
    responseHash: HASH,
    usage: { inputTokens: 812, outputTokens: 97, totalTokens: 909, cost: 0.0021 },
    ...(size === 'big' ? { stream: { chunks: OFFSETS.length, offsetsMs: OFFSETS } } : {}),
  };
}

async function dropSchemas(url: string, schemas: string[]): Promise<void> {
  if (schemas.length === 0) return;
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** Step ids as an SDK makes them: UUIDv7-shaped, so they increase with time like real ones. */
function stepIdOf(step: number): string {
  const hex = step.toString(16).padStart(30, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7${hex.slice(12, 15)}-8${hex.slice(15, 18)}-${hex.slice(18, 30)}`;
}
