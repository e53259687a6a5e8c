// When to try an HTTP request again, and how long to wait first (docs/sdk.md, "Export").
// Retried: 429, 502, 503, 504 and dropped connections (reset, refused, hang-ups, timeouts) —
// every POST of the wire contract is idempotent, so sending again after a cut is safe. Never
// retried: any other 4xx, and 500 (a server bug does not go away by asking again).

export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504]);

export function isRetryableStatus(status: number): boolean {
  return RETRYABLE_STATUSES.has(status);
}

export interface BackoffOptions {
  /** The first retry's ceiling (default 200 ms); each later one doubles it. */
  baseMs?: number;
  /** No wait is longer than this (default 10 s), Retry-After included. */
  maxMs?: number;
}

/**
 * Exponential backoff with full jitter: a uniformly random wait in [0, min(max, base × 2^retry)).
 * `retry` counts from 0 (the wait before the second attempt); `random` returns [0, 1).
 */
export function backoffDelay(retry: number, random: () => number, options: BackoffOptions = {}): number {
  const base = options.baseMs ?? 200;
  const max = options.maxMs ?? 10_000;
  const ceiling = Math.min(max, base * 2 ** Math.min(retry, 30));
  return Math.floor(random() * ceiling);
}

/**
 * The wait a `Retry-After` header asks for, in ms: delta-seconds (`120`) or an HTTP-date
 * (`Wed, 21 Oct 2015 07:28:00 GMT`, relative to `nowMs`, the wall clock). Undefined when absent
 * or malformed; a date in the past is 0.
 */
export function parseRetryAfter(value: string | undefined | null, nowMs: number): number | undefined {
  if (value === undefined || value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  if (!/[a-z]/i.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}

/** Error codes of a connection that dropped or never came up: worth another attempt. */
const DROPPED_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

export function isDroppedConnection(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && DROPPED_CODES.has(code)) return true;
  const message = (error as { message?: unknown } | null)?.message;
  return typeof message === 'string' && /socket hang up|other side closed|premature close/i.test(message);
}
