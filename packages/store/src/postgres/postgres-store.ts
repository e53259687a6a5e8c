import type { BlobHash, RewindEvent } from '@rewind/schema';
import pg from 'pg';
import type { BlobStore } from '../blob-store.ts';
import {
  blobRefsOf,
  checkListRunsQuery,
  checkSeq,
  checkTimelineQuery,
  conflictOutcome,
  finishOutcomes,
  LABEL_COLUMNS,
  orderRunEvents,
  type Phase,
  type PreparedEvent,
  prepareEvents,
  type RunRow,
  redactUrl,
  runRecordOf,
  runsPage,
  type StoredEventRow,
  stepRecordOf,
} from '../event-records.ts';
import { type ReplayQueue, SqlReplayQueue } from '../replay-queue.ts';
import type {
  AppendOutcome,
  AppendResult,
  ListRunsQuery,
  Page,
  RunRecord,
  RunSummary,
  StepRecord,
  Store,
  TimelineQuery,
} from '../store.ts';
import { StoreTooNewError, StoreUnavailableError } from '../store-errors.ts';
import { POSTGRES_MIGRATIONS, type PostgresMigration } from './migrations.ts';
import { postgresQueueSql } from './postgres-queue-sql.ts';

// The scale-out metadata store on PostgreSQL, through `pg`. The tables mirror the SQLite store
// (see ../event-records.ts for the slot model). An append call is ONE statement, so one round
// trip and one transaction: the batch travels as one JSON array, json_to_recordset unpacks it,
// INSERT … ON CONFLICT DO NOTHING keeps what is new, and the runs projection is upserted from
// the rows actually inserted, in the same statement. Only events that were not inserted
// (duplicates, conflicts) cost a second, read-only query that tells which they are.

export interface PostgresStoreOptions {
  /** The blob store, or a function opening it once the database is known to be reachable. */
  blobs: BlobStore | (() => Promise<BlobStore>);
  /** The PostgreSQL schema holding the tables (default `rewind`); created when missing. */
  schema?: string;
  /** Pool size (default 10). */
  maxConnections?: number;
  /** How long to wait for a connection, ms (default 10000). */
  connectTimeoutMs?: number;
  /** Only for tests of the migration runner. */
  migrations?: readonly PostgresMigration[];
}

const RETRYABLE = new Set(['40P01', '40001']);
const MAX_ATTEMPTS = 5;
const LABELS_SQL = LABEL_COLUMNS.map((l) => l.column);

export class PostgresStore implements Store {
  readonly location: string;
  readonly blobs: BlobStore;
  readonly schema: string;
  readonly #pool: pg.Pool;
  readonly #sql: ReturnType<typeof statements>;
  #closed = false;
  #queue: SqlReplayQueue | undefined;

  private constructor(location: string, schema: string, pool: pg.Pool, blobs: BlobStore) {
    this.location = location;
    this.schema = schema;
    this.#pool = pool;
    this.blobs = blobs;
    this.#sql = statements(quoteIdent(schema));
  }

  static async open(url: string, options: PostgresStoreOptions): Promise<PostgresStore> {
    const schema = options.schema ?? 'rewind';
    const location = redactUrl(url);
    const pool = new pg.Pool({
      connectionString: url,
      max: options.maxConnections ?? 10,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
      application_name: 'rewind',
    });
    // An idle connection that breaks (a server restart) must not crash the process; the next
    // query gets a fresh connection or reports the failure.
    pool.on('error', () => {});
    try {
      await migrate(pool, location, schema, options.migrations ?? POSTGRES_MIGRATIONS);
    } catch (error) {
      await pool.end().catch(() => {});
      if (StoreTooNewError.isInstance(error)) throw error;
      throw unavailable(location, error);
    }
    let blobs: BlobStore;
    try {
      blobs = typeof options.blobs === 'function' ? await options.blobs() : options.blobs;
    } catch (error) {
      await pool.end().catch(() => {});
      throw error;
    }
    return new PostgresStore(location, schema, pool, blobs);
  }

  async append(events: readonly unknown[]): Promise<AppendResult> {
    const prepared = prepareEvents(events);
    if (prepared.fresh.length > 0) await this.#write(prepared.fresh, prepared.outcomes);
    return finishOutcomes(prepared);
  }

