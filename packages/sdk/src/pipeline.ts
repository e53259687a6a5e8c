import { hash } from 'node:crypto';
import type { Redactor } from '@rewind/redact';
import type {
  Attributes,
  AttributeValue,
  BlobHash,
  BlobRef,
  ErrorInfo,
  RewindEvent,
  RunFinished,
  RunStarted,
  StepFinished,
  StepStarted,
} from '@rewind/schema';
import type { Store } from '@rewind/store';
import { epochMsOf, isoTimeOf } from './clock.ts';
import { outsideRuns } from './context.ts';
import { messageOf, type Reporter } from './errors.ts';
import { uuidv7 } from './ids.ts';
import { canonical, type Part, type Payload, type Piece } from './json.ts';
import { performanceNow } from './originals.ts';
import type { CapturedError, CaptureRecord } from './records.ts';
import {
  redactAttributes,
  redactError,
  redactPayload,
  requestSerializer,
  responseSerializer,
  stepAt,
} from './redaction.ts';
import { type Sink, StoreSink } from './sink.ts';
import { serializePlain } from './split.ts';

// The background half of capture (docs/sdk.md, "Pipeline"). The hot path pushes records onto a
// bounded in-memory queue; a drain scheduled with setImmediate (once per burst, outside any
// run's context) turns them into events and blobs in batches: it hashes payloads and hands each
// batch — its events and the blobs the process has not stored yet — to a sink (sink.ts): the
// local store (one `putMany`, then one `append`) or the HTTP exporter (export/). Blobs are always
// stored before the events that reference them.
//
// Accounting: every record pushed is `produced` and is then, at any moment, in exactly one of
// `pending` (queued or being written), `delivered` (the store or server accepted it, or already
// had it), `spooled` (written to the exporter's local spool, not delivered yet) or `dropped`
// (queue full, store failing, rejected, abandoned at a shutdown deadline). delivered and dropped
// are final; a spooled record moves to delivered or dropped when this process delivers its spool.
// So produced = delivered + spooled + dropped + pending, always.

export interface CaptureStats {
  produced: number;
  delivered: number;
  /** Written to the exporter's local spool and not delivered yet (always 0 with a local store). */
  spooled: number;
  dropped: number;
  pending: number;
}

export interface FlushResult extends CaptureStats {
  /** Every event produced before the call was delivered or dropped in time. */
  done: boolean;
  /** The deadline came first: what was not delivered is spooled (`spooled`) or still `pending`. */
  timedOut: boolean;
}

export interface PipelineOptions {
  /** Where batches go; or a store (or how to open it, called once on the first drain). */
  sink?: Sink;
  store?: Store | (() => Promise<Store>);
  reporter: Reporter;
  /** Records held in memory at most (default 100 000). */
  maxQueueSize?: number;
  /** Payload bytes held in memory at most (default 64 MiB). */
  maxQueueBytes?: number;
  /** Records per batch (default 1000). */
  batchSize?: number;
  /** Blob writes in flight at once, for a blob store without putMany (default 16). */
  blobConcurrency?: number;
  sdk: { name: string; version: string };
  /** The redaction policy every payload, error and attribute set goes through before it is hashed (redaction.ts). */
  redactor?: Redactor | undefined;
}

interface Waiter {
  target: number;
  /** The sink has spooled what it could not deliver in time: spooled records count as settled. */
  cutoff: boolean;
  resolve: (timedOut: boolean) => void;
}

const MAX_KNOWN_BLOBS = 200_000;
/**
 * The set of written hashes is forgotten this often, so that a blob still in use is put again
 * (which refreshes it) well within the store's gc grace period (24 h by default): a long-lived
 * process must not keep referencing a blob it wrote days ago without telling the store.
 */
const KNOWN_MAX_AGE_MS = 60 * 60 * 1000;
const MAX_STACK = 8192;

function sha256(data: string | Buffer): BlobHash {
  return `sha256:${hash('sha256', data, 'hex')}`;
}

