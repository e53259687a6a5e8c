import { randomUUID } from 'node:crypto';
import { RewindError } from '@rewind/schema';

// The replay orchestrator's queue (docs/orchestrator.md): replay sessions and their events, in
// the store's own database so that workers on several machines share one PostgreSQL queue. ONE
// implementation over a tiny SQL executor per database (SQLite, PostgreSQL); ONE contract suite
// (src/contract/replay-queue-contract.ts) runs on both.
//
// A session is claimed by one worker at a time: the claim is a transaction that locks the oldest
// queued row (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: BEGIN IMMEDIATE, one writer) and sets
// it running with the worker's id and a lease. Every later write by the worker names its id and
// only lands while the session is still running under it, so a worker whose session was failed
// (lease expired), cancelled or timed out cannot overwrite the outcome.

export type ReplaySessionStatus = 'queued' | 'running' | 'finished' | 'failed' | 'cancelled';
export type ReplaySessionVerdict = 'reproduced' | 'diverged';

/** The fork of a replay request: the schema's ForkEdit (set | response | error) plus where and `then`. */
export interface ReplayForkRequest {
  atSeq: number;
  set?: { pointer: string; value: unknown }[];
  response?: unknown;
  error?: string | { type?: string; message: string };
  then?: 'cached' | 'live';
}

export interface ReplaySessionError {
  /** `timeout`, `worker_died`, `lease_expired`, `replay_failed`, `agent_not_found`, `cancelled`, … */
  code: string;
  message: string;
  /** For a worker that died: its exit code or signal and the tail of its stderr. */
  diagnostics?: Record<string, unknown>;
}

export interface ReplaySessionResult {
  /** The replayed agent's own outcome (the new run's status). */
  runStatus: 'ok' | 'error' | 'cancelled';
  divergence: unknown;
  output: unknown;
}

export interface ReplaySessionRecord {
  id: string;
  runId: string;
  mode: 'exact' | 'cached';
  fork: ReplayForkRequest | null;
  status: ReplaySessionStatus;
  /** Set when the session finished (the replay ran to its end): reproduced or diverged. */
  verdict: ReplaySessionVerdict | null;
  /** The run the replay wrote, once known. */
  newRunId: string | null;
  result: ReplaySessionResult | null;
  progress: { stepsServed: number; stepsTotal: number | null };
  /** Label → count of the new run's steps so far. */
  labels: Record<string, number>;
  error: ReplaySessionError | null;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
  timeoutMs: number;
  /** How many times a worker claimed the session (never more than 1: a lost session is failed, not retried). */
  attempts: number;
  workerId: string | null;
  /** Epoch ms until which the worker's lease holds (while running). */
  leaseExpiresAt: number | null;
  cancelRequested: boolean;
}

export type ReplaySessionEventType =
  | 'queued'
  | 'started'
  | 'progress'
  | 'label'
  | 'verdict'
  | 'failed'
  | 'cancelled'
  | 'done';

export interface ReplaySessionEvent {
  /** From 1, without gaps, per session. */
  seq: number;
  type: ReplaySessionEventType;
  data: Record<string, unknown>;
  at: string;
}

export interface EnqueueReplay {
  runId: string;
  mode: 'exact' | 'cached';
  fork?: ReplayForkRequest | null;
  timeoutMs: number;
}

export interface ProgressUpdate {
  stepsServed: number;
  stepsTotal?: number | null;
  labels: Record<string, number>;
  newRunId?: string | null;
  /** Events to append (progress, label), in order. */
  events: { type: ReplaySessionEventType; data: Record<string, unknown> }[];
}

export type SessionOutcome =
  | {
      status: 'finished';
      verdict: ReplaySessionVerdict;
      newRunId: string;
      labels: Record<string, number>;
      stepsServed: number;
      result: ReplaySessionResult;
    }
  | { status: 'failed'; error: ReplaySessionError }
  | { status: 'cancelled'; error?: ReplaySessionError };

export interface HeartbeatAnswer {
  /** False when the session is no longer running under this worker: stop working on it. */
  held: boolean;
  cancelRequested: boolean;
}