  async #write(fresh: PreparedEvent[], outcomes: (AppendOutcome | undefined)[]): Promise<void> {
    const values = batchParams(fresh);
    let inserted: Set<string> | undefined;
    for (let attempt = 1; inserted === undefined; attempt++) {
      try {
        const result = await this.#pool.query<[string]>({
          name: 'rewind_append',
          text: this.#sql.append,
          values,
          rowMode: 'array',
        });
        inserted = new Set(result.rows.map((row) => row[0]));
      } catch (error) {
        // Two calls racing on the same events (a retried batch sent to two replicas) may deadlock;
        // PostgreSQL aborts one, and it simply runs again.
        if (attempt >= MAX_ATTEMPTS || !RETRYABLE.has((error as { code?: string }).code ?? '')) throw error;
      }
    }
    const rest: PreparedEvent[] = [];
    for (const item of fresh) {
      if (inserted.has(item.eventId)) outcomes[item.index] = { eventId: item.eventId, status: 'accepted' };
      else rest.push(item);
    }
    if (rest.length > 0) await this.#conflicts(rest, outcomes);
  }

  /** Looks up what the events that were not inserted collided with (committed by now: rows are never deleted). */
  async #conflicts(rest: PreparedEvent[], outcomes: (AppendOutcome | undefined)[]): Promise<void> {
    const { rows } = await this.#pool.query<StoredEventRow & { via: 'id' | 'slot' | 'seq'; k: string }>(
      this.#sql.conflicts,
      [
        rest.map((e) => e.eventId),
        rest.map((e) => e.runId),
        rest.map((e) => e.stepId),
        rest.map((e) => e.phase),
        rest.map((e) => e.seq),
      ],
    );
    const found = rest.map(() => ({}) as Partial<Record<'id' | 'slot' | 'seq', StoredEventRow>>);
    for (const row of rows) found[Number(row.k) - 1]![row.via] = row;
    rest.forEach((item, i) => {
      const { id, slot, seq } = found[i]!;
      outcomes[item.index] = conflictOutcome(item, id, slot, seq);
    });
  }

  async listRuns(query?: ListRunsQuery): Promise<Page<RunSummary>> {
    const filter = checkListRunsQuery(query);
    const where: string[] = [];
    const params: (string | number)[] = [];
    const param = (value: string | number) => {
      params.push(value);
      return `$${params.length}`;
    };
    if (filter.agent !== undefined) where.push(`agent = ${param(pgText(filter.agent))}`);
    if (filter.status !== undefined) where.push(`status = ${param(filter.status)}`);
    if (filter.since !== undefined) where.push(`sort_time >= ${param(filter.since)}`);
    if (filter.until !== undefined) where.push(`sort_time < ${param(filter.until)}`);
    if (filter.after !== undefined)
      where.push(`(sort_time, id) < (${param(filter.after.sortTime)}, ${param(pgText(filter.after.id))})`);
    const sql = `SELECT ${this.#sql.summaryColumns} FROM ${this.#sql.runs}
      ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY sort_time DESC, id DESC LIMIT ${param(filter.limit + 1)}`;
    const { rows } = await this.#pool.query<RunRow>(sql, params);
    return runsPage(rows, filter.limit);
  }

  async getRun(runId: string): Promise<RunRecord | undefined> {
    const { rows } = await this.#pool.query<
      RunRow & { started_body: string | null; finished_body: string | null }
    >(this.#sql.getRun, [pgText(runId)]);
    const row = rows[0];
    if (row === undefined) return undefined;
    return runRecordOf(row, row.started_body ?? undefined, row.finished_body ?? undefined);
  }

  async readTimeline(runId: string, query?: TimelineQuery): Promise<Page<StepRecord>> {
    const { afterSeq, limit } = checkTimelineQuery(query);
    // seq has no gaps in a finished run, so the page is normally the seq range after the cursor:
    // a bounded index range whatever the planner's statistics say (right after a big ingest they
    // are stale). Only when the range comes back short (the last page, or steps still missing)
    // does a second query look further.
    const id = pgText(runId);
    const want = limit + 1;
    const { rows } = await this.#pool.query<[string, string | null]>({
      name: 'rewind_timeline',
      text: this.#sql.timeline,
      values: [id, afterSeq, afterSeq + want],
      rowMode: 'array',
    });
    if (rows.length < want) {
      const rest = await this.#pool.query<[string, string | null]>({
        name: 'rewind_timeline_rest',
        text: this.#sql.timelineRest,
        values: [id, afterSeq + want, want - rows.length],
        rowMode: 'array',
      });
      rows.push(...rest.rows);
    }
    const more = rows.length > limit;
    const items: StepRecord[] = new Array(more ? limit : rows.length);
    for (let i = 0; i < items.length; i++) items[i] = stepRecordOf(rows[i]![0], rows[i]![1]);
    return more ? { items, nextCursor: String(items[items.length - 1]!.seq) } : { items };
  }

  async getStep(runId: string, seq: number): Promise<StepRecord | undefined> {
    if (!checkSeq(seq)) return undefined;
    const { rows } = await this.#pool.query<[string, string | null]>({
      text: this.#sql.step,
      values: [pgText(runId), seq],
      rowMode: 'array',
    });
    const row = rows[0];
    return row === undefined ? undefined : stepRecordOf(row[0], row[1]);
  }

  async readEvents(runId: string): Promise<RewindEvent[]> {
    const { rows } = await this.#pool.query<{
      phase: Phase;
      stepId: string;
      seq: number | null;
      body: string;
    }>(this.#sql.events, [pgText(runId)]);
    return orderRunEvents(rows);
  }

  async *referencedBlobs(): AsyncIterable<BlobHash> {
    // Pages by eventId, so writes may go on between pages; recently seen hashes are not repeated.
    const seen = new Set<BlobHash>();
    let after = '';
    for (;;) {
      const { rows } = await this.#pool.query<[string, string]>({
        text: this.#sql.blobPage,
        values: [after],
        rowMode: 'array',
      });
      if (rows.length === 0) return;
      after = rows[rows.length - 1]![0];
      for (const [, body] of rows) {
        for (const hash of blobRefsOf(JSON.parse(body) as RewindEvent)) {
          if (seen.has(hash)) continue;
          if (seen.size >= 100_000) seen.clear();
          seen.add(hash);
          yield hash;
        }
      }
    }
  }

  replayQueue(): ReplayQueue {
    this.#queue ??= new SqlReplayQueue(postgresQueueSql(this.#pool, quoteIdent(this.schema)));
    return this.#queue;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end();
    await this.blobs.close();
  }
}

