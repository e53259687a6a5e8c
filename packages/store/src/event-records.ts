import {
  type BlobHash,
  type BlobRef,
  canonicalJson,
  InvalidEventError,
  isPlainObject,
  LABELS,
  type Label,
  RewindError,
  type RewindEvent,
  type RunFinished,
  type RunStarted,
  SCHEMA_VERSION,
  type StepFinished,
  type StepStarted,
  UnsupportedSchemaVersionError,
  validateEvent,
} from '@rewind/schema';
import type {
  AppendOutcome,
  AppendResult,
  ListRunsQuery,
  RunRecord,
  RunSummary,
  StepRecord,
  StoredRunStatus,
  TimelineQuery,
} from './store.ts';

// What the SQLite and PostgreSQL stores share: how an event is checked and where it is kept,
// how conflicts are told apart from duplicates, and how stored rows become records.
//
// Every event has one slot: (runId, stepId or '', phase). A slot holds at most one event and
// an eventId names at most one event, so the stored state is the SET of accepted events and
// every view (run, timeline, list) is a function of that set alone: the arrival order,
// batching and duplication of events cannot change it.

/** `rs` run.started, `ss` step.started, `sf` step.finished, `rf` run.finished. */
export type Phase = 'rs' | 'ss' | 'sf' | 'rf';

const PHASE_OF: Record<RewindEvent['type'], Phase> = {
  'run.started': 'rs',
  'step.started': 'ss',
  'step.finished': 'sf',
  'run.finished': 'rf',
};

export interface PreparedEvent {
  /** Position in the append call. */
  index: number;
  event: RewindEvent;
  eventId: string;
  runId: string;
  /** '' for run events. */
  stepId: string;
  phase: Phase;
  /** Only step.started events have one. */
  seq: number | null;
  /** The event time in a fixed-width form that sorts as text. */
  sortTime: string;
  /** The JSON text that is stored. */
  body: string;
}

/** The outcome of the checks that need no database, for every input event. */
export interface Prepared {
  outcomes: (AppendOutcome | undefined)[];
  /** Valid events with a new eventId in this call, to be written. */
  fresh: PreparedEvent[];
  /** Later copies of an eventId already in this call: index → index of the first copy. */
  copies: Map<number, number>;
}

export function prepareEvents(events: readonly unknown[]): Prepared {
  const outcomes: (AppendOutcome | undefined)[] = new Array(events.length);
  const fresh: PreparedEvent[] = [];
  const copies = new Map<number, number>();
  const firstById = new Map<string, PreparedEvent>();
  for (let index = 0; index < events.length; index++) {
    const value = events[index];
    const eventId = isPlainObject(value) && typeof value.eventId === 'string' ? value.eventId : '';
    if (
      isPlainObject(value) &&
      typeof value.schemaVersion === 'number' &&
      value.schemaVersion > SCHEMA_VERSION
    ) {
      const error = new UnsupportedSchemaVersionError(value.schemaVersion, SCHEMA_VERSION);
      outcomes[index] = { eventId, status: 'rejected', reason: error.message, field: 'schemaVersion' };
      continue;
    }
    const result = validateEvent(value);
    if (!result.ok) {
      const error = new InvalidEventError(result.issues);
      outcomes[index] = { eventId, status: 'rejected', reason: error.message, field: error.field };
      continue;
    }
    const prepared = prepareEvent(index, result.value);
    const first = firstById.get(eventId);
    if (first === undefined) {
      firstById.set(eventId, prepared);
      fresh.push(prepared);
    } else if (sameEvent(first.body, prepared.body)) {
      copies.set(index, first.index);
    } else {
      outcomes[index] = {
        eventId,
        status: 'rejected',
        reason: `conflicts with event ${eventId} earlier in this batch: a different event with the same eventId`,
        field: 'eventId',
      };
    }
  }
  return { outcomes, fresh, copies };
}

