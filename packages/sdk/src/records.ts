import type { Attributes, StepKind, Usage } from '@rewind/schema';
import type { Payload } from './json.ts';
import type { Tape } from './tape.ts';

// What the hot path pushes onto the queue: compact records holding serialized payloads and a
// monotonic timestamp. Hashes, blob references, ISO times and event objects are made from them
// off the hot path (pipeline.ts).

/** An error as captured synchronously; its stack is read off the hot path. */
export interface CapturedError {
  type: string;
  message: string;
  status?: number;
  /** The thrown value, for its stack. */
  source?: unknown;
}

export interface RunStartRecord {
  readonly type: 'run.started';
  readonly runId: string;
  readonly mono: number;
  readonly agent: string;
  readonly input: Payload;
  readonly attributes: Attributes | undefined;
}

export interface StepStartRecord {
  readonly type: 'step.started';
  readonly runId: string;
  readonly mono: number;
  readonly stepId: string;
  readonly seq: number;
  readonly parentStepId: string | null;
  readonly kind: StepKind;
  readonly name: string;
  readonly callKey: string;
  readonly request: Payload;
  readonly attributes: Attributes | undefined;
}

export interface StepFinishRecord {
  readonly type: 'step.finished';
  readonly runId: string;
  readonly mono: number;
  readonly stepId: string;
  /** The step's kind and name again, so that the drain knows where the response sits (redaction rules). */
  readonly kind: StepKind;
  readonly name: string;
  readonly status: 'ok' | 'error';
  readonly response: Payload | undefined;
  readonly error: CapturedError | undefined;
  readonly usage: Usage | undefined;
  readonly stream: { offsetsMs: number[] } | undefined;
}

export interface RunFinishRecord {
  readonly type: 'run.finished';
  readonly runId: string;
  readonly mono: number;
  readonly status: 'ok' | 'error' | 'cancelled';
  readonly output: Payload | undefined;
  readonly error: CapturedError | undefined;
  readonly tape: Tape | undefined;
  readonly steps: number;
  readonly errors: number;
}

export type CaptureRecord = RunStartRecord | StepStartRecord | StepFinishRecord | RunFinishRecord;

/** `{type, message, status?}` of anything thrown, without touching its stack (that is slow). */
export function captureError(error: unknown): CapturedError {
  if (error instanceof Error) {
    const status = (error as { status?: unknown }).status;
    const type = typeof error.name === 'string' && error.name !== '' ? error.name : 'Error';
    const captured: CapturedError = { type, message: String(error.message), source: error };
    if (typeof status === 'number' && Number.isInteger(status)) captured.status = status;
    return captured;
  }
  if (typeof error === 'object' && error !== null) {
    const record = error as { name?: unknown; message?: unknown };
    return {
      type: typeof record.name === 'string' && record.name !== '' ? record.name : 'Error',
      message: typeof record.message === 'string' ? record.message : safeString(error),
    };
  }
  return { type: typeof error === 'string' ? 'Error' : typeof error, message: safeString(error) };
}

function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