export interface ReplayQueue {
  enqueue(input: EnqueueReplay): Promise<ReplaySessionRecord>;
  get(id: string): Promise<ReplaySessionRecord | undefined>;
  /** Claims the oldest queued session for `workerId` with a lease of `leaseMs`; undefined when none. */
  claim(workerId: string, leaseMs: number, now?: number): Promise<ReplaySessionRecord | undefined>;
  heartbeat(id: string, workerId: string, leaseMs: number, now?: number): Promise<HeartbeatAnswer>;
  /** Records progress and appends events; false when the session is no longer the worker's. */
  progress(id: string, workerId: string, update: ProgressUpdate): Promise<boolean>;
  /** Ends a running session held by `workerId`; false when it was not (already ended elsewhere). */
  finish(id: string, workerId: string, outcome: SessionOutcome): Promise<boolean>;
  /** Cancels a queued session at once; asks the worker of a running one to stop. Undefined: no such session. */
  cancel(id: string): Promise<ReplaySessionRecord | undefined>;
  /** Fails every running session held by `workerId` (its process died) with `error`; returns their ids. */
  failWorker(workerId: string, error: ReplaySessionError): Promise<string[]>;
  /** Fails every running session whose lease expired before `now`; returns their ids. */
  failExpired(now?: number): Promise<string[]>;
  /** The session's events with seq > afterSeq, in order. */
  events(id: string, afterSeq?: number, limit?: number): Promise<ReplaySessionEvent[]>;
  close(): Promise<void>;
}

/** What the queue needs of a database. SQL uses `?` placeholders and `{t}` before table names. */
export interface QueueSql {
  query(sql: string, params?: readonly unknown[]): Promise<Record<string, unknown>[]>;
  /** Runs `body` in a write transaction (SQLite: BEGIN IMMEDIATE) on one connection. */
  transaction<T>(body: (tx: Pick<QueueSql, 'query'>) => Promise<T>): Promise<T>;
  /** ` FOR UPDATE SKIP LOCKED` on PostgreSQL, '' on SQLite (whose write transaction locks it all). */
  readonly lockClause: string;
  close(): Promise<void>;
}

const TERMINAL = new Set<ReplaySessionStatus>(['finished', 'failed', 'cancelled']);

export function isTerminalStatus(status: ReplaySessionStatus): boolean {
  return TERMINAL.has(status);
}

function parseJson<T>(value: unknown): T | null {
  return typeof value === 'string' ? (JSON.parse(value) as T) : null;
}

function num(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value);
}

function recordOf(row: Record<string, unknown>): ReplaySessionRecord {
  return {
    id: row.id as string,
    runId: row.run_id as string,
    mode: row.mode as 'exact' | 'cached',
    fork: parseJson<ReplayForkRequest>(row.fork),
    status: row.status as ReplaySessionStatus,
    verdict: (row.verdict as ReplaySessionVerdict | null) ?? null,
    newRunId: (row.new_run_id as string | null) ?? null,
    result: parseJson<ReplaySessionResult>(row.result),
    progress: { stepsServed: Number(row.steps_served), stepsTotal: num(row.steps_total) },
    labels: parseJson<Record<string, number>>(row.labels) ?? {},
    error: parseJson<ReplaySessionError>(row.error),
    createdAt: row.created_at as string,
    startedAt: (row.started_at as string | null) ?? null,
    endedAt: (row.ended_at as string | null) ?? null,
    timeoutMs: Number(row.timeout_ms),
    attempts: Number(row.attempts),
    workerId: (row.worker_id as string | null) ?? null,
    leaseExpiresAt: num(row.lease_expires_ms),
    cancelRequested: Number(row.cancel_requested) === 1,
  };
}

export class InvalidReplayRequestError extends RewindError {
  override readonly name = 'InvalidReplayRequestError';
  constructor(message: string) {
    super('invalid_replay_request', message);
  }
}

function checkWorkerId(workerId: string): void {
  if (typeof workerId !== 'string' || workerId === '' || workerId.length > 200)
    throw new InvalidReplayRequestError('a worker id must be a non-empty string of at most 200 characters');
}

function checkLease(leaseMs: number): void {
  if (!Number.isInteger(leaseMs) || leaseMs < 1)
    throw new InvalidReplayRequestError(`a lease must be a whole number of ms ≥ 1, not ${leaseMs}`);
}

type Tx = Pick<QueueSql, 'query'>;

export class SqlReplayQueue implements ReplayQueue {
  readonly #sql: QueueSql;

  constructor(sql: QueueSql) {
    this.#sql = sql;
  }