function prepareEvent(index: number, event: RewindEvent): PreparedEvent {
  const isStep = event.type === 'step.started' || event.type === 'step.finished';
  return {
    index,
    event,
    eventId: event.eventId,
    runId: event.runId,
    stepId: isStep ? event.stepId : '',
    phase: PHASE_OF[event.type],
    seq: event.type === 'step.started' ? event.seq : null,
    sortTime: sortableTime(event.time),
    body: JSON.stringify(event),
  };
}

/** Two stored forms are the same event when their canonical JSON is equal (key order aside). */
export function sameEvent(storedBody: string, body: string): boolean {
  return storedBody === body || canonicalJson(JSON.parse(storedBody)) === canonicalJson(JSON.parse(body));
}

/** A stored event that an incoming one collides with, found by eventId, slot or seq. */
export interface StoredEventRow {
  eventId: string;
  runId: string;
  stepId: string;
  phase: Phase;
  seq: number | null;
  body: string;
}

/** Decides what a valid event that could not be written is: a duplicate, or a conflict. */
export function conflictOutcome(
  event: PreparedEvent,
  byId: StoredEventRow | undefined,
  bySlot: StoredEventRow | undefined,
  bySeq: StoredEventRow | undefined,
): AppendOutcome {
  const { eventId } = event;
  if (byId !== undefined) {
    if (sameEvent(byId.body, event.body)) return { eventId, status: 'duplicate' };
    return {
      eventId,
      status: 'rejected',
      reason: `conflicts with stored event ${byId.eventId}: a different event with the same eventId is already stored`,
      field: 'eventId',
    };
  }
  if (bySlot !== undefined) {
    const what =
      event.phase === 'ss' || event.phase === 'sf'
        ? `step ${event.stepId} of run ${event.runId} already has a ${event.event.type} event`
        : `run ${event.runId} already has a ${event.event.type} event`;
    return {
      eventId,
      status: 'rejected',
      reason: `conflicts with stored event ${bySlot.eventId}: ${what} with a different eventId`,
      field: 'eventId',
    };
  }
  if (bySeq !== undefined) {
    return {
      eventId,
      status: 'rejected',
      reason: `conflicts with stored event ${bySeq.eventId}: seq ${event.seq} of run ${event.runId} is already taken by step ${bySeq.stepId}`,
      field: 'seq',
    };
  }
  // The row that blocked the write is gone (stores never delete events): report, don't guess.
  return {
    eventId,
    status: 'rejected',
    reason: 'conflicts with stored event (unknown): the event could not be stored; send it again',
  };
}

/** Fills the outcomes of later copies of an eventId from the first copy's outcome and counts. */
export function finishOutcomes(prepared: Prepared): AppendResult {
  const { outcomes, copies } = prepared;
  for (const [index, firstIndex] of copies) {
    const first = outcomes[firstIndex]!;
    outcomes[index] =
      first.status === 'rejected' ? { ...first } : { eventId: first.eventId, status: 'duplicate' };
  }
  let accepted = 0;
  let duplicates = 0;
  let rejected = 0;
  for (const outcome of outcomes) {
    if (outcome!.status === 'accepted') accepted++;
    else if (outcome!.status === 'duplicate') duplicates++;
    else rejected++;
  }
  return { accepted, duplicates, rejected, outcomes: outcomes as AppendOutcome[] };
}

// ─── Run aggregates ────────────────────────────────────────────────────────────────────────
// The runs row is a projection kept up to date once per run per append call: every field is
// either set by exactly one event (run.started, run.finished), a minimum, or a sum over
// accepted events, so it does not depend on arrival order.

export const LABEL_COLUMNS: readonly { label: Label; column: string }[] = LABELS.map((label) => ({
  label,
  column: `label_${label}`,
}));

export interface RunDelta {
  runId: string;
  agent: string | null;
  startedAt: string | null;
  startedSort: string | null;
  endedAt: string | null;
  /** Null unless run.finished was accepted. */
  status: StoredRunStatus | null;
  firstSeen: string;
  steps: number;
  errors: number;
  labels: number[];
  replayOf: string | null;
  forkOf: string | null;
}

