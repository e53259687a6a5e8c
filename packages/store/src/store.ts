import type {
  Attributes,
  BlobHash,
  BlobRef,
  ErrorInfo,
  ForkEdit,
  Label,
  ReplayMode,
  RewindEvent,
  StepKind,
  Usage,
} from '@rewind/schema';
import type { BlobStore } from './blob-store.ts';
import type { ReplayQueue } from './replay-queue.ts';

// The metadata store (SPEC §7). Events may arrive in any order, batching and more than once;
// the stored run is the same whatever the arrival order. Both implementations (SQLite,
// PostgreSQL) pass ONE contract suite: src/contract/.

/** A run is `incomplete` until its `run.finished` event has arrived. */
export type StoredRunStatus = 'ok' | 'error' | 'cancelled' | 'incomplete';

export type AppendOutcome =
  | { eventId: string; status: 'accepted' }
  | { eventId: string; status: 'duplicate' }
  | { eventId: string; status: 'rejected'; reason: string; field?: string };

export interface AppendResult {
  accepted: number;
  duplicates: number;
  rejected: number;
  /** One outcome per input event, in input order. */
  outcomes: AppendOutcome[];
}

export interface RunSummary {
  id: string;
  /** Null while the run's `run.started` has not arrived. */
  agent: string | null;
  status: StoredRunStatus;
  startedAt: string | null;
  endedAt: string | null;
  stepCount: number;
  errorCount: number;
  replayOf?: { runId: string; mode: ReplayMode };
  forkOf?: { runId: string; atSeq: number; edit: ForkEdit };
}

export interface RunRecord extends RunSummary {
  input: BlobRef | null;
  output: BlobRef | null;
  error: ErrorInfo | null;
  tape: BlobRef | null;
  attributes: Attributes;
  sdk: { name: string; version: string } | null;
  /** Determinism labels of the run's finished steps: label → count. */
  labels: Partial<Record<Label, number>>;
}

export interface StepRecord {
  runId: string;
  stepId: string;
  seq: number;
  parentStepId: string | null;
  kind: StepKind;
  name: string;
  callKey: string;
  /** `running` until the step's `step.finished` event has arrived. */
  status: 'ok' | 'error' | 'running';
  label: Label | null;
  request: BlobRef;
  requestHash: BlobHash;
  response: BlobRef | null;
  responseHash: BlobHash | null;
  error: ErrorInfo | null;
  usage: Usage | null;
  startedAt: string;
  endedAt: string | null;
  attributes: Attributes;
  stream: { chunks: number; offsetsMs: number[] } | null;
}

export interface ListRunsQuery {
  agent?: string;
  status?: StoredRunStatus;
  /** ISO time: runs started at or after. */
  since?: string;
  /** ISO time: runs started before. */
  until?: string;
  /** 1–1000, default 50. */
  limit?: number;
  /** Opaque cursor from a previous page's `nextCursor`. */
  cursor?: string;
}

export interface Page<T> {
  items: T[];
  /** Absent on the last page. */
  nextCursor?: string;
}

export interface TimelineQuery {
  /** Steps with seq greater than this (a cursor is the last seq seen). Default 0. */
  afterSeq?: number;
  /** 1–10000, default 1000. */
  limit?: number;
}

export interface Store {
  /** Where the store lives, for messages (a directory or a postgres URL without password). */
  readonly location: string;
  readonly blobs: BlobStore;
  /** Validates and appends events; idempotent by eventId; valid events are stored even when others are rejected. */
  append(events: readonly unknown[]): Promise<AppendResult>;
  /** Newest first (by start time, then id). */
  listRuns(query?: ListRunsQuery): Promise<Page<RunSummary>>;
  getRun(runId: string): Promise<RunRecord | undefined>;
  /** Steps in seq order. Steps whose `step.started` has not arrived are not in the timeline. */
  readTimeline(runId: string, query?: TimelineQuery): Promise<Page<StepRecord>>;
  getStep(runId: string, seq: number): Promise<StepRecord | undefined>;
  /** The stored events of a run, in a stable order (run.started, steps by seq, run.finished). */
  readEvents(runId: string): Promise<RewindEvent[]>;
  /** Every blob hash referenced by any stored event (for gc and doctor). */
  referencedBlobs(): AsyncIterable<BlobHash>;
  /**
   * The replay orchestrator's queue in the same database (docs/orchestrator.md), opened on first
   * use and closed with the store. Absent on stores without one (views, test doubles).
   */
  replayQueue?(): ReplayQueue;
  close(): Promise<void>;
}