/**
 * The batch as two texts: the events' JSON (already serialized, so not serialized again) joined
 * by newlines, which JSON text never contains raw; and a JSON array of what the statement needs
 * besides: slot, sort time and the run-level contributions, mostly absent.
 */
function batchParams(fresh: readonly PreparedEvent[]): [string, string] {
  const bodies: string[] = new Array(fresh.length);
  const meta: string[] = new Array(fresh.length);
  for (let i = 0; i < fresh.length; i++) {
    const item = fresh[i]!;
    const event = item.event;
    let extra = '';
    switch (event.type) {
      case 'run.started':
        extra = `,"a":${JSON.stringify(pgText(event.agent))},"sa":"${event.time}"`;
        if (event.replayOf !== undefined) extra += `,"ro":${JSON.stringify(JSON.stringify(event.replayOf))}`;
        if (event.forkOf !== undefined) extra += `,"fo":${JSON.stringify(JSON.stringify(event.forkOf))}`;
        break;
      case 'step.finished':
        extra = `,"l":"${event.label}"${event.status === 'error' ? ',"x":1' : ''}`;
        break;
      case 'run.finished':
        extra = `,"st":"${event.status}","ea":"${event.time}"`;
        break;
    }
    bodies[i] = item.body;
    meta[i] =
      `{"k":${i + 1},"e":"${item.eventId}","r":"${item.runId}","s":"${item.stepId}","p":"${item.phase}","q":${item.seq ?? 'null'},"t":"${item.sortTime}"${extra}}`;
  }
  return [`[${meta.join(',')}]`, bodies.join('\n')];
}

/** PostgreSQL text cannot hold NUL characters; ids cannot contain them, free text might. */
function pgText(value: string): string {
  return value.includes('\0') ? value.replaceAll('\0', '\uFFFD') : value;
}