export function runDeltas(accepted: Iterable<PreparedEvent>): RunDelta[] {
  const byRun = new Map<string, RunDelta>();
  for (const item of accepted) {
    let delta = byRun.get(item.runId);
    if (delta === undefined) {
      delta = {
        runId: item.runId,
        agent: null,
        startedAt: null,
        startedSort: null,
        endedAt: null,
        status: null,
        firstSeen: item.sortTime,
        steps: 0,
        errors: 0,
        labels: LABEL_COLUMNS.map(() => 0),
        replayOf: null,
        forkOf: null,
      };
      byRun.set(item.runId, delta);
    }
    if (item.sortTime < delta.firstSeen) delta.firstSeen = item.sortTime;
    const event = item.event;
    switch (event.type) {
      case 'run.started':
        delta.agent = event.agent;
        delta.startedAt = event.time;
        delta.startedSort = item.sortTime;
        delta.replayOf = event.replayOf === undefined ? null : JSON.stringify(event.replayOf);
        delta.forkOf = event.forkOf === undefined ? null : JSON.stringify(event.forkOf);
        break;
      case 'step.started':
        delta.steps++;
        break;
      case 'step.finished': {
        if (event.status === 'error') delta.errors++;
        const at = LABELS.indexOf(event.label);
        delta.labels[at]!++;
        break;
      }
      case 'run.finished':
        delta.status = event.status;
        delta.endedAt = event.time;
        break;
    }
  }
  return [...byRun.values()].sort((a, b) => (a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0));
}

/** A runs row as both stores read it. */
export interface RunRow {
  id: string;
  agent: string | null;
  status: string;
  started_at: string | null;
  ended_at: string | null;
  sort_time: string;
  step_count: number;
  error_count: number;
  replay_of: string | null;
  fork_of: string | null;
  [label: `label_${string}`]: number;
}

export function runSummaryOf(row: RunRow): RunSummary {
  const summary: RunSummary = {
    id: row.id,
    agent: row.agent,
    status: row.status as StoredRunStatus,
    startedAt: row.started_at,
    endedAt: row.ended_at,
    stepCount: Number(row.step_count),
    errorCount: Number(row.error_count),
  };
  if (row.replay_of !== null) summary.replayOf = JSON.parse(row.replay_of);
  if (row.fork_of !== null) summary.forkOf = JSON.parse(row.fork_of);
  return summary;
}

export function runRecordOf(
  row: RunRow,
  startedBody: string | undefined,
  finishedBody: string | undefined,
): RunRecord {
  const started = startedBody === undefined ? undefined : (JSON.parse(startedBody) as RunStarted);
  const finished = finishedBody === undefined ? undefined : (JSON.parse(finishedBody) as RunFinished);
  const labels: Partial<Record<Label, number>> = {};
  for (const { label, column } of LABEL_COLUMNS) {
    const count = Number(row[column as `label_${string}`] ?? 0);
    if (count > 0) labels[label] = count;
  }
  return {
    ...runSummaryOf(row),
    input: refOrNull(started?.input),
    output: refOrNull(finished?.status === 'ok' ? finished.output : undefined),
    error: finished !== undefined && finished.status !== 'ok' ? (finished.error ?? null) : null,
    tape: refOrNull(finished?.tape),
    attributes: started?.attributes ?? {},
    sdk: started?.sdk ?? null,
    labels,
  };
}

/** Event types spell `parts` as string[]; a stored, validated ref's parts are blob hashes. */
type EventBlobRef = { hash: BlobHash; size: number; parts?: string[] };

function refOrNull(ref: EventBlobRef | undefined): BlobRef | null {
  return (ref ?? null) as BlobRef | null;
}

// ─── Steps ─────────────────────────────────────────────────────────────────────────────────

