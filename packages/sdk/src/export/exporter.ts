import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';
import type { BlobHash, RewindEvent } from '@rewind/schema';
import { outsideRuns } from '../context.ts';
import { type ErrorHandler, messageOf, Reporter } from '../errors.ts';
import { dateNow, performanceNow } from '../originals.ts';
import type { Sink, SinkBatch, SinkListener, SinkOutcome } from '../sink.ts';
import { BLOB_FRAMES_TYPE, encodeBlobFrames, frameBytes } from './frames.ts';
import { HttpClient, type HttpResponse, isAbort, RequestTimeoutError } from './http.ts';
import {
  type BackoffOptions,
  backoffDelay,
  isDroppedConnection,
  isRetryableStatus,
  parseRetryAfter,
} from './retry.ts';
import { decodeGroups, Spool, type SpoolClaim, SpoolFullError } from './spool.ts';

// The HTTP exporter (docs/sdk.md, "Export"): a Sink that sends the pipeline's batches to a Rewind
// server (the wire contract is docs/api.md). Per batch: ask which blobs the server lacks
// (POST /v1/blobs/missing), upload those (POST /v1/blobs, frames), then send the events
// (POST /v1/events, gzip) — blobs always before the events that reference them. Requests are
// retried on 429/502/503/504 and dropped connections only, with exponential backoff and full
// jitter, honouring Retry-After; anything else is final. What cannot be delivered (the server is
// down, or a flush's deadline is near) goes to the local spool (spool.ts) and is delivered later
// by this exporter or any other using the same directory.

const gzip = promisify(gzipCallback);

/**
 * When the pipeline's queue is this full, batches go to the spool instead of waiting on the
 * network (and retries give up at once): records would otherwise be dropped for `queue_full`.
 */
const SPILL_BACKLOG = 0.5;

export interface HttpExporterOptions {
  /** The server's base URL, e.g. `http://127.0.0.1:4000` (routes are resolved under it). */
  endpoint: string;
  apiKey?: string | undefined;
  /** Where undeliverable events and their blobs are kept (the recorder's default: `.rewind/spool`). */
  spoolDir: string;
  /** Called once per kind of problem (default: one `[rewind]` console.warn). */
  onError?: ErrorHandler;
  /** Attempts per request, the first included (default 5). */
  maxAttempts?: number;
  /** Backoff between attempts (default 200 ms doubling, at most 10 s). */
  backoff?: BackoffOptions;
  /** A Retry-After longer than this spools the batch at once and waits that long before trying again (default 60 s). */
  maxRetryAfterMs?: number;
  /** Per request (default 10 s); a flush's deadline cuts it shorter. */
  requestTimeoutMs?: number;
  /** Events per POST /v1/events (default 1000; the server takes up to 10 000). */
  maxEventsPerRequest?: number;
  /** Uncompressed bytes per request body, events or blob frames (default 8 MiB). */
  maxRequestBytes?: number;
  /** Batches in flight at once (default 2); a second one is started only when a full batch waits. */
  concurrency?: number;
  /** gzip request bodies (default true). */
  gzip?: boolean;
  /** The spool holds at most this many bytes; beyond, events are dropped and counted (default 1 GiB). */
  maxSpoolBytes?: number;
  /** After the server could not be reached: first wait before trying the spool again (default 1 s), doubling up to `maxProbeMs` (default 60 s). */
  probeMs?: number;
  maxProbeMs?: number;
  /** For tests: how to wait (must reject when the signal aborts), random numbers in [0, 1), the wall clock (Retry-After dates). */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  random?: () => number;
  now?: () => number;
}

/** What the exporter did, beyond the recorder's counters. */
export interface ExporterStats {
  /** HTTP requests sent, retries included. */
  requests: number;
  /** Of which retries. */
  retries: number;
  /** Events of other exporters' spool files (earlier processes) delivered, or dropped, by this one. */
  recovered: { delivered: number; dropped: number };
}