function quoteIdent(name: string): string {
  if (name.length === 0 || name.length > 63 || name.includes('\0'))
    throw new TypeError(`invalid PostgreSQL schema name ${JSON.stringify(name)}: use 1–63 characters`);
  return `"${name.replaceAll('"', '""')}"`;
}

function statements(schema: string) {
  const events = `${schema}.events`;
  const runs = `${schema}.runs`;
  const summaryColumns =
    'id, agent, status, started_at, ended_at, sort_time, step_count, error_count, replay_of, fork_of';
  // The finished event is looked up per started row (LIMIT 1 keeps it a nested loop on the slot index).
  const stepJoin = `FROM ${events} s
      LEFT JOIN LATERAL (
        SELECT body FROM ${events} f WHERE f.run_id = s.run_id AND f.step_id = s.step_id AND f.phase = 'sf' LIMIT 1
      ) f ON true`;
  const eventColumns =
    'e.event_id AS "eventId", e.run_id AS "runId", e.step_id AS "stepId", e.phase, e.seq::float8 AS seq, e.body::text AS body';
  // Prepared statement names are per connection, and every store has its own pool.
  return {
    runs,
    summaryColumns,
    append: `
      WITH input AS (
        SELECT m.*, b.body FROM json_to_recordset($1::json) AS m(
          k bigint, e text, r text, s text, p text, q bigint, t text,
          a text, sa text, ea text, st text, l text, x integer, ro text, fo text)
        JOIN string_to_table($2, E'\\n') WITH ORDINALITY AS b(body, k) USING (k)
      ), ins AS (
        INSERT INTO ${events} (event_id, run_id, step_id, phase, seq, body)
        SELECT e, r, s, p, q, body::json FROM input ORDER BY e COLLATE "C"
        ON CONFLICT DO NOTHING
        RETURNING event_id
      ), agg AS (
        SELECT i.r AS id,
          max(i.a) AS agent, max(i.sa) AS started_at,
          max(i.t COLLATE "C") FILTER (WHERE i.p = 'rs') AS started_sort,
          max(i.ea) AS ended_at, max(i.st) AS status,
          min(i.t COLLATE "C") AS first_seen,
          count(*) FILTER (WHERE i.p = 'ss') AS step_count,
          count(*) FILTER (WHERE i.x = 1) AS error_count,
          ${LABEL_COLUMNS.map((l) => `count(*) FILTER (WHERE i.l = '${l.label}') AS ${l.column}`).join(',\n          ')},
          max(i.ro) AS replay_of, max(i.fo) AS fork_of
        FROM input i JOIN ins ON ins.event_id = i.e
        GROUP BY i.r
      ), up AS (
        INSERT INTO ${runs} AS old (id, agent, status, started_at, started_sort, ended_at, first_seen, sort_time,
          step_count, error_count, ${LABELS_SQL.join(', ')}, replay_of, fork_of)
        SELECT id, agent, coalesce(status, 'incomplete'), started_at, started_sort, ended_at, first_seen,
          coalesce(started_sort, first_seen), step_count, error_count, ${LABELS_SQL.join(', ')}, replay_of, fork_of
        FROM agg ORDER BY id COLLATE "C"
        ON CONFLICT (id) DO UPDATE SET
          agent = coalesce(EXCLUDED.agent, old.agent),
          status = CASE WHEN EXCLUDED.status = 'incomplete' THEN old.status ELSE EXCLUDED.status END,
          started_at = coalesce(EXCLUDED.started_at, old.started_at),
          started_sort = coalesce(EXCLUDED.started_sort, old.started_sort),
          ended_at = coalesce(EXCLUDED.ended_at, old.ended_at),
          first_seen = least(old.first_seen, EXCLUDED.first_seen),
          sort_time = coalesce(EXCLUDED.started_sort, old.started_sort, least(old.first_seen, EXCLUDED.first_seen)),
          step_count = old.step_count + EXCLUDED.step_count,
          error_count = old.error_count + EXCLUDED.error_count,
          ${LABELS_SQL.map((c) => `${c} = old.${c} + EXCLUDED.${c}`).join(',\n          ')},
          replay_of = coalesce(EXCLUDED.replay_of, old.replay_of),
          fork_of = coalesce(EXCLUDED.fork_of, old.fork_of)
      )
      SELECT event_id FROM ins`,
    conflicts: `
      SELECT 'id' AS via, i.k, ${eventColumns}
        FROM unnest($1::text[]) WITH ORDINALITY AS i(id, k) JOIN ${events} e ON e.event_id = i.id
      UNION ALL
      SELECT 'slot', i.k, ${eventColumns}
        FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS i(r, s, p, k)
        JOIN ${events} e ON e.run_id = i.r AND e.step_id = i.s AND e.phase = i.p
      UNION ALL
      SELECT 'seq', i.k, ${eventColumns}
        FROM unnest($2::text[], $5::bigint[]) WITH ORDINALITY AS i(r, q, k)
        JOIN ${events} e ON e.run_id = i.r AND e.seq = i.q`,
    getRun: `
      SELECT ${summaryColumns}, ${LABELS_SQL.join(', ')},
        (SELECT body::text FROM ${events} WHERE run_id = r.id AND step_id = '' AND phase = 'rs') AS started_body,
        (SELECT body::text FROM ${events} WHERE run_id = r.id AND step_id = '' AND phase = 'rf') AS finished_body
      FROM ${runs} r WHERE id = $1`,
    timeline: `SELECT s.body::text, f.body::text ${stepJoin}
      WHERE s.run_id = $1 AND s.seq > $2 AND s.seq <= $3 ORDER BY s.seq`,
    timelineRest: `SELECT s.body::text, f.body::text ${stepJoin}
      WHERE s.run_id = $1 AND s.seq > $2 ORDER BY s.seq LIMIT $3`,
    step: `SELECT s.body::text, f.body::text ${stepJoin} WHERE s.run_id = $1 AND s.seq = $2`,
    events: `SELECT phase, step_id AS "stepId", seq::float8 AS seq, body::text AS body FROM ${events} WHERE run_id = $1`,
    blobPage: `SELECT event_id, body::text FROM ${events} WHERE event_id > $1 ORDER BY event_id LIMIT 1000`,
  };
}