function piecesBytes(body: string | Piece[]): number {
  if (typeof body === 'string') return body.length;
  let total = 0;
  for (const piece of body) {
    if (typeof piece === 'string') {
      total += piece.length;
    } else if (piece.charged || piece.hash !== undefined) {
      total += 83; // an interned part already held (or stored): only its pointer is new
    } else {
      piece.charged = true;
      total += piece.text.length;
    }
  }
  return total;
}

function payloadBytes(payload: Payload | undefined): number {
  if (payload === undefined) return 0;
  return typeof payload === 'string' ? payload.length : piecesBytes(payload.body);
}

function recordBytes(record: CaptureRecord): number {
  switch (record.type) {
    case 'run.started':
      return 256 + payloadBytes(record.input);
    case 'step.started':
      return 256 + payloadBytes(record.request);
    case 'step.finished':
      return 256 + payloadBytes(record.response);
    case 'run.finished':
      return 256 + payloadBytes(record.output);
  }
}

/** A blob to write: its bytes under their hash. */
interface Blob {
  hash: BlobHash;
  bytes: Buffer;
}

/** A payload made ready to store: its blob, reference, content hash, and the parts it points to. */
interface Materialized {
  ref: BlobRef;
  /** sha256 of the canonical JSON with parts inlined (without `raw` for requests). */
  contentHash: BlobHash;
  blob: Blob;
  parts: Part[];
}

/**
 * Bytes of parts hashed during the current batch, so a part that must be written is not encoded
 * twice. Parts are interned across requests (split.ts), so a message resent on every call is
 * hashed once per process, not once per request.
 */
let batchPartBytes = new Map<Part, Buffer>();

function partHash(part: Part): BlobHash {
  if (part.hash === undefined) {
    const bytes = Buffer.from(part.text, 'utf8');
    part.hash = sha256(bytes);
    batchPartBytes.set(part, bytes);
  }
  return part.hash as BlobHash;
}

function partBlob(part: Part): Blob {
  const hash = partHash(part);
  return { hash, bytes: batchPartBytes.get(part) ?? Buffer.from(part.text, 'utf8') };
}

function inlineHash(body: string | Piece[]): BlobHash {
  if (typeof body === 'string') return sha256(body);
  // one native call on the joined text costs less than an update() per piece (~25% here)
  let text = '';
  for (const piece of body) text += typeof piece === 'string' ? piece : piece.text;
  return sha256(text);
}

function materialize(payload: Payload): Materialized {
  if (typeof payload === 'string') {
    const bytes = Buffer.from(payload, 'utf8');
    const hash = sha256(bytes);
    return { blob: { hash, bytes }, ref: { hash, size: bytes.length }, contentHash: hash, parts: [] };
  }
  const body = payload.body;
  let text = '';
  let parts: Part[] = [];
  if (typeof body === 'string') {
    text = body;
  } else {
    const seen = new Set<string>();
    for (const piece of body) {
      if (typeof piece === 'string') {
        text += piece;
        continue;
      }
      const hash = partHash(piece);
      text += `{"$blob":"${hash}"}`;
      if (!seen.has(hash)) {
        seen.add(hash);
        parts.push(piece);
      }
    }
  }
  const bytes = Buffer.from(text, 'utf8');
  const hash = sha256(bytes);
  const ref: BlobRef = { hash, size: bytes.length };
  if (parts.length > 0) ref.parts = parts.map((part) => part.hash as BlobHash);
  else parts = [];
  const contentHash =
    payload.hashBody !== undefined
      ? inlineHash(payload.hashBody)
      : typeof body === 'string'
        ? hash
        : inlineHash(body);
  return { blob: { hash, bytes }, ref, contentHash, parts };
}

function errorInfo(captured: CapturedError): ErrorInfo {
  const info: ErrorInfo = { type: captured.type.slice(0, 200) || 'Error', message: captured.message };
  if (captured.status !== undefined) info.status = captured.status;
  const source = captured.source;
  if (source instanceof Error) {
    try {
      const stack = source.stack;
      if (typeof stack === 'string' && stack !== '') info.stack = stack.slice(0, MAX_STACK);
    } catch {
      // a throwing stack getter: no stack
    }
  }
  return info;
}

