import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { type BlobHash, RewindError, type RewindEvent } from '@rewind/schema';
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
  runDeltas,
  runRecordOf,
  runsPage,
  type StoredEventRow,
  stepRecordOf,
} from '../event-records.ts';
import { type ReplayQueue, SqlReplayQueue } from '../replay-queue.ts';
import type {
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
import { BackgroundCheckpointer } from './checkpointer.ts';
import { SQLITE_MIGRATIONS, type SqliteMigration } from './migrations.ts';
import { sqliteQueueSql } from './sqlite-queue-sql.ts';

// The embedded metadata store: one SQLite file, `<dir>/rewind.db`, through node:sqlite.
//
// Writes are built for about one row write per event: each accepted event is ONE insert of its
// JSON into its slot in `events` (see ../event-records.ts), and the per-run projection in
// `runs` is updated once per run per append call. An INSERT OR IGNORE that changes nothing
// means the eventId, the slot or the seq is taken; only then are the stored rows looked up to
// tell a duplicate from a conflict. One IMMEDIATE transaction per append call. WAL mode with
// synchronous=NORMAL; checkpoints run on a worker thread (./checkpointer.ts), off the writer.

export interface SqliteStoreOptions {
  blobs: BlobStore;
  /** Only for tests of the migration runner. */
  migrations?: readonly SqliteMigration[];
  /** How long a writer waits for another process's write lock, ms (default 5000). */
  busyTimeoutMs?: number;
}

const RUN_COLUMNS = `id, agent, status, started_at, ended_at, sort_time, step_count, error_count, replay_of, fork_of, ${LABEL_COLUMNS.map((l) => l.column).join(', ')}`;
const SUMMARY_COLUMNS =
  'id, agent, status, started_at, ended_at, sort_time, step_count, error_count, replay_of, fork_of';

export class SqliteStore implements Store {
  readonly location: string;
  readonly blobs: BlobStore;
  readonly #db: DatabaseSync;
  readonly #checkpointer: BackgroundCheckpointer;
  readonly #statements = new Map<string, StatementSync>();
  #closed = false;
  #queue: SqlReplayQueue | undefined;
  #busyTimeoutMs = 5000;

  private constructor(
    location: string,
    db: DatabaseSync,
    checkpointer: BackgroundCheckpointer,
    blobs: BlobStore,
  ) {
    this.location = location;
    this.#db = db;
    this.#checkpointer = checkpointer;
    this.blobs = blobs;
  }

  static async open(dir: string, options: SqliteStoreOptions): Promise<SqliteStore> {
    const location = resolve(dir);
    const file = join(location, 'rewind.db');
    const timeout = options.busyTimeoutMs ?? 5000;
    let db: DatabaseSync;
    try {
      mkdirSync(location, { recursive: true });
      db = new DatabaseSync(file, { timeout });
    } catch (error) {
      throw new StoreUnavailableError(
        location,
        `cannot open the SQLite store ${file}: ${(error as Error).message}; choose a writable directory for the store (e.g. --store ./.rewind) or fix its permissions`,
        { cause: error },
      );
    }
    try {
      // page_size only takes effect on a new file, and must come before WAL mode.
      db.exec('PRAGMA page_size = 8192');
      db.exec('PRAGMA journal_mode = WAL');
      db.exec('PRAGMA synchronous = NORMAL');
      db.exec('PRAGMA cache_size = -65536');
      db.exec('PRAGMA temp_store = MEMORY');
      // Checkpoints run on a worker thread (./checkpointer.ts); after one completes, the log
      // file is cut back to 64 MB.
      db.exec('PRAGMA wal_autocheckpoint = 0');
      db.exec('PRAGMA journal_size_limit = 67108864');
      migrate(db, location, options.migrations ?? SQLITE_MIGRATIONS);
    } catch (error) {
      db.close();
      if (RewindError.isInstance(error)) throw error;
      throw new StoreUnavailableError(
        location,
        `cannot open the SQLite store ${file}: ${(error as Error).message}; check that the file is a Rewind store and its directory is writable, or choose another directory`,
        { cause: error },
      );
    }
    const checkpointer = new BackgroundCheckpointer(file, timeout, () =>
      db.exec('PRAGMA wal_checkpoint(PASSIVE)'),
    );
    const store = new SqliteStore(location, db, checkpointer, options.blobs);
    store.#busyTimeoutMs = timeout;
    return store;
  }

  #statement(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  async append(events: readonly unknown[]): Promise<AppendResult> {
    const prepared = prepareEvents(events);
    if (prepared.fresh.length > 0) this.#write(prepared.fresh, prepared.outcomes);
    return finishOutcomes(prepared);
  }

  #write(fresh: PreparedEvent[], outcomes: Prepared['outcomes']): void {
    const insert = this.#statement(
      'INSERT OR IGNORE INTO events (event_id, run_id, step_id, phase, seq, body) VALUES (?, ?, ?, ?, ?, ?)',
    );
    const db = this.#db;
    db.exec('BEGIN IMMEDIATE');
    let bytes = 0;
    try {
      const accepted: PreparedEvent[] = [];
      for (const item of fresh) {
        const { changes } = insert.run(
          item.eventId,
          item.runId,
          item.stepId,
          item.phase,
          item.seq,
          item.body,
        );
        if (Number(changes) === 1) {
          accepted.push(item);
          bytes += item.body.length + 200;
          outcomes[item.index] = { eventId: item.eventId, status: 'accepted' };
        } else {
          outcomes[item.index] = this.#conflict(item);
        }
      }
      if (accepted.length > 0) this.#updateRuns(accepted);
      db.exec('COMMIT');
    } catch (error) {
      if (db.isTransaction) db.exec('ROLLBACK');
      throw error;
    }
    this.#checkpointer.wrote(bytes);
  }

  #conflict(item: PreparedEvent) {
    const columns = 'event_id AS eventId, run_id AS runId, step_id AS stepId, phase, seq, body';
    const byId = this.#statement(`SELECT ${columns} FROM events WHERE event_id = ?`).get(item.eventId);
    const bySlot =
      byId === undefined
        ? this.#statement(`SELECT ${columns} FROM events WHERE run_id = ? AND step_id = ? AND phase = ?`).get(
            item.runId,
            item.stepId,
            item.phase,
          )
        : undefined;
    const bySeq =
      byId === undefined && bySlot === undefined && item.seq !== null
        ? this.#statement(`SELECT ${columns} FROM events WHERE run_id = ? AND seq = ?`).get(
            item.runId,
            item.seq,
          )
        : undefined;
    return conflictOutcome(
      item,
      byId as StoredEventRow | undefined,
      bySlot as StoredEventRow | undefined,
      bySeq as StoredEventRow | undefined,
    );
  }

  #updateRuns(accepted: PreparedEvent[]): void {
    const labelColumns = LABEL_COLUMNS.map((l) => l.column);
    const upsert = this.#statement(`
      INSERT INTO runs (id, agent, status, started_at, started_sort, ended_at, first_seen, sort_time,
        step_count, error_count, ${labelColumns.join(', ')}, replay_of, fork_of)
      VALUES (?, ?, coalesce(?, 'incomplete'), ?, ?, ?, ?, coalesce(?, ?), ?, ?, ${labelColumns.map(() => '?').join(', ')}, ?, ?)
      ON CONFLICT (id) DO UPDATE SET
        agent = coalesce(excluded.agent, agent),
        status = CASE WHEN excluded.status = 'incomplete' THEN status ELSE excluded.status END,
        started_at = coalesce(excluded.started_at, started_at),
        started_sort = coalesce(excluded.started_sort, started_sort),
        ended_at = coalesce(excluded.ended_at, ended_at),
        first_seen = min(first_seen, excluded.first_seen),
        sort_time = coalesce(excluded.started_sort, started_sort, min(first_seen, excluded.first_seen)),
        step_count = step_count + excluded.step_count,
        error_count = error_count + excluded.error_count,
        ${labelColumns.map((c) => `${c} = ${c} + excluded.${c}`).join(',\n        ')},
        replay_of = coalesce(excluded.replay_of, replay_of),
        fork_of = coalesce(excluded.fork_of, fork_of)`);
    for (const d of runDeltas(accepted)) {
      upsert.run(
        d.runId,
        d.agent,
        d.status,
        d.startedAt,
        d.startedSort,
        d.endedAt,
        d.firstSeen,
        d.startedSort,
        d.firstSeen,
        d.steps,
        d.errors,
        ...d.labels,
        d.replayOf,
        d.forkOf,
      );
    }
  }

  async listRuns(query?: ListRunsQuery): Promise<Page<RunSummary>> {
    const filter = checkListRunsQuery(query);
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (filter.agent !== undefined) {
      where.push('agent = ?');
      params.push(filter.agent);
    }
    if (filter.status !== undefined) {
      where.push('status = ?');
      params.push(filter.status);
    }
    if (filter.since !== undefined) {
      where.push('sort_time >= ?');
      params.push(filter.since);
    }
    if (filter.until !== undefined) {
      where.push('sort_time < ?');
      params.push(filter.until);
    }
    if (filter.after !== undefined) {
      where.push('(sort_time, id) < (?, ?)');
      params.push(filter.after.sortTime, filter.after.id);
    }
    const sql = `SELECT ${SUMMARY_COLUMNS} FROM runs ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY sort_time DESC, id DESC LIMIT ?`;
    const rows = this.#statement(sql).all(...params, filter.limit + 1) as unknown as RunRow[];
    return runsPage(rows, filter.limit);
  }

  async getRun(runId: string): Promise<RunRecord | undefined> {
    const row = this.#statement(`SELECT ${RUN_COLUMNS} FROM runs WHERE id = ?`).get(runId) as
      | RunRow
      | undefined;
    if (row === undefined) return undefined;
    const bodies = this.#statement(
      "SELECT phase, body FROM events WHERE run_id = ? AND step_id = '' AND phase IN ('rs', 'rf')",
    ).all(runId) as { phase: Phase; body: string }[];
    return runRecordOf(
      row,
      bodies.find((b) => b.phase === 'rs')?.body,
      bodies.find((b) => b.phase === 'rf')?.body,
    );
  }

  async readTimeline(runId: string, query?: TimelineQuery): Promise<Page<StepRecord>> {
    const { afterSeq, limit } = checkTimelineQuery(query);
    const statement = this.#statement(`
      SELECT s.body, f.body FROM events s
      LEFT JOIN events f ON f.run_id = s.run_id AND f.step_id = s.step_id AND f.phase = 'sf'
      WHERE s.run_id = ? AND s.seq > ? ORDER BY s.seq LIMIT ?`);
    statement.setReturnArrays(true);
    const rows = statement.all(runId, afterSeq, limit + 1) as unknown as [string, string | null][];
    const more = rows.length > limit;
    const items: StepRecord[] = new Array(more ? limit : rows.length);
    for (let i = 0; i < items.length; i++) items[i] = stepRecordOf(rows[i]![0], rows[i]![1]);
    return more ? { items, nextCursor: String(items[items.length - 1]!.seq) } : { items };
  }

  async getStep(runId: string, seq: number): Promise<StepRecord | undefined> {
    if (!checkSeq(seq)) return undefined;
    const row = this.#statement(`
      SELECT s.body AS s, f.body AS f FROM events s
      LEFT JOIN events f ON f.run_id = s.run_id AND f.step_id = s.step_id AND f.phase = 'sf'
      WHERE s.run_id = ? AND s.seq = ?`).get(runId, seq) as { s: string; f: string | null } | undefined;
    return row === undefined ? undefined : stepRecordOf(row.s, row.f);
  }

  async readEvents(runId: string): Promise<RewindEvent[]> {
    const rows = this.#statement(
      'SELECT phase, step_id AS stepId, seq, body FROM events WHERE run_id = ?',
    ).all(runId) as { phase: Phase; stepId: string; seq: number | null; body: string }[];
    return orderRunEvents(rows);
  }

  async *referencedBlobs(): AsyncIterable<BlobHash> {
    // Pages by rowid, so writes may go on between pages; recently seen hashes are not repeated.
    const page = this.#statement('SELECT id, body FROM events WHERE id > ? ORDER BY id LIMIT 1000');
    const seen = new Set<BlobHash>();
    let after = 0;
    for (;;) {
      const rows = page.all(after) as { id: number; body: string }[];
      if (rows.length === 0) return;
      after = rows[rows.length - 1]!.id;
      for (const row of rows) {
        for (const hash of blobRefsOf(JSON.parse(row.body) as RewindEvent)) {
          if (seen.has(hash)) continue;
          if (seen.size >= 100_000) seen.clear();
          seen.add(hash);
          yield hash;
        }
      }
    }
  }

  replayQueue(): ReplayQueue {
    this.#queue ??= new SqlReplayQueue(sqliteQueueSql(join(this.location, 'rewind.db'), this.#busyTimeoutMs));
    return this.#queue;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue?.close();
    this.#statements.clear();
    this.#db.close();
    await this.#checkpointer.close();
    await this.blobs.close();
  }
}

type Prepared = ReturnType<typeof prepareEvents>;

/** Applies the migrations newer than the store's, in one IMMEDIATE transaction. */
function migrate(db: DatabaseSync, location: string, migrations: readonly SqliteMigration[]): void {
  db.exec(
    'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)',
  );
  const known = migrations.length === 0 ? 0 : migrations[migrations.length - 1]!.version;
  db.exec('BEGIN IMMEDIATE');
  try {
    const row = db.prepare('SELECT max(version) AS version FROM schema_migrations').get() as {
      version: number | null;
    };
    const current = row.version ?? 0;
    if (current > known) throw new StoreTooNewError(location, current, known);
    const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
    for (const migration of migrations) {
      if (migration.version <= current) continue;
      db.exec(migration.sql);
      record.run(migration.version, migration.name, new Date().toISOString());
    }
    db.exec('COMMIT');
  } catch (error) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw error;
  }
}