/** Applies the migrations newer than the schema's, one transaction each, under an advisory lock. */
async function migrate(
  pool: pg.Pool,
  location: string,
  schema: string,
  migrations: readonly PostgresMigration[],
): Promise<void> {
  const q = quoteIdent(schema);
  const known = migrations.length === 0 ? 0 : migrations[migrations.length - 1]!.version;
  const client = await pool.connect();
  try {
    // Several server processes may start at once: one migrates, the others wait, then find nothing to do.
    await client.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [`rewind.migrations:${schema}`]);
    try {
      const exists = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
      if (exists.rowCount === 0) await client.query(`CREATE SCHEMA ${q}`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${q}.schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
      );
      const { rows } = await client.query<{ version: number | null }>(
        `SELECT max(version) AS version FROM ${q}.schema_migrations`,
      );
      const current = rows[0]?.version ?? 0;
      if (current > known) throw new StoreTooNewError(`${location} (schema ${schema})`, current, known);
      for (const migration of migrations) {
        if (migration.version <= current) continue;
        await client.query('BEGIN');
        try {
          await client.query(migration.sql.replaceAll('{schema}', q));
          await client.query(`INSERT INTO ${q}.schema_migrations (version, name) VALUES ($1, $2)`, [
            migration.version,
            migration.name,
          ]);
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK').catch(() => {});
          throw error;
        }
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [
        `rewind.migrations:${schema}`,
      ]);
    }
  } finally {
    client.release();
  }
}

function unavailable(location: string, error: unknown): Error {
  const code = (error as { code?: string }).code;
  const message = error instanceof Error ? error.message : String(error);
  if (code !== undefined && /^[0-9A-Z]{5}$/.test(code) && !code.startsWith('08') && code !== '57P03') {
    // The server answered: a permission or SQL problem, not reachability.
    return new StoreUnavailableError(
      location,
      `cannot prepare the Rewind tables in PostgreSQL at ${location}: ${message} (SQLSTATE ${code}); check that the user may create tables in the schema, or pass another schema`,
      { cause: error },
    );
  }
  return new StoreUnavailableError(
    location,
    `cannot connect to PostgreSQL at ${location}: ${message || code || 'connection failed'}; check that the server is running and the URL (host, port, user, database) is right, or pass a directory to use the embedded SQLite store`,
    { cause: error },
  );
}
