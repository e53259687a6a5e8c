import { createHash, hash } from 'node:crypto';
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

// The background half of capture (docs/sdk.md, "Pipeline"). The hot path pushes records onto a
// bounded in-memory queue; a drain scheduled with setImmediate (once per burst, outside any
// run's context) turns them into events and blobs in batches: it hashes payloads, writes the
// blobs the process has not written yet with one `putMany` (small ones land in one pack, which
// appears atomically), then appends the batch's events in one call. Blobs are always written
// before the events that reference them.
//
// Accounting: every record pushed is `produced` and ends up exactly once as `delivered` (the
// store accepted it, or already had it) or `dropped` (queue full, store failing, rejected,
// abandoned at a shutdown deadline); until then it is `pending`. So produced = delivered +
// dropped + pending, always.

export interface CaptureStats {
  produced: number;
  delivered: number;
  dropped: number;
  pending: number;
}

export interface FlushResult extends CaptureStats {
  /** Every event produced before the call was delivered or dropped in time. */
  done: boolean;
  /** The deadline passed with events still pending. */
  timedOut: boolean;
}

export interface PipelineOptions {
  /** The store, or how to open it (called once, on the first drain). */
  store: Store | (() => Promise<Store>);
  reporter: Reporter;
  /** Records held in memory at most (default 100 000). */
  maxQueueSize?: number;
  /** Payload bytes held in memory at most (default 64 MiB). */
  maxQueueBytes?: number;
  /** Records per store append (default 1000). */
  batchSize?: number;
  /** Blob writes in flight at once, for a blob store without putMany (default 16). */
  blobConcurrency?: number;
  sdk: { name: string; version: string };
}

