import { RewindError } from '@rewind/schema';

// The replay runtime's errors (docs/replay.md). Each has a stable `name` and `code`, a message
// that says what happened and what to do, and the data a program needs; `isInstance` works
// across copies of the package.

/** Why a replay left its recording. */
export type DivergenceReason =
  /** The call was made with a different request than the recorded call with the same call key. */
  | 'request'
  /** The call has no recorded counterpart (its call key is not in the recording). */
  | 'extra'
  /** A recorded call was never made. */
  | 'missing'
  /** Every call matched, but the run's output (or error) differs. */
  | 'output';

/** One field that differs between the recorded and the replayed request: a JSON pointer and both values (absent: undefined). */
export interface FieldDiff {
  path: string;
  recorded?: unknown;
  replayed?: unknown;
}

export interface Divergence {
  reason: DivergenceReason;
  /** Where the replay left the recording: the recorded step's seq (for `extra`, the new step's seq). */
  seq: number;
  callKey: string;
  kind: string;
  name: string;
  /** Field-level differences of the two requests (`request`), or of the outputs (`output`). */
  diff: FieldDiff[];
  message: string;
}

const MAX_DIFF_IN_MESSAGE = 5;

function short(value: unknown): string {
  if (value === undefined) return '(absent)';
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 77)}…` : text;
}

export function describeDivergence(d: Omit<Divergence, 'message'>): string {
  const where = `seq ${d.seq} (${d.callKey})`;
  const fields = d.diff
    .slice(0, MAX_DIFF_IN_MESSAGE)
    .map((f) => `${f.path || '/'}: recorded ${short(f.recorded)}, replayed ${short(f.replayed)}`)
    .join('; ');
  const more =
    d.diff.length > MAX_DIFF_IN_MESSAGE ? ` (and ${d.diff.length - MAX_DIFF_IN_MESSAGE} more)` : '';
  switch (d.reason) {
    case 'request':
      return `replay diverged at ${where}: the ${d.kind} call was made with a different request — ${fields}${more}`;
    case 'extra':
      return `replay diverged at ${where}: the code made a ${d.kind} call "${d.name}" that the recording does not have`;
    case 'missing':
      return `replay diverged at ${where}: the recorded ${d.kind} call "${d.name}" was never made`;
    case 'output':
      return `replay diverged: every call matched but the run's result differs — ${fields}${more}`;
  }
}

/**
 * An exact replay (or the exact part of a fork) left its recording: a changed request, an extra
 * call, a recorded call never made, or a different result. Thrown into the agent at the call
 * that diverged; the first divergence is also the replay's verdict.
 */
export class ReplayDivergenceError extends RewindError {
  override readonly name = 'ReplayDivergenceError';
  readonly reason: DivergenceReason;
  readonly seq: number;
  readonly callKey: string;
  readonly kind: string;
  /** The step's name (a tool's name, `openai.chat.completions`, …). */
  readonly stepName: string;
  diff: FieldDiff[];
  constructor(divergence: Omit<Divergence, 'message'>) {
    super('replay_diverged', describeDivergence(divergence));
    this.reason = divergence.reason;
    this.seq = divergence.seq;
    this.callKey = divergence.callKey;
    this.kind = divergence.kind;
    this.stepName = divergence.name;
    this.diff = divergence.diff;
  }
  /** Sets the field diff once the recorded request is read (the message names the fields). */
  setDiff(diff: FieldDiff[]): void {
    this.diff = diff;
    this.message = describeDivergence({
      reason: this.reason,
      seq: this.seq,
      callKey: this.callKey,
      kind: this.kind,
      name: this.stepName,
      diff,
    });
  }

  /** The divergence as plain data (for JSON output). */
  toJSON(): Divergence {
    return {
      reason: this.reason,
      seq: this.seq,
      callKey: this.callKey,
      kind: this.kind,
      name: this.stepName,
      diff: this.diff,
      message: this.message,
    };
  }
  static override isInstance(value: unknown): value is ReplayDivergenceError {
    return RewindError.isInstance(value) && value.code === 'replay_diverged';
  }
}

/** The run cannot be replayed: not found, not finished, blobs missing, a bad fork edit. */
export class ReplayError extends RewindError {
  override readonly name = 'ReplayError';
  /** Blob hashes the recording references but the store lacks (code `blobs_missing`). */
  readonly missing: string[];
  constructor(
    code:
      | 'run_not_found'
      | 'run_incomplete'
      | 'blobs_missing'
      | 'payload_unreadable'
      | 'invalid_fork'
      | 'invalid_options'
      | 'agent_not_run'
      | 'record_failed',
    message: string,
    options?: { missing?: string[]; cause?: unknown },
  ) {
    super(code, message, options);
    this.missing = options?.missing ?? [];
  }
  static override isInstance(value: unknown): value is ReplayError {
    return RewindError.isInstance(value) && value.name === 'ReplayError';
  }
}