type Attempt =
  | { kind: 'ok'; response: HttpResponse }
  /** A final answer: not retried. */
  | { kind: 'failed'; status: number; message: string }
  /** Retries exhausted, or a failure not worth retrying now: spool. */
  | { kind: 'unreachable'; reason: string; retryAfterMs?: number }
  | { kind: 'aborted' };

interface Delivery {
  delivered: number;
  dropped: number;
  stored: BlobHash[];
  /** Events not delivered (to spool), in order, with what they use. */
  rest: { events: RewindEvent[]; uses: BlobHash[][] } | undefined;
  /** Why `rest` was not delivered. */
  unreachable?: { reason: string; retryAfterMs?: number };
}

function defaultSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function errorMessage(response: HttpResponse): string {
  try {
    const parsed = JSON.parse(response.body.toString('utf8')) as {
      error?: { code?: string; message?: string };
    };
    if (parsed.error?.message !== undefined)
      return `${parsed.error.code ?? response.status}: ${parsed.error.message}`;
  } catch {
    // not JSON
  }
  return response.body.toString('utf8', 0, Math.min(response.body.length, 300)) || 'no message';
}

interface FlushEntry {
  onCutoff: () => void;
  timer: NodeJS.Timeout | undefined;
  fired: boolean;
}

export class HttpExporter implements Sink {
  readonly location: string;
  readonly concurrency: number;
  readonly #client: HttpClient;
  readonly #spool: Spool;
  readonly #reporter: Reporter;
  /** Marks the spool groups of this exporter, so it counts them when it delivers them. */
  readonly #id = `${process.pid}-${randomBytes(6).toString('hex')}`;
  readonly #maxAttempts: number;
  readonly #backoff: BackoffOptions;
  readonly #maxRetryAfterMs: number;
  readonly #maxEvents: number;
  readonly #maxBytes: number;
  readonly #gzip: boolean;
  readonly #probeMs: number;
  readonly #maxProbeMs: number;
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly #random: () => number;
  readonly #now: () => number;
  #listener: SinkListener | undefined;
  /** Aborted at a flush's cutoff (replaced when it is over) and at close. */
  #cutoff = new AbortController();
  readonly #flushes = new Set<FlushEntry>();
  /** Aborted when the pipeline's queue fills up (cuts retry waits short). */
  #pressure = new AbortController();
  #closed = false;
  /** performance.now() before which the server is taken as down: batches go straight to the spool. */
  #outageUntil = 0;
  /** Set when a request gave up on the server, cleared when it answers again. */
  #serverDown = false;
  #probeDelay = 0;
  #draining: Promise<void> | undefined;
  /** A drain asked for while one was running: start another this many ms after it ends. */
  #drainAgainIn: number | undefined;
  #drainTimer: NodeJS.Timeout | undefined;
  readonly #stats: ExporterStats = { requests: 0, retries: 0, recovered: { delivered: 0, dropped: 0 } };

