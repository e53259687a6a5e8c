import { RewindError } from '@rewind/schema';

// The SDK never throws into the agent. Everything that goes wrong while capturing is reported
// through the recorder's `onError` handler (default: one `[rewind]` console.warn), once per kind
// of problem, and counted; the agent's own results and errors are never touched.

export type CaptureErrorCode =
  /** The store could not be opened, or a write to it failed (read-only, disk full, …). */
  | 'store_failed'
  /** The store or server rejected events (a bug in the SDK or a store too old for them): dropped, reported once per reason. */
  | 'events_rejected'
  /** The server answered a request with an error that is not retried (4xx other than 429, or 500): its events were dropped. */
  | 'export_failed'
  /** The server could not be reached or kept failing after retries: events are spooled and delivered later. */
  | 'export_unreachable'
  /** The exporter's spool could not be written (disk full, its size limit) or read: events were dropped. */
  | 'spool_failed'
  /** Damaged records in a spool file (a torn write) were skipped. */
  | 'spool_corrupt'
  /** The in-memory queue was full: events were dropped. */
  | 'queue_full'
  /** flush() or shutdown() reached its deadline with events still pending. */
  | 'deadline'
  /** `policy` is set: redaction is not implemented yet, so nothing is recorded (fail closed). */
  | 'invalid_policy'
  /** rewind.config.json is malformed: nothing is recorded. */
  | 'invalid_config'
  /** A normalizer given to a wrapper threw; the call was captured with the generic payload. */
  | 'normalizer_failed'
  /** A bug in the SDK; the call itself was not affected. */
  | 'internal';

export class RewindCaptureError extends RewindError {
  override readonly name = 'RewindCaptureError';
  declare readonly code: CaptureErrorCode;
  constructor(code: CaptureErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

export type ErrorHandler = (error: RewindCaptureError) => void;

export const defaultErrorHandler: ErrorHandler = (error) => {
  console.warn(`[rewind] ${error.message}`);
};

/**
 * Reports each kind of problem once through the handler, and counts every occurrence. A `key`
 * makes finer kinds: each distinct (code, key) is reported once (e.g. one report per rejection
 * reason).
 */
export class Reporter {
  readonly #handler: ErrorHandler;
  readonly #reported = new Set<string>();
  readonly counts: Partial<Record<CaptureErrorCode, number>> = {};

  constructor(handler: ErrorHandler = defaultErrorHandler) {
    this.#handler = handler;
  }

  report(code: CaptureErrorCode, message: string, cause?: unknown, key?: string): void {
    this.counts[code] = (this.counts[code] ?? 0) + 1;
    const kind = key === undefined ? code : `${code}\u0000${key}`;
    if (this.#reported.has(kind)) return;
    if (this.#reported.size >= 1000) return; // a flood of distinct keys: the counts still grow
    this.#reported.add(kind);
    const error = new RewindCaptureError(code, message, cause === undefined ? undefined : { cause });
    try {
      this.#handler(error);
    } catch {
      // A throwing handler must not reach the agent either.
    }
  }
}

export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