function isAttributeValue(value: unknown): value is AttributeValue {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value);
    case 'object':
      return (
        value === null ||
        (Array.isArray(value) &&
          value.every((item) => ['string', 'boolean'].includes(typeof item) || Number.isFinite(item)))
      );
    default:
      return false;
  }
}

/** Keeps only the attributes the schema accepts (flat scalars and arrays of scalars). */
export function cleanAttributes(attributes: Attributes | undefined): Attributes | undefined {
  if (attributes === undefined || attributes === null || typeof attributes !== 'object') return undefined;
  let clean: Attributes | undefined;
  for (const [key, value] of Object.entries(attributes)) {
    if (!isAttributeValue(value)) continue;
    clean ??= {};
    clean[key] = value;
  }
  return clean;
}

export class Pipeline {
  readonly #options: PipelineOptions;
  readonly #reporter: Reporter;
  readonly #sink: Sink;
  readonly #maxQueue: number;
  readonly #maxBytes: number;
  readonly #batchSize: number;
  #queue: CaptureRecord[] = [];
  /** The bytes each queued record was charged with, in queue order. */
  #sizes: number[] = [];
  #queuedBytes = 0;
  #scheduled = false;
  #draining = false;
  /** Blob hashes this process has stored: never written twice. */
  readonly #known = new Set<string>();
  #knownSince = performanceNow();
  #waiters: Waiter[] = [];
  #produced = 0;
  #delivered = 0;
  #spooled = 0;
  #dropped = 0;
  /** Set when shutdown gave up on what was pending: late outcomes no longer count. */
  #abandoned = false;
  #accepting = true;

  constructor(options: PipelineOptions) {
    this.#options = options;
    this.#reporter = options.reporter;
    this.#maxQueue = options.maxQueueSize ?? 100_000;
    this.#maxBytes = options.maxQueueBytes ?? 64 * 1024 * 1024;
    this.#batchSize = options.batchSize ?? 1000;
    const store = options.store;
    this.#sink =
      options.sink ??
      new StoreSink(
        store ?? (() => Promise.reject(new Error('no store was given'))),
        options.reporter,
        options.blobConcurrency,
      );
    this.#sink.attach?.({
      unspooled: (delivered, dropped) => {
        if (this.#abandoned) return;
        this.#spooled -= delivered + dropped;
        this.#delivered += delivered;
        this.#dropped += dropped;
        this.#notify();
      },
      backlog: () => Math.max(this.#queue.length / this.#maxQueue, this.#queuedBytes / this.#maxBytes),
    });
  }

  /** Where batches go, for messages. */
  get location(): string {
    return this.#sink.location;
  }

  get accepting(): boolean {
    return this.#accepting;
  }

  /** The recorder's reporter (capture problems of this pipeline's runs go there). */
  get reporter(): Reporter {
    return this.#reporter;
  }

  stats(): CaptureStats {
    const produced = this.#produced;
    const delivered = this.#delivered;
    const spooled = this.#spooled;
    const dropped = this.#dropped;
    return { produced, delivered, spooled, dropped, pending: produced - delivered - spooled - dropped };
  }