  async #append(
    tx: Tx,
    id: string,
    events: readonly { type: ReplaySessionEventType; data: Record<string, unknown> }[],
  ): Promise<void> {
    if (events.length === 0) return;
    // The row lock taken by this update orders concurrent appenders of one session.
    const rows = await tx.query(
      'UPDATE {t}replay_sessions SET event_count = event_count + ? WHERE id = ? RETURNING event_count',
      [events.length, id],
    );
    const last = Number(rows[0]?.event_count);
    const at = new Date().toISOString();
    let seq = last - events.length;
    for (const event of events) {
      seq++;
      await tx.query(
        'INSERT INTO {t}replay_session_events (session_id, seq, type, data, at) VALUES (?, ?, ?, ?, ?)',
        [id, seq, event.type, JSON.stringify(event.data), at],
      );
    }
  }

  async enqueue(input: EnqueueReplay): Promise<ReplaySessionRecord> {
    if (input.mode !== 'exact' && input.mode !== 'cached')
      throw new InvalidReplayRequestError(
        `mode must be "exact" or "cached", not ${JSON.stringify(input.mode)}`,
      );
    if (!Number.isInteger(input.timeoutMs) || input.timeoutMs < 1)
      throw new InvalidReplayRequestError(
        `timeoutMs must be a whole number of ms ≥ 1, not ${input.timeoutMs}`,
      );
    const id = `rs_${randomUUID().replaceAll('-', '')}`;
    const createdAt = new Date().toISOString();
    const fork = input.fork ?? null;
    await this.#sql.transaction(async (tx) => {
      await tx.query(
        'INSERT INTO {t}replay_sessions (id, run_id, mode, fork, status, created_at, timeout_ms) VALUES (?, ?, ?, ?, ?, ?, ?)',
        [
          id,
          input.runId,
          input.mode,
          fork === null ? null : JSON.stringify(fork),
          'queued',
          createdAt,
          input.timeoutMs,
        ],
      );
      await this.#append(tx, id, [{ type: 'queued', data: { runId: input.runId, mode: input.mode, fork } }]);
    });
    return (await this.get(id))!;
  }

  async get(id: string): Promise<ReplaySessionRecord | undefined> {
    const rows = await this.#sql.query('SELECT * FROM {t}replay_sessions WHERE id = ?', [id]);
    return rows[0] === undefined ? undefined : recordOf(rows[0]);
  }

  async claim(workerId: string, leaseMs: number, now = Date.now()): Promise<ReplaySessionRecord | undefined> {
    checkWorkerId(workerId);
    checkLease(leaseMs);
    const id = await this.#sql.transaction(async (tx) => {
      const rows = await tx.query(
        `SELECT id FROM {t}replay_sessions WHERE status = 'queued' ORDER BY seq LIMIT 1${this.#sql.lockClause}`,
      );
      const picked = rows[0]?.id as string | undefined;
      if (picked === undefined) return undefined;
      const startedAt = new Date(now).toISOString();
      await tx.query(
        `UPDATE {t}replay_sessions SET status = 'running', worker_id = ?, lease_expires_ms = ?, started_at = ?, attempts = attempts + 1 WHERE id = ? AND status = 'queued'`,
        [workerId, now + leaseMs, startedAt, picked],
      );
      await this.#append(tx, picked, [{ type: 'started', data: { workerId } }]);
      return picked;
    });
    return id === undefined ? undefined : this.get(id);
  }

  async heartbeat(id: string, workerId: string, leaseMs: number, now = Date.now()): Promise<HeartbeatAnswer> {
    checkLease(leaseMs);
    const rows = await this.#sql.query(
      `UPDATE {t}replay_sessions SET lease_expires_ms = ? WHERE id = ? AND worker_id = ? AND status = 'running' RETURNING cancel_requested`,
      [now + leaseMs, id, workerId],
    );
    if (rows[0] === undefined) return { held: false, cancelRequested: false };
    return { held: true, cancelRequested: Number(rows[0].cancel_requested) === 1 };
  }

  async progress(id: string, workerId: string, update: ProgressUpdate): Promise<boolean> {
    return this.#sql.transaction(async (tx) => {
      const rows = await tx.query(
        `UPDATE {t}replay_sessions SET steps_served = ?, steps_total = COALESCE(?, steps_total), labels = ?, new_run_id = COALESCE(?, new_run_id) WHERE id = ? AND worker_id = ? AND status = 'running' RETURNING id`,
        [
          update.stepsServed,
          update.stepsTotal ?? null,
          JSON.stringify(update.labels),
          update.newRunId ?? null,
          id,
          workerId,
        ],
      );
      if (rows.length === 0) return false;
      await this.#append(tx, id, update.events);
      return true;
    });
  }

  async finish(id: string, workerId: string, outcome: SessionOutcome): Promise<boolean> {
    return this.#sql.transaction(async (tx) => {
      const endedAt = new Date().toISOString();
      let rows: Record<string, unknown>[];
      if (outcome.status === 'finished') {
        rows = await tx.query(
          `UPDATE {t}replay_sessions SET status = 'finished', verdict = ?, new_run_id = ?, labels = ?, steps_served = ?, result = ?, ended_at = ?, lease_expires_ms = NULL WHERE id = ? AND worker_id = ? AND status = 'running' RETURNING id`,
          [
            outcome.verdict,
            outcome.newRunId,
            JSON.stringify(outcome.labels),
            outcome.stepsServed,
            JSON.stringify(outcome.result),
            endedAt,
            id,
            workerId,
          ],
        );
      } else {
        const error = outcome.error ?? { code: 'cancelled', message: 'the replay was cancelled' };
        rows = await tx.query(
          `UPDATE {t}replay_sessions SET status = ?, error = ?, ended_at = ?, lease_expires_ms = NULL WHERE id = ? AND worker_id = ? AND status = 'running' RETURNING id`,
          [outcome.status, JSON.stringify(error), endedAt, id, workerId],
        );
      }
      if (rows.length === 0) return false;
      await this.#append(tx, id, terminalEvents(outcome));
      return true;
    });
  }

  async cancel(id: string): Promise<ReplaySessionRecord | undefined> {
    await this.#sql.transaction(async (tx) => {
      const error = { code: 'cancelled', message: 'cancelled before a worker picked it up' };
      const queued = await tx.query(
        `UPDATE {t}replay_sessions SET status = 'cancelled', error = ?, ended_at = ?, cancel_requested = 1 WHERE id = ? AND status = 'queued' RETURNING id`,
        [JSON.stringify(error), new Date().toISOString(), id],
      );
      if (queued.length > 0) {
        await this.#append(tx, id, terminalEvents({ status: 'cancelled', error }));
        return;
      }
      await tx.query(
        `UPDATE {t}replay_sessions SET cancel_requested = 1 WHERE id = ? AND status = 'running'`,
        [id],
      );
    });
    return this.get(id);
  }

  async #failWhere(
    where: string,
    params: unknown[],
    error: (row: Record<string, unknown>) => ReplaySessionError,
  ) {
    return this.#sql.transaction(async (tx) => {
      const rows = await tx.query(
        `SELECT id, worker_id, lease_expires_ms FROM {t}replay_sessions WHERE status = 'running' AND ${where}${this.#sql.lockClause}`,
        params,
      );
      const endedAt = new Date().toISOString();
      for (const row of rows) {
        const failure = error(row);
        await tx.query(
          `UPDATE {t}replay_sessions SET status = 'failed', error = ?, ended_at = ?, lease_expires_ms = NULL WHERE id = ? AND status = 'running'`,
          [JSON.stringify(failure), endedAt, row.id],
        );
        await this.#append(tx, row.id as string, terminalEvents({ status: 'failed', error: failure }));
      }
      return rows.map((row) => row.id as string);
    });
  }

  failWorker(workerId: string, error: ReplaySessionError): Promise<string[]> {
    return this.#failWhere('worker_id = ?', [workerId], () => error);
  }

  failExpired(now = Date.now()): Promise<string[]> {
    return this.#failWhere('lease_expires_ms < ?', [now], (row) => ({
      code: 'lease_expired',
      message: `worker ${String(row.worker_id)} stopped renewing its lease (it expired at ${new Date(Number(row.lease_expires_ms)).toISOString()}): its process or machine died or hung; the session is failed, not retried`,
      diagnostics: {
        workerId: row.worker_id,
        leaseExpiredAt: new Date(Number(row.lease_expires_ms)).toISOString(),
      },
    }));
  }

  async events(id: string, afterSeq = 0, limit = 1000): Promise<ReplaySessionEvent[]> {
    const rows = await this.#sql.query(
      'SELECT seq, type, data, at FROM {t}replay_session_events WHERE session_id = ? AND seq > ? ORDER BY seq LIMIT ?',
      [id, afterSeq, limit],
    );
    return rows.map((row) => ({
      seq: Number(row.seq),
      type: row.type as ReplaySessionEventType,
      data: JSON.parse(row.data as string) as Record<string, unknown>,
      at: row.at as string,
    }));
  }

  close(): Promise<void> {
    return this.#sql.close();
  }
}

function terminalEvents(
  outcome: SessionOutcome,
): { type: ReplaySessionEventType; data: Record<string, unknown> }[] {
  if (outcome.status === 'finished')
    return [
      {
        type: 'verdict',
        data: {
          verdict: outcome.verdict,
          newRunId: outcome.newRunId,
          divergence: outcome.result.divergence,
          labels: outcome.labels,
          runStatus: outcome.result.runStatus,
        },
      },
      { type: 'done', data: { status: 'finished', verdict: outcome.verdict, newRunId: outcome.newRunId } },
    ];
  const error = outcome.error ?? { code: 'cancelled', message: 'the replay was cancelled' };
  return [
    { type: outcome.status, data: { error } },
    { type: 'done', data: { status: outcome.status, error } },
  ];
}
