import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Redactor } from '@rewind/redact';
import { RewindError } from '@rewind/schema';
import type { Store } from '@rewind/store';
import { badRequest, HttpError } from './http-error.ts';
import type { ServerLimits } from './limits.ts';
import type { Metrics } from './metrics.ts';
import type { PendingTracker } from './pending-tracker.ts';
import type { ReplaySettings } from './routes/replays.ts';

// What every route handler gets, and what it returns.

export interface ServerContext {
  store: Store;
  limits: ServerLimits;
  metrics: Metrics;
  pending: PendingTracker;
  /** The redaction policy enforced at ingest (redaction.ts). */
  redactor: Redactor;
  replays: ReplaySettings;
  /** Aborted when the server starts closing: long-lived responses (event streams) end then. */
  closing: AbortSignal;
}

export interface RouteRequest {
  req: IncomingMessage;
  /** The path's parameters, percent-decoded, in pattern order. */
  params: string[];
  /** The same, as sent (still percent-encoded). */
  rawParams: string[];
  query: URLSearchParams;
}

export interface Reply {
  status: number;
  /** Sent as application/json. */
  json?: unknown;
  /** Sent as is, with `contentType`. */
  body?: Uint8Array | string;
  contentType?: string;
  headers?: Record<string, string | number>;
  /** A streamed body (server-sent events): called after the head is written with `status` and `headers`. */
  stream?: (res: ServerResponse) => Promise<void>;
}

export type Handler = (context: ServerContext, request: RouteRequest) => Promise<Reply>;

/**
 * Runs a store operation. A query the store rejects is the client's mistake (400); any other
 * failure is the store's (counted, 503 so that clients retry later).
 */
export async function withStore<T>(context: ServerContext, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    if (RewindError.isInstance(error) && error.code === 'invalid_query') {
      throw badRequest('invalid_query', error.message);
    }
    if (error instanceof HttpError) throw error;
    context.metrics.storeErrors++;
    throw new HttpError(
      503,
      'store_unavailable',
      `the store could not be reached or failed (${error instanceof Error ? error.message : String(error)}); retry later`,
      { headers: { 'Retry-After': '1' }, cause: error },
    );
  }
}