  constructor(options: HttpExporterOptions, reporter?: Reporter) {
    this.#reporter = reporter ?? new Reporter(options.onError);
    this.#client = new HttpClient({
      endpoint: options.endpoint,
      apiKey: options.apiKey,
      timeoutMs: options.requestTimeoutMs ?? 10_000,
    });
    this.location = options.endpoint;
    this.concurrency = Math.max(1, options.concurrency ?? 2);
    this.#spool = new Spool(options.spoolDir, { maxBytes: options.maxSpoolBytes });
    this.#maxAttempts = Math.max(1, options.maxAttempts ?? 5);
    this.#backoff = options.backoff ?? {};
    this.#maxRetryAfterMs = options.maxRetryAfterMs ?? 60_000;
    this.#maxEvents = Math.max(1, Math.min(10_000, options.maxEventsPerRequest ?? 1000));
    this.#maxBytes = options.maxRequestBytes ?? 8 * 1024 * 1024;
    this.#gzip = options.gzip !== false;
    this.#probeMs = options.probeMs ?? 1000;
    this.#maxProbeMs = options.maxProbeMs ?? 60_000;
    this.#sleep = options.sleep ?? defaultSleep;
    this.#random = options.random ?? Math.random;
    this.#now = options.now ?? dateNow;
    // what earlier processes left in the spool
    this.#kickDrain(0);
  }

  /** The spool directory. */
  get spoolDir(): string {
    return this.#spool.dir;
  }

  stats(): ExporterStats {
    return {
      requests: this.#client.requests,
      retries: this.#stats.retries,
      recovered: { ...this.#stats.recovered },
    };
  }

  attach(listener: SinkListener): void {
    this.#listener = listener;
  }

  async write(batch: SinkBatch): Promise<SinkOutcome> {
    try {
      return await this.#write(batch);
    } catch (error) {
      this.#reporter.report('internal', `the exporter failed: ${messageOf(error)}`, error);
      return { delivered: 0, dropped: batch.events.length, spooled: 0, stored: [] };
    }
  }

  async #write(batch: SinkBatch): Promise<SinkOutcome> {
    const { events, uses, blobs } = batch;
    if (this.#closed) return { delivered: 0, dropped: events.length, spooled: 0, stored: [] };
    const pressed = this.#pressed();
    if (this.#cutoff.signal.aborted || performanceNow() < this.#outageUntil || pressed) {
      const spooled = await this.#spoolEvents(events, uses, blobs, this.#id);
      // the agent produces faster than the server takes: deliver the spool once that eases
      if (pressed && spooled > 0) this.#kickDrain(this.#probeMs);
      return { delivered: 0, dropped: events.length - spooled, spooled, stored: [] };
    }
    const delivery = await this.#deliver(events, uses, blobs, this.#cutoff.signal);
    let spooled = 0;
    let dropped = delivery.dropped;
    if (delivery.rest !== undefined) {
      spooled = await this.#spoolEvents(delivery.rest.events, delivery.rest.uses, blobs, this.#id);
      dropped += delivery.rest.events.length - spooled;
      if (delivery.unreachable !== undefined) this.#enterOutage(delivery.unreachable);
    }
    return { delivered: delivery.delivered, dropped, spooled, stored: delivery.stored };
  }

  /** Writes events and the blobs they need (those we hold bytes for) to the spool; returns how many were spooled. */
  async #spoolEvents(
    events: RewindEvent[],
    uses: BlobHash[][],
    available: Map<BlobHash, Buffer>,
    owner: string,
  ): Promise<number> {
    if (events.length === 0) return 0;
    const blobs = new Map<BlobHash, Buffer>();
    for (const hashes of uses) {
      for (const hash of hashes) {
        const bytes = available.get(hash);
        if (bytes !== undefined) blobs.set(hash, bytes);
      }
    }
    try {
      await this.#spool.append({ owner, events, uses, blobs });
      return events.length;
    } catch (error) {
      const full = error instanceof SpoolFullError;
      this.#reporter.report(
        'spool_failed',
        `${events.length} event(s) could not be delivered to ${this.location} nor written to the spool ${this.#spool.dir} (${messageOf(error)}): they are dropped and counted; ${full ? 'raise maxSpoolBytes or bring the server back' : 'check the spool directory'}`,
        error,
      );
      return 0;
    }
  }

  #pressed(): boolean {
    return (this.#listener?.backlog() ?? 0) >= SPILL_BACKLOG;
  }

  #enterOutage(why: { reason: string; retryAfterMs?: number }): void {
    this.#probeDelay = Math.min(
      this.#maxProbeMs,
      this.#probeDelay === 0 ? this.#probeMs : this.#probeDelay * 2,
    );
    const wait = Math.max(why.retryAfterMs ?? 0, this.#probeDelay);
    this.#outageUntil = performanceNow() + wait;
    this.#serverDown = true;
    // Requests of other batches waiting to retry would only fail too: spool them now.
    if (!this.#pressure.signal.aborted) this.#pressure.abort(new Error('the server is down: spooling'));
    this.#reporter.report(
      'export_unreachable',
      `cannot deliver to ${this.location} (${why.reason}): events are spooled to ${this.#spool.dir} and delivered when it answers again`,
    );
    this.#kickDrain(wait);
  }

  #serverAnswered(): void {
    this.#serverDown = false;
    this.#probeDelay = 0;
    this.#outageUntil = 0;
  }

  // ---- delivery -------------------------------------------------------------------------------

  async #deliver(
    events: RewindEvent[],
    uses: BlobHash[][],
    blobs: Map<BlobHash, Buffer>,
    signal: AbortSignal,
  ): Promise<Delivery> {
    const stored: BlobHash[] = [];
    const all = { events, uses };
    let failed: Set<BlobHash> | undefined;
    if (blobs.size > 0) {
      const missing = await this.#missing([...blobs.keys()], signal);
      if (missing.kind === 'failed') {
        this.#refused('POST /v1/blobs/missing', missing, events.length);
        return { delivered: 0, dropped: events.length, stored, rest: undefined };
      }
      if (missing.kind !== 'ok')
        return { delivered: 0, dropped: 0, stored, rest: all, ...this.#why(missing) };
      for (const hash of blobs.keys()) if (!missing.hashes.has(hash)) stored.push(hash);
      const upload = await this.#upload(
        [...missing.hashes].map((hash) => [hash, blobs.get(hash)!] as const),
        signal,
      );
      if (upload.kind !== 'ok') return { delivered: 0, dropped: 0, stored, rest: all, ...this.#why(upload) };
      stored.push(...upload.stored);
      if (upload.failed.size > 0) failed = upload.failed;
    }
    let ready = events;
    let readyUses = uses;
    let dropped = 0;
    if (failed !== undefined) {
      const keep = events.map((_, i) => !uses[i]!.some((hash) => failed.has(hash)));
      ready = events.filter((_, i) => keep[i]);
      readyUses = uses.filter((_, i) => keep[i]);
      dropped = events.length - ready.length;
    }
    let delivered = 0;
    const bodies = ready.map((event) => JSON.stringify(event));
    let start = 0;
    while (start < ready.length) {
      let end = start;
      let bytes = 12;
      while (end < ready.length && end - start < this.#maxEvents) {
        const size = bodies[end]!.length + 1;
        if (end > start && bytes + size > this.#maxBytes) break;
        bytes += size;
        end++;
      }
      const result = await this.#postEvents(bodies.slice(start, end), signal);
      if (result.kind === 'unreachable' || result.kind === 'aborted') {
        return {
          delivered,
          dropped,
          stored,
          rest: { events: ready.slice(start), uses: readyUses.slice(start) },
          ...this.#why(result),
        };
      }
      delivered += result.delivered;
      dropped += result.dropped;
      start = end;
    }
    return { delivered, dropped, stored, rest: undefined };
  }

  /** Reports a final refusal (once per route and status). */
  #refused(route: string, attempt: { status: number; message: string }, events: number | undefined): void {
    const what = events === undefined ? 'the events that need those blobs are' : `${events} event(s)`;
    const advice =
      attempt.status === 401 || attempt.status === 403
        ? 'check the API key (apiKey, $REWIND_API_KEY): it must be an ingest key'
        : 'a retry would get the same answer';
    this.#reporter.report(
      'export_failed',
      `${this.location} answered ${route} with ${attempt.status} (${attempt.message}): ${what} dropped and counted, not retried (${advice})`,
      undefined,
      `${route} ${attempt.status}`,
    );
  }

  #why(attempt: Attempt): { unreachable?: { reason: string; retryAfterMs?: number } } {
    if (attempt.kind !== 'unreachable') return {};
    return {
      unreachable:
        attempt.retryAfterMs === undefined
          ? { reason: attempt.reason }
          : { reason: attempt.reason, retryAfterMs: attempt.retryAfterMs },
    };
  }

  async #missing(
    hashes: BlobHash[],
    signal: AbortSignal,
  ): Promise<{ kind: 'ok'; hashes: Set<BlobHash> } | Exclude<Attempt, { kind: 'ok' }>> {
    // (a 404 means a server without this route; any other refusal is final for the batch)
    const missing = new Set<BlobHash>();
    for (let i = 0; i < hashes.length; i += 10_000) {
      const chunk = hashes.slice(i, i + 10_000);
      const attempt = await this.#post(
        'v1/blobs/missing',
        Buffer.from(JSON.stringify({ hashes: chunk })),
        'application/json',
        signal,
      );
      if (attempt.kind === 'unreachable' || attempt.kind === 'aborted') return attempt;
      if (attempt.kind === 'failed') {
        if (attempt.status !== 404) return attempt;
        // a server without the route: upload them all (it stores each blob once anyway)
        for (const hash of chunk) missing.add(hash);
        continue;
      }
      let listed: unknown;
      try {
        listed = (JSON.parse(attempt.response.body.toString('utf8')) as { missing?: unknown }).missing;
      } catch {
        listed = undefined;
      }
      if (!Array.isArray(listed)) {
        for (const hash of chunk) missing.add(hash);
        continue;
      }
      const asked = new Set<string>(chunk);
      for (const hash of listed)
        if (typeof hash === 'string' && asked.has(hash)) missing.add(hash as BlobHash);
    }
    return { kind: 'ok', hashes: missing };
  }

  /** Uploads blobs in frame batches; `failed` are those the server refused for good. */
  async #upload(
    blobs: ReadonlyArray<readonly [BlobHash, Buffer]>,
    signal: AbortSignal,
  ): Promise<
    { kind: 'ok'; stored: BlobHash[]; failed: Set<BlobHash> } | Exclude<Attempt, { kind: 'ok' | 'failed' }>
  > {
    const stored: BlobHash[] = [];
    const failed = new Set<BlobHash>();
    let start = 0;
    while (start < blobs.length) {
      let end = start;
      let bytes = 0;
      while (end < blobs.length && end - start < 10_000) {
        const size = frameBytes(blobs[end]![1].length);
        if (end > start && bytes + size > this.#maxBytes) break;
        bytes += size;
        end++;
      }
      const chunk = blobs.slice(start, end);
      start = end;
      const attempt = await this.#post('v1/blobs', encodeBlobFrames(chunk), BLOB_FRAMES_TYPE, signal);
      if (attempt.kind === 'unreachable' || attempt.kind === 'aborted') return attempt;
      if (attempt.kind === 'failed') {
        for (const [hash] of chunk) failed.add(hash);
        this.#refused('POST /v1/blobs', attempt, undefined);
        continue;
      }
      let results: Array<{ hash?: unknown; status?: unknown; reason?: unknown }> | undefined;
      try {
        const parsed = JSON.parse(attempt.response.body.toString('utf8')) as { results?: unknown };
        if (Array.isArray(parsed.results)) results = parsed.results as typeof results;
      } catch {
        results = undefined;
      }
      const outcome = new Map<string, { status?: unknown; reason?: unknown }>();
      for (const result of results ?? [])
        if (typeof result?.hash === 'string') outcome.set(result.hash, result);
      for (const [hash] of chunk) {
        const result = outcome.get(hash);
        if (result === undefined || result.status !== 'rejected') {
          stored.push(hash);
          continue;
        }
        failed.add(hash);
        const reason = typeof result.reason === 'string' ? result.reason : 'no reason given';
        this.#reporter.report(
          'export_failed',
          `${this.location} rejected a blob (${reason}): the events that need it are dropped and counted`,
          undefined,
          `blob ${reason}`,
        );
      }
    }
    return { kind: 'ok', stored, failed };
  }

  async #postEvents(
    bodies: string[],
    signal: AbortSignal,
  ): Promise<
    { kind: 'done'; delivered: number; dropped: number } | Exclude<Attempt, { kind: 'ok' | 'failed' }>
  > {
    const body = Buffer.from(`{"events":[${bodies.join(',')}]}`, 'utf8');
    const attempt = await this.#post('v1/events', body, 'application/json', signal);
    if (attempt.kind === 'unreachable' || attempt.kind === 'aborted') return attempt;
    if (attempt.kind === 'failed') {
      this.#refused('POST /v1/events', attempt, bodies.length);
      return { kind: 'done', delivered: 0, dropped: bodies.length };
    }
    let parsed: { results?: unknown; rejected?: unknown } | undefined;
    try {
      parsed = JSON.parse(attempt.response.body.toString('utf8')) as typeof parsed;
    } catch {
      parsed = undefined;
    }
    const results = Array.isArray(parsed?.results)
      ? (parsed.results as Array<{ status?: unknown; reason?: unknown; field?: unknown }>)
      : undefined;
    if (results === undefined || results.length !== bodies.length) {
      // a 2xx answer stores the batch; without per-event results there is nothing more to learn
      return { kind: 'done', delivered: bodies.length, dropped: 0 };
    }
    let rejected = 0;
    for (const result of results) {
      if (result?.status !== 'rejected') continue;
      rejected++;
      const reason = typeof result.reason === 'string' ? result.reason : 'no reason given';
      const field = typeof result.field === 'string' ? ` (field ${result.field})` : '';
      this.#reporter.report(
        'events_rejected',
        `${this.location} rejected event(s): ${reason}${field}; they are dropped and counted`,
        undefined,
        reason,
      );
    }
    return { kind: 'done', delivered: bodies.length - rejected, dropped: rejected };
  }

  /** One POST with retries (see retry.ts). */
  async #post(path: string, raw: Buffer, contentType: string, signal: AbortSignal): Promise<Attempt> {
    const headers: Record<string, string> = { 'content-type': contentType };
    let body = raw;
    if (this.#gzip && raw.length >= 1024) {
      body = await gzip(raw, { level: 1 });
      headers['content-encoding'] = 'gzip';
    }
    for (let attempt = 1; ; attempt++) {
      if (signal.aborted) return { kind: 'aborted' };
      let reason: string;
      let retryAfterMs: number | undefined;
      try {
        const response = await this.#client.request('POST', path, body, headers, signal);
        if (response.status >= 200 && response.status < 300) {
          this.#serverAnswered();
          return { kind: 'ok', response };
        }
        if (!isRetryableStatus(response.status)) {
          this.#serverAnswered();
          return { kind: 'failed', status: response.status, message: errorMessage(response) };
        }
        reason = `HTTP ${response.status}`;
        const header = response.headers['retry-after'];
        retryAfterMs = parseRetryAfter(Array.isArray(header) ? header[0] : header, this.#now());
      } catch (error) {
        if (isAbort(error)) return { kind: 'aborted' };
        reason = messageOf(error);
        // not a dropped connection (a host that does not resolve, a TLS error): do not hammer it
        if (!(error instanceof RequestTimeoutError) && !isDroppedConnection(error))
          return { kind: 'unreachable', reason };
      }
      if (retryAfterMs !== undefined && retryAfterMs > this.#maxRetryAfterMs)
        return { kind: 'unreachable', reason: `${reason}, Retry-After ${retryAfterMs} ms`, retryAfterMs };
      if (attempt >= this.#maxAttempts)
        return { kind: 'unreachable', reason: `${reason} (${attempt} attempts)` };
      if (this.#pressed())
        return { kind: 'unreachable', reason: `${reason} (the capture queue is filling up)` };
      // Known down: this request was a probe; the spool drain's schedule decides when to try again.
      if (this.#serverDown) return { kind: 'unreachable', reason: `${reason} (the server is still down)` };
      const delay = retryAfterMs ?? backoffDelay(attempt - 1, this.#random, this.#backoff);
      this.#stats.retries++;
      const waited = await this.#wait(delay, signal);
      if (waited === 'aborted') return { kind: 'aborted' };
      if (waited === 'pressed')
        return {
          kind: 'unreachable',
          reason: `${reason} (spooled while waiting to retry: the capture queue filled up, or the server is down)`,
        };
    }
  }

  /** Waits before a retry; gives up early when the signal fires or the pipeline's queue fills up. */
  async #wait(ms: number, signal: AbortSignal): Promise<'done' | 'aborted' | 'pressed'> {
    if (this.#pressed()) return 'pressed';
    if (this.#pressure.signal.aborted) this.#pressure = new AbortController();
    try {
      await outsideRuns(() => this.#sleep(ms, AbortSignal.any([signal, this.#pressure.signal])));
      return 'done';
    } catch {
      return signal.aborted ? 'aborted' : 'pressed';
    }
  }

  /** The pipeline's queue is filling up: stop waiting to retry, spool instead. */
  pressure(): void {
    if (!this.#pressure.signal.aborted) this.#pressure.abort(new Error('the capture queue is filling up'));
  }

  // ---- the spool drain ------------------------------------------------------------------------

  #kickDrain(delayMs: number): void {
    if (this.#closed) return;
    if (this.#draining !== undefined) {
      this.#drainAgainIn = Math.min(this.#drainAgainIn ?? delayMs, delayMs);
      return;
    }
    if (this.#drainTimer !== undefined) clearTimeout(this.#drainTimer);
    this.#drainTimer = undefined;
    if (delayMs === 0) {
      outsideRuns(() => this.#startDrain());
      return;
    }
    this.#drainTimer = outsideRuns(() =>
      setTimeout(() => {
        this.#drainTimer = undefined;
        this.#startDrain();
      }, delayMs),
    );
    // a spool waiting for a server that is down must not keep the process alive
    this.#drainTimer.unref();
  }

  #startDrain(): void {
    this.#draining = this.#drain().finally(() => {
      this.#draining = undefined;
      const again = this.#drainAgainIn;
      this.#drainAgainIn = undefined;
      if (again !== undefined) this.#kickDrain(again);
    });
  }

  /**
   * Delivers what the spool holds now — this exporter's and what earlier processes left — until
   * it is empty, the server cannot be reached, or the deadline (the file being delivered is put
   * back). Never rejects. Resolves true when no deliverable spool file is left.
   */
  async drainSpool(timeoutMs = 10_000): Promise<boolean> {
    if (this.#closed) return false;
    const release = this.flushing(performanceNow() + Math.max(0, timeoutMs), () => {});
    try {
      while (this.#draining !== undefined) await this.#draining;
    } finally {
      release();
    }
    try {
      return !(await this.#spool.files()).some((file) => file.state === 'spool');
    } catch {
      return false;
    }
  }

  async #drain(): Promise<void> {
    try {
      if (this.#spool.hasOpenSegment) await this.#spool.seal();
      while (!this.#closed && !this.#cutoff.signal.aborted) {
        const claim = await this.#spool.claimNext();
        if (claim === undefined) {
          // nothing left to probe with: the next batch tries the server itself
          this.#outageUntil = 0;
          return;
        }
        if (!(await this.#drainFile(claim))) return;
      }
    } catch (error) {
      this.#reporter.report(
        'spool_failed',
        `reading the spool ${this.#spool.dir} failed: ${messageOf(error)}`,
        error,
      );
    }
  }

  /** Delivers one claimed file; false when it had to stop (server down, cutoff, close). */
  async #drainFile(claim: SpoolClaim): Promise<boolean> {
    let offset = claim.offset;
    try {
      const { groups, skipped } = decodeGroups(await claim.read(), offset);
      if (skipped > 0)
        this.#reporter.report(
          'spool_corrupt',
          `skipped ${skipped} damaged byte(s) in the spool ${this.#spool.dir} (a write cut short by a crash); the records around them are delivered`,
        );
      const signal = this.#cutoff.signal;
      for (const group of groups) {
        if (this.#closed || signal.aborted) {
          await claim.release(offset);
          return false;
        }
        if (this.#pressed()) {
          // live batches first; the spool waits until the queue eases
          await claim.release(offset);
          this.#kickDrain(this.#probeMs);
          return false;
        }
        const delivery = await this.#deliver(group.events, group.uses, group.blobs, signal);
        let { delivered, dropped } = delivery;
        if (delivery.rest !== undefined) {
          if (delivered + dropped === 0) {
            await claim.release(offset);
            if (delivery.unreachable !== undefined) this.#enterOutage(delivery.unreachable);
            return false;
          }
          // part of the group got through: keep the rest as a group of its own, so nothing is counted twice
          const spooled = await this.#spoolEvents(
            delivery.rest.events,
            delivery.rest.uses,
            group.blobs,
            group.owner,
          );
          dropped += delivery.rest.events.length - spooled;
        }
        this.#credit(group.owner, delivered, dropped);
        offset = group.end;
        if (delivery.rest !== undefined) {
          await claim.release(offset);
          if (delivery.unreachable !== undefined) this.#enterOutage(delivery.unreachable);
          return false;
        }
      }
      this.#spool.delivered(await claim.finish());
      return true;
    } catch (error) {
      await claim.release(offset).catch(() => {});
      throw error;
    }
  }

  #credit(owner: string, delivered: number, dropped: number): void {
    if (owner === this.#id) {
      this.#listener?.unspooled(delivered, dropped);
    } else {
      this.#stats.recovered.delivered += delivered;
      this.#stats.recovered.dropped += dropped;
    }
  }

  // ---- flush and close ------------------------------------------------------------------------

  flushing(deadline: number, onCutoff: () => void): () => void {
    // deliver the spool now rather than at the next probe
    this.#outageUntil = 0;
    this.#kickDrain(0);
    const entry: FlushEntry = { onCutoff, timer: undefined, fired: false };
    this.#flushes.add(entry);
    if (Number.isFinite(deadline)) {
      const budget = Math.max(0, deadline - performanceNow());
      // time kept to spool what is left: a fifth of the budget, 10 ms to 1 s
      const margin = Math.min(1000, Math.max(10, budget / 5));
      entry.timer = outsideRuns(() =>
        setTimeout(() => this.#enterCutoff(entry), Math.max(0, budget - margin)),
      );
    }
    return () => {
      if (entry.timer !== undefined) clearTimeout(entry.timer);
      this.#flushes.delete(entry);
      if (this.#cutoff.signal.aborted && !this.#closed && ![...this.#flushes].some((other) => other.fired)) {
        this.#cutoff = new AbortController();
        this.#kickDrain(this.#outageRemaining());
      }
    };
  }

  #outageRemaining(): number {
    return Math.max(0, this.#outageUntil - performanceNow());
  }

  #enterCutoff(entry: FlushEntry): void {
    entry.fired = true;
    if (!this.#cutoff.signal.aborted) this.#cutoff.abort(new Error('the flush deadline is near: spooling'));
    entry.onCutoff();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#drainTimer !== undefined) clearTimeout(this.#drainTimer);
    if (!this.#cutoff.signal.aborted) this.#cutoff.abort(new Error('the exporter is closing'));
    // a drain that stops puts its file back for the next exporter
    await this.#draining;
    try {
      await this.#spool.close();
    } catch (error) {
      this.#reporter.report(
        'spool_failed',
        `closing the spool ${this.#spool.dir} failed: ${messageOf(error)}`,
        error,
      );
    }
    this.#client.close();
  }
}