export function stepRecordOf(startedBody: string, finishedBody: string | null | undefined): StepRecord {
  const started = JSON.parse(startedBody) as StepStarted;
  const finished = finishedBody == null ? undefined : (JSON.parse(finishedBody) as StepFinished);
  return {
    runId: started.runId,
    stepId: started.stepId,
    seq: started.seq,
    parentStepId: started.parentStepId ?? null,
    kind: started.kind,
    name: started.name,
    callKey: started.callKey,
    status: finished?.status ?? 'running',
    label: finished?.label ?? null,
    request: started.request as BlobRef,
    requestHash: started.requestHash,
    response: refOrNull(finished?.response),
    responseHash: finished?.responseHash ?? null,
    error: finished?.status === 'error' ? finished.error : null,
    usage: finished?.usage ?? null,
    startedAt: started.time,
    endedAt: finished?.time ?? null,
    attributes: started.attributes ?? {},
    stream: finished?.stream ?? null,
  };
}

/** Orders a run's stored events: run.started, steps by seq (started, finished), steps without a start by stepId, run.finished. */
export function orderRunEvents(
  rows: readonly { phase: Phase; stepId: string; seq: number | null; body: string }[],
): RewindEvent[] {
  const seqOfStep = new Map<string, number>();
  for (const row of rows) if (row.phase === 'ss') seqOfStep.set(row.stepId, row.seq!);
  const rank = (phase: Phase, stepId: string): number =>
    phase === 'rs' ? 0 : phase === 'rf' ? 3 : seqOfStep.has(stepId) ? 1 : 2;
  const sorted = [...rows].sort((a, b) => {
    const ra = rank(a.phase, a.stepId);
    const rb = rank(b.phase, b.stepId);
    if (ra !== rb) return ra - rb;
    if (ra === 1) {
      const sa = seqOfStep.get(a.stepId)!;
      const sb = seqOfStep.get(b.stepId)!;
      if (sa !== sb) return sa - sb;
      return a.phase === b.phase ? 0 : a.phase === 'ss' ? -1 : 1;
    }
    return a.stepId < b.stepId ? -1 : a.stepId > b.stepId ? 1 : 0;
  });
  return sorted.map((row) => JSON.parse(row.body) as RewindEvent);
}

// ─── Blob references ───────────────────────────────────────────────────────────────────────

/** Every blob hash an event refers to: input, output, tape, request, response, and their parts. */
export function blobRefsOf(event: RewindEvent): BlobHash[] {
  const out: BlobHash[] = [];
  const add = (ref: EventBlobRef | undefined) => {
    if (ref === undefined) return;
    out.push(ref.hash);
    if (ref.parts !== undefined) out.push(...(ref.parts as BlobHash[]));
  };
  switch (event.type) {
    case 'run.started':
      add(event.input);
      break;
    case 'step.started':
      add(event.request);
      break;
    case 'step.finished':
      add(event.response);
      break;
    case 'run.finished':
      if (event.status === 'ok') add(event.output);
      add(event.tape);
      break;
  }
  return out;
}

// ─── Queries ───────────────────────────────────────────────────────────────────────────────

const TIME = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z$/;

/** `2026-11-25T10:00:00.5Z` → `2026-11-25T10:00:00.500000000Z`: fixed width, so text order is time order. */
export function sortableTime(time: string): string {
  // The common shape, `2026-11-25T10:00:00.000Z` (callers pass validated times), without a regex.
  if (time.length === 24 && time.charCodeAt(19) === 46 && time.charCodeAt(23) === 90)
    return `${time.slice(0, 23)}000000Z`;
  const match = TIME.exec(time);
  if (match === null) throw new RewindError('invalid_query', `invalid time ${JSON.stringify(time)}`);
  return `${match[1]}.${(match[2] ?? '').padEnd(9, '0')}Z`;
}