  /** The hot path: O(1), never throws, never blocks. */
  push(record: CaptureRecord): void {
    this.#produced++;
    if (!this.#accepting) {
      this.#dropped++;
      return;
    }
    const bytes = recordBytes(record);
    if (this.#queue.length >= this.#maxQueue || this.#queuedBytes + bytes > this.#maxBytes) {
      this.#dropped++;
      this.#reporter.report(
        'queue_full',
        `the capture queue is full (${this.#queue.length} events, ${this.#queuedBytes} bytes): events are being dropped and counted; the store is slower than the agent (raise maxQueueSize/maxQueueBytes, or check the store)`,
      );
      return;
    }
    this.#queuedBytes += bytes;
    this.#queue.push(record);
    this.#sizes.push(bytes);
    // past half full: a sink that can spool stops waiting on the network
    if (this.#queue.length * 2 >= this.#maxQueue || this.#queuedBytes * 2 >= this.#maxBytes)
      this.#sink.pressure?.();
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled || this.#draining) return;
    this.#scheduled = true;
    outsideRuns(() => setImmediate(() => this.#drain()));
  }

  async #drain(): Promise<void> {
    this.#scheduled = false;
    if (this.#draining) return;
    this.#draining = true;
    // A sink may take several batches at once (the exporter: requests in flight while the next
    // batch is built); a further batch is started only when a full one is waiting, so that a
    // trickle of records still goes out in large batches.
    const limit = Math.max(1, this.#sink.concurrency ?? 1);
    const inflight = new Set<Promise<void>>();
    try {
      while (!this.#abandoned) {
        if (inflight.size > 0 && (inflight.size >= limit || this.#queue.length < this.#batchSize)) {
          await Promise.race(inflight);
          this.#notify();
          continue;
        }
        if (this.#queue.length === 0) break;
        const delivery: Promise<void> = this.#deliver(this.#take())
          .catch((error: unknown) => {
            this.#reporter.report('internal', `capture pipeline failed: ${messageOf(error)}`, error);
          })
          .finally(() => inflight.delete(delivery));
        inflight.add(delivery);
      }
      // (abandoned: late outcomes are ignored, but the writes are still waited for)
      if (inflight.size > 0) await Promise.all(inflight);
    } catch (error) {
      this.#reporter.report('internal', `capture pipeline failed: ${messageOf(error)}`, error);
    } finally {
      this.#draining = false;
      if (this.#queue.length > 0 && !this.#abandoned) this.#schedule();
      this.#notify();
    }
  }

  #take(): CaptureRecord[] {
    let batch: CaptureRecord[];
    if (this.#queue.length <= this.#batchSize) {
      batch = this.#queue;
      this.#queue = [];
      this.#sizes = [];
      this.#queuedBytes = 0;
    } else {
      batch = this.#queue.splice(0, this.#batchSize);
      for (const bytes of this.#sizes.splice(0, this.#batchSize)) this.#queuedBytes -= bytes;
    }
    return batch;
  }

  #count(delivered: number, dropped: number, spooled = 0): void {
    if (this.#abandoned) return;
    this.#delivered += delivered;
    this.#dropped += dropped;
    this.#spooled += spooled;
  }

  async #deliver(batch: CaptureRecord[]): Promise<void> {
    batchPartBytes = new Map();
    if (performanceNow() - this.#knownSince > KNOWN_MAX_AGE_MS) {
      this.#known.clear();
      this.#knownSince = performanceNow();
    }
    const events: RewindEvent[] = [];
    /** The blobs each event references (its payloads and their parts). */
    const uses: BlobHash[][] = [];
    const blobs = new Map<BlobHash, Buffer>();
    let failedToBuild = 0;
    for (const record of batch) {
      try {
        const used: Materialized[] = [];
        const event = this.#event(record, used);
        const hashes: BlobHash[] = [];
        for (const item of used) {
          for (const part of item.parts) {
            const hash = part.hash as BlobHash;
            hashes.push(hash);
            if (!this.#known.has(hash) && !blobs.has(hash)) blobs.set(hash, partBlob(part).bytes);
          }
          const hash = item.blob.hash;
          hashes.push(hash);
          if (!this.#known.has(hash) && !blobs.has(hash)) blobs.set(hash, item.blob.bytes);
        }
        events.push(event);
        uses.push(hashes);
      } catch (error) {
        failedToBuild++;
        this.#reporter.report('internal', `could not build an event: ${messageOf(error)}`, error);
      }
    }
    if (failedToBuild > 0) this.#count(0, failedToBuild);
    if (events.length === 0) return;
    let outcome: Awaited<ReturnType<Sink['write']>>;
    try {
      outcome = await this.#sink.write({ events, uses, blobs });
    } catch (error) {
      // sinks never reject; if one does, its events are lost, and said so
      this.#reporter.report('internal', `capture pipeline failed: ${messageOf(error)}`, error);
      outcome = { delivered: 0, dropped: events.length, spooled: 0, stored: [] };
    }
    this.#remember(outcome.stored);
    this.#count(outcome.delivered, outcome.dropped, outcome.spooled);
  }

  #remember(hashes: readonly BlobHash[]): void {
    const known = this.#known;
    if (known.size + hashes.length > MAX_KNOWN_BLOBS) known.clear();
    for (const hash of hashes) known.add(hash);
  }

  /** A payload through the policy (unchanged without one). */
  #redact(payload: Payload, at: string, serialize: (value: unknown) => Payload, streamed = false): Payload {
    const redactor = this.#options.redactor;
    return redactor === undefined
      ? payload
      : redactPayload(redactor, payload, at, serialize, { streamed }).payload;
  }

  #error(captured: CapturedError, at: string): ErrorInfo {
    const info = errorInfo(captured);
    const redactor = this.#options.redactor;
    return redactor === undefined ? info : redactError(redactor, info, at);
  }

  #attributes(attributes: Attributes | undefined, at: string): Attributes | undefined {
    const redactor = this.#options.redactor;
    if (redactor === undefined || attributes === undefined || attributes === null)
      return cleanAttributes(attributes);
    return cleanAttributes(redactAttributes(redactor, attributes, at));
  }

  #event(record: CaptureRecord, used: Materialized[]): RewindEvent {
    const time = isoTimeOf(record.mono);
    const eventId = uuidv7(epochMsOf(record.mono));
    switch (record.type) {
      case 'run.started': {
        const input = materialize(this.#redact(record.input, 'run.input', serializePlain));
        used.push(input);
        const event: RunStarted = {
          schemaVersion: 1,
          eventId,
          type: 'run.started',
          runId: record.runId,
          time,
          agent: record.agent,
          input: input.ref,
          sdk: this.#options.sdk,
        };
        const attributes = this.#attributes(record.attributes, 'run.attributes');
        if (attributes !== undefined) event.attributes = attributes;
        return event;
      }
      case 'step.started': {
        const serialize = requestSerializer(record.kind);
        const request = materialize(
          this.#redact(record.request, stepAt(record.kind, record.name, 'request'), serialize),
        );
        used.push(request);
        const event: StepStarted = {
          schemaVersion: 1,
          eventId,
          type: 'step.started',
          runId: record.runId,
          time,
          stepId: record.stepId,
          seq: record.seq,
          parentStepId: record.parentStepId,
          kind: record.kind,
          name: record.name,
          callKey: record.callKey,
          request: request.ref,
          requestHash: request.contentHash,
        };
        const attributes = this.#attributes(
          record.attributes,
          stepAt(record.kind, record.name, 'attributes'),
        );
        if (attributes !== undefined) event.attributes = attributes;
        return event;
      }
      case 'step.finished': {
        const response =
          record.response === undefined
            ? undefined
            : materialize(
                this.#redact(
                  record.response,
                  stepAt(record.kind, record.name, 'response'),
                  responseSerializer(record.kind),
                  record.kind === 'model',
                ),
              );
        if (response !== undefined) used.push(response);
        const base = {
          schemaVersion: 1 as const,
          eventId,
          type: 'step.finished' as const,
          runId: record.runId,
          time,
          stepId: record.stepId,
          label: 'recorded' as const,
        };
        let event: StepFinished;
        if (record.status === 'ok') {
          const ok = response ?? materialize('null');
          if (response === undefined) used.push(ok);
          event = { ...base, status: 'ok', response: ok.ref, responseHash: ok.contentHash };
        } else {
          event = {
            ...base,
            status: 'error',
            error: this.#error(
              record.error ?? { type: 'Error', message: '' },
              stepAt(record.kind, record.name, 'error'),
            ),
          };
          if (response !== undefined) {
            event.response = response.ref;
            event.responseHash = response.contentHash;
          }
        }
        if (record.usage !== undefined) event.usage = record.usage;
        if (record.stream !== undefined)
          event.stream = { chunks: record.stream.offsetsMs.length, offsetsMs: record.stream.offsetsMs };
        return event;
      }
      case 'run.finished': {
        const base = {
          schemaVersion: 1 as const,
          eventId,
          type: 'run.finished' as const,
          runId: record.runId,
          time,
          counts: { steps: record.steps, errors: record.errors },
        };
        let event: RunFinished;
        if (record.status === 'ok') {
          const output = materialize(this.#redact(record.output ?? 'null', 'run.output', serializePlain));
          used.push(output);
          event = { ...base, status: 'ok', output: output.ref };
        } else if (record.status === 'error') {
          event = {
            ...base,
            status: 'error',
            error: this.#error(record.error ?? { type: 'Error', message: '' }, 'run.error'),
          };
        } else {
          event = { ...base, status: 'cancelled' };
          if (record.error !== undefined) event.error = this.#error(record.error, 'run.error');
        }
        if (record.tape !== undefined) {
          const tape = materialize(canonical(record.tape.toJSON()));
          used.push(tape);
          event.tape = tape.ref;
        }
        return event;
      }
    }
  }

  /**
   * Resolves once every record produced before the call is delivered or dropped, or when the
   * deadline passes (never rejects). A sink that spools (the exporter) spools what it has not
   * delivered shortly before the deadline and then lets the flush end early, with `timedOut`.
   */
  flush(timeoutMs: number): Promise<FlushResult> {
    const target = this.#produced;
    if (this.#queue.length > 0) this.#schedule();
    return new Promise((resolve) => {
      let release: (() => void) | undefined;
      let timer: NodeJS.Timeout | undefined;
      const finish = (timedOut: boolean): void => {
        if (timer !== undefined) clearTimeout(timer);
        release?.();
        resolve({ ...this.stats(), done: !timedOut, timedOut });
      };
      if (this.#settled() >= target) {
        finish(false);
        return;
      }
      const waiter: Waiter = { target, cutoff: false, resolve: finish };
      this.#waiters.push(waiter);
      if (Number.isFinite(timeoutMs)) {
        const budget = Math.max(0, timeoutMs);
        release = this.#sink.flushing?.(performanceNow() + budget, () => {
          waiter.cutoff = true;
          this.#notify();
        });
        timer = outsideRuns(() =>
          setTimeout(() => {
            this.#waiters = this.#waiters.filter((other) => other !== waiter);
            finish(true);
          }, budget),
        );
      } else {
        release = this.#sink.flushing?.(Number.POSITIVE_INFINITY, () => {});
      }
    });
  }

  #settled(): number {
    return this.#delivered + this.#dropped;
  }

  #notify(): void {
    if (this.#waiters.length === 0) return;
    const settled = this.#settled();
    const still: Waiter[] = [];
    for (const waiter of this.#waiters) {
      if (settled >= waiter.target) waiter.resolve(false);
      else if (waiter.cutoff && settled + this.#spooled >= waiter.target) waiter.resolve(true);
      else still.push(waiter);
    }
    this.#waiters = still;
  }

  /** Stops accepting records (later ones are dropped and counted). */
  stop(): void {
    this.#accepting = false;
  }

  /** Gives up on everything still pending: it is counted as dropped, and late outcomes are ignored. */
  abandon(): number {
    const pending = this.stats().pending;
    this.#dropped += pending;
    this.#abandoned = true;
    this.#queue = [];
    this.#sizes = [];
    this.#queuedBytes = 0;
    this.#notify();
    return pending;
  }

  /** Closes the sink (the store, or the exporter's connections and spool). */
  close(): Promise<void> {
    return this.#sink.close();
  }
}