interface Waiter {
  target: number;
  resolve: () => void;
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
  const hasher = createHash('sha256');
  for (const piece of body) hasher.update(typeof piece === 'string' ? piece : piece.text);
  return `sha256:${hasher.digest('hex')}`;
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
  readonly #maxQueue: number;
  readonly #maxBytes: number;
  readonly #batchSize: number;
  readonly #concurrency: number;
  #queue: CaptureRecord[] = [];
  /** The bytes each queued record was charged with, in queue order. */
  #sizes: number[] = [];
  #queuedBytes = 0;
  #scheduled = false;
  #draining = false;
  #store: Store | undefined;
  #storeFailed = false;
  /** Blob hashes this process has written to the store: never written twice. */
  readonly #known = new Set<string>();
  #knownSince = performanceNow();
  #waiters: Waiter[] = [];
  #produced = 0;
  #delivered = 0;
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
    this.#concurrency = options.blobConcurrency ?? 16;
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
    const dropped = this.#dropped;
    return { produced, delivered, dropped, pending: produced - delivered - dropped };
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
    try {
      while (this.#queue.length > 0 && !this.#abandoned) {
        const batch = this.#take();
        await this.#deliver(batch);
        this.#notify();
      }
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

  async #openStore(): Promise<Store | undefined> {
    if (this.#store !== undefined) return this.#store;
    if (this.#storeFailed) return undefined;
    const source = this.#options.store;
    try {
      this.#store = typeof source === 'function' ? await source() : source;
      return this.#store;
    } catch (error) {
      this.#storeFailed = true;
      this.#reporter.report(
        'store_failed',
        `cannot open the Rewind store: ${messageOf(error)}; runs are not recorded (the agent is not affected)`,
        error,
      );
      return undefined;
    }
  }

  #count(delivered: number, dropped: number): void {
    if (this.#abandoned) return;
    this.#delivered += delivered;
    this.#dropped += dropped;
  }

  async #deliver(batch: CaptureRecord[]): Promise<void> {
    const store = await this.#openStore();
    if (store === undefined) {
      this.#count(0, batch.length);
      return;
    }
    batchPartBytes = new Map();
    if (performanceNow() - this.#knownSince > KNOWN_MAX_AGE_MS) {
      this.#known.clear();
      this.#knownSince = performanceNow();
    }
    const events: RewindEvent[] = [];
    /** The payloads each event references (its blobs and their parts). */
    const uses: Materialized[][] = [];
    const blobs = new Map<string, Blob>();
    let failedToBuild = 0;
    for (const record of batch) {
      try {
        const used: Materialized[] = [];
        events.push(this.#event(record, used));
        uses.push(used);
        for (const item of used) {
          for (const part of item.parts) {
            const hash = part.hash!;
            if (!this.#known.has(hash) && !blobs.has(hash)) blobs.set(hash, partBlob(part));
          }
          const hash = item.blob.hash;
          if (!this.#known.has(hash) && !blobs.has(hash)) blobs.set(hash, item.blob);
        }
      } catch (error) {
        failedToBuild++;
        this.#reporter.report('internal', `could not build an event: ${messageOf(error)}`, error);
      }
    }
    if (failedToBuild > 0) this.#count(0, failedToBuild);
    const failed = await this.#putBlobs(store, blobs);
    let ready = events;
    if (failed.size > 0) {
      // An event whose blobs could not all be written is dropped: the store never holds an
      // event pointing at a payload it does not have.
      const missing = (item: Materialized): boolean =>
        failed.has(item.blob.hash) || item.parts.some((part) => failed.has(part.hash!));
      ready = events.filter((_, i) => !uses[i]!.some(missing));
    }
    const blobless = events.length - ready.length;
    if (blobless > 0) this.#count(0, blobless);
    if (ready.length === 0) return;
    try {
      const result = await store.append(ready);
      this.#count(result.accepted + result.duplicates, result.rejected);
      if (result.rejected > 0) {
        const first = result.outcomes.find((outcome) => outcome.status === 'rejected');
        this.#reporter.report(
          'events_rejected',
          `the store rejected ${result.rejected} event(s)${first?.status === 'rejected' ? `: ${first.reason}` : ''}`,
        );
      }
    } catch (error) {
      this.#count(0, ready.length);
      this.#reporter.report(
        'store_failed',
        `writing to the Rewind store failed: ${messageOf(error)}; events are dropped and counted (the agent is not affected)`,
        error,
      );
    }
  }

  /**
   * Writes the blobs with one `putMany` (the store packs the small ones into one file that
   * appears atomically, and is durable when the call resolves); returns the hashes that could not
   * be written. The hashes were computed here from these very bytes, so they are passed along
   * (trusted, see PutManyOptions) instead of being computed again. A store without putMany gets
   * one put per blob, `blobConcurrency` at a time, parts first (they come first in the map).
   */
  async #putBlobs(store: Store, blobs: Map<string, Blob>): Promise<Set<string>> {
    const failed = new Set<string>();
    if (blobs.size === 0) return failed;
    const entries = [...blobs.values()];
    const fail = (hashes: Iterable<string>, error: unknown): void => {
      for (const hash of hashes) failed.add(hash);
      this.#reporter.report(
        'store_failed',
        `writing a payload to the Rewind blob store failed: ${messageOf(error)}; events are dropped and counted (the agent is not affected)`,
        error,
      );
    };
    if (typeof store.blobs.putMany === 'function') {
      try {
        const stored = await store.blobs.putMany(
          entries.map((blob) => blob.bytes),
          { hashes: entries.map((blob) => blob.hash) },
        );
        const wrong = entries.findIndex((blob, i) => stored[i] !== blob.hash);
        if (wrong >= 0)
          throw new Error(`the blob store named ${entries[wrong]!.hash} ${stored[wrong] ?? 'nothing'}`);
        this.#remember(entries);
      } catch (error) {
        fail(blobs.keys(), error);
      }
      return failed;
    }
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < entries.length) {
        const blob = entries[next++]!;
        try {
          const stored = await store.blobs.put(blob.bytes);
          if (stored !== blob.hash) throw new Error(`the blob store named ${blob.hash} ${stored}`);
          this.#remember([blob]);
        } catch (error) {
          fail([blob.hash], error);
        }
      }
    };
    const workers: Promise<void>[] = [];
    for (let i = Math.min(this.#concurrency, entries.length); i > 0; i--) workers.push(worker());
    await Promise.all(workers);
    return failed;
  }

  #remember(blobs: readonly Blob[]): void {
    const known = this.#known;
    if (known.size + blobs.length > MAX_KNOWN_BLOBS) known.clear();
    for (const blob of blobs) known.add(blob.hash);
  }

  #event(record: CaptureRecord, used: Materialized[]): RewindEvent {
    const time = isoTimeOf(record.mono);
    const eventId = uuidv7(epochMsOf(record.mono));
    switch (record.type) {
      case 'run.started': {
        const input = materialize(record.input);
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
        const attributes = cleanAttributes(record.attributes);
        if (attributes !== undefined) event.attributes = attributes;
        return event;
      }
      case 'step.started': {
        const request = materialize(record.request);
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
        const attributes = cleanAttributes(record.attributes);
        if (attributes !== undefined) event.attributes = attributes;
        return event;
      }
      case 'step.finished': {
        const response = record.response === undefined ? undefined : materialize(record.response);
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
            error: errorInfo(record.error ?? { type: 'Error', message: '' }),
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
          const output = materialize(record.output ?? 'null');
          used.push(output);
          event = { ...base, status: 'ok', output: output.ref };
        } else if (record.status === 'error') {
          event = {
            ...base,
            status: 'error',
            error: errorInfo(record.error ?? { type: 'Error', message: '' }),
          };
        } else {
          event = { ...base, status: 'cancelled' };
          if (record.error !== undefined) event.error = errorInfo(record.error);
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
   * deadline passes (never rejects).
   */
  flush(timeoutMs: number): Promise<FlushResult> {
    const target = this.#produced;
    if (this.#queue.length > 0) this.#schedule();
    return new Promise((resolve) => {
      const finish = (timedOut: boolean): void => {
        const stats = this.stats();
        resolve({ ...stats, done: !timedOut, timedOut });
      };
      if (this.#settled() >= target) {
        finish(false);
        return;
      }
      let timer: NodeJS.Timeout | undefined;
      const waiter: Waiter = {
        target,
        resolve: () => {
          if (timer !== undefined) clearTimeout(timer);
          finish(false);
        },
      };
      this.#waiters.push(waiter);
      if (Number.isFinite(timeoutMs)) {
        timer = outsideRuns(() =>
          setTimeout(
            () => {
              this.#waiters = this.#waiters.filter((other) => other !== waiter);
              finish(true);
            },
            Math.max(0, timeoutMs),
          ),
        );
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
      if (settled >= waiter.target) waiter.resolve();
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

  /** Closes the store. */
  async close(): Promise<void> {
    const store = this.#store;
    this.#store = undefined;
    if (store !== undefined) await store.close();
  }
}