function queryTime(name: string, value: unknown): string {
  if (typeof value === 'string') {
    const ms = Date.parse(value);
    if (!Number.isNaN(ms) && TIME.test(value)) return sortableTime(value);
    if (!Number.isNaN(ms) && /^\d{4}-\d{2}-\d{2}/.test(value))
      return sortableTime(new Date(ms).toISOString());
  }
  throw new RewindError(
    'invalid_query',
    `invalid ${name}: expected an ISO 8601 time such as 2026-11-25T10:00:00.000Z, got ${JSON.stringify(value)}`,
  );
}

const STATUSES: readonly StoredRunStatus[] = ['ok', 'error', 'cancelled', 'incomplete'];

export interface RunsFilter {
  agent: string | undefined;
  status: StoredRunStatus | undefined;
  since: string | undefined;
  until: string | undefined;
  limit: number;
  after: RunsCursor | undefined;
}

export interface RunsCursor {
  sortTime: string;
  id: string;
}

export function checkListRunsQuery(query: ListRunsQuery = {}): RunsFilter {
  const { agent, status, since, until, limit = 50, cursor } = query;
  if (agent !== undefined && typeof agent !== 'string')
    throw new RewindError('invalid_query', `invalid agent: expected a string, got ${JSON.stringify(agent)}`);
  if (status !== undefined && !STATUSES.includes(status))
    throw new RewindError(
      'invalid_query',
      `invalid status: expected one of ${STATUSES.join(', ')}, got ${JSON.stringify(status)}`,
    );
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > 1000)
    throw new RewindError(
      'invalid_query',
      `invalid limit: expected an integer from 1 to 1000, got ${JSON.stringify(limit)}`,
    );
  return {
    agent,
    status,
    since: since === undefined ? undefined : queryTime('since', since),
    until: until === undefined ? undefined : queryTime('until', until),
    limit,
    after: cursor === undefined ? undefined : decodeRunsCursor(cursor),
  };
}

export function encodeRunsCursor(cursor: RunsCursor): string {
  return Buffer.from(JSON.stringify([cursor.sortTime, cursor.id]), 'utf8').toString('base64url');
}

function decodeRunsCursor(cursor: unknown): RunsCursor {
  const bad = () =>
    new RewindError(
      'invalid_query',
      `invalid cursor ${JSON.stringify(cursor)}: pass the nextCursor of a previous page unchanged, or omit it to start from the newest run`,
    );
  if (typeof cursor !== 'string' || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw bad();
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  if (!Array.isArray(value) || value.length !== 2) throw bad();
  const [sortTime, id] = value;
  if (typeof sortTime !== 'string' || !TIME.test(sortTime) || typeof id !== 'string') throw bad();
  return { sortTime, id };
}

/** Turns a page fetched with limit + 1 rows into items and a next cursor. */
export function runsPage(rows: RunRow[], limit: number): { items: RunSummary[]; nextCursor?: string } {
  const more = rows.length > limit;
  const page = more ? rows.slice(0, limit) : rows;
  const items = page.map(runSummaryOf);
  if (!more) return { items };
  const last = page[page.length - 1]!;
  return { items, nextCursor: encodeRunsCursor({ sortTime: last.sort_time, id: last.id }) };
}

export function checkTimelineQuery(query: TimelineQuery = {}): { afterSeq: number; limit: number } {
  const { afterSeq = 0, limit = 1000 } = query;
  if (typeof afterSeq !== 'number' || !Number.isSafeInteger(afterSeq) || afterSeq < 0)
    throw new RewindError(
      'invalid_query',
      `invalid afterSeq: expected a non-negative integer (the last seq of the previous page), got ${JSON.stringify(afterSeq)}`,
    );
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > 10000)
    throw new RewindError(
      'invalid_query',
      `invalid limit: expected an integer from 1 to 10000, got ${JSON.stringify(limit)}`,
    );
  return { afterSeq, limit };
}

export function checkSeq(seq: unknown): boolean {
  return typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 1;
}

/** Removes the password from a connection URL, for messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:***@');
  }
}
