import type { BlobHash, RewindEvent } from '@rewind/schema';
import type { Store } from '@rewind/store';
import { messageOf, type Reporter } from './errors.ts';

// Where the pipeline's batches go (docs/sdk.md, "Pipeline"). The pipeline builds events and the
// blobs they reference; a sink makes them durable somewhere: the local store (StoreSink, below)
// or a Rewind server (HttpExporter, export/). A sink never throws: every event of a batch ends up
// delivered, dropped or spooled, and it says how many of each.

/** One batch of built events and the blobs they need. */
export interface SinkBatch {
  events: RewindEvent[];
  /** For each event (same index), the blobs it references: its payloads and their parts. */
  uses: BlobHash[][];
  /**
   * The bytes of the blobs the events use that are not known to be stored yet, in write order
   * (parts before the payloads that point to them). A blob used but absent here was stored by an
   * earlier batch.
   */
  blobs: Map<BlobHash, Buffer>;
}

export interface SinkOutcome {
  /** Events stored (or already there). */
  delivered: number;
  /** Events lost: counted and reported by the sink. */
  dropped: number;
  /** Events written to the local spool, to be delivered later (see SinkListener). */
  spooled: number;
  /** Blob hashes now known to be stored: the pipeline does not send them again. */
  stored: BlobHash[];
}

/** How a sink tells the pipeline that events it spooled earlier were delivered (or dropped) after all. */
export interface SinkListener {
  unspooled(delivered: number, dropped: number): void;
  /** How full the pipeline's queue is, 0 to 1 (by records or bytes, whichever is fuller). */
  backlog(): number;
}

export interface Sink {
  /** Where events go, for messages. */
  readonly location: string;
  /** Batches it may be given at once (default 1: one after the other). */
  readonly concurrency?: number;
  /** Never rejects. Blobs are stored before the events that reference them. */
  write(batch: SinkBatch): Promise<SinkOutcome>;
  /** The pipeline's queue is past half full (called on the hot path: must be O(1) and never throw). */
  pressure?(): void;
  /** Called once by the pipeline before the first write. */
  attach?(listener: SinkListener): void;
  /**
   * A flush started with this deadline (`performance.now()` ms; Infinity for none): deliver what
   * is spooled now, and shortly before the deadline spool whatever is not delivered yet, then
   * call `onCutoff` (waiting longer gains nothing). Returns the function to call when that flush
   * is over.
   */
  flushing?(deadline: number, onCutoff: () => void): () => void;
  close(): Promise<void>;
}

/** The local store as a sink: one `putMany` for the blobs, then one `append` for the events. */
export class StoreSink implements Sink {
  readonly #source: Store | (() => Promise<Store>);
  readonly #reporter: Reporter;
  readonly #concurrency: number;
  #store: Store | undefined;
  #failed = false;

  constructor(store: Store | (() => Promise<Store>), reporter: Reporter, blobConcurrency = 16) {
    this.#source = store;
    this.#reporter = reporter;
    this.#concurrency = blobConcurrency;
  }

  get location(): string {
    const source = this.#source;
    return typeof source === 'function' ? (this.#store?.location ?? 'the local store') : source.location;
  }

  async #open(): Promise<Store | undefined> {
    if (this.#store !== undefined) return this.#store;
    if (this.#failed) return undefined;
    const source = this.#source;
    try {
      this.#store = typeof source === 'function' ? await source() : source;
      return this.#store;
    } catch (error) {
      this.#failed = true;
      this.#reporter.report(
        'store_failed',
        `cannot open the Rewind store: ${messageOf(error)}; runs are not recorded (the agent is not affected)`,
        error,
      );
      return undefined;
    }
  }

  async write(batch: SinkBatch): Promise<SinkOutcome> {
    const { events, uses, blobs } = batch;
    const store = await this.#open();
    if (store === undefined) return { delivered: 0, dropped: events.length, spooled: 0, stored: [] };
    const { failed, stored } = await this.#putBlobs(store, blobs);
    let ready = events;
    if (failed.size > 0) {
      // An event whose blobs could not all be written is dropped: the store never holds an
      // event pointing at a payload it does not have.
      ready = events.filter((_, i) => !uses[i]!.some((hash) => failed.has(hash)));
    }
    const blobless = events.length - ready.length;
    if (ready.length === 0) return { delivered: 0, dropped: blobless, spooled: 0, stored };
    try {
      const result = await store.append(ready);
      if (result.rejected > 0) {
        const first = result.outcomes.find((outcome) => outcome.status === 'rejected');
        this.#reporter.report(
          'events_rejected',
          `the store rejected ${result.rejected} event(s)${first?.status === 'rejected' ? `: ${first.reason}` : ''}`,
        );
      }
      return {
        delivered: result.accepted + result.duplicates,
        dropped: blobless + result.rejected,
        spooled: 0,
        stored,
      };
    } catch (error) {
      this.#reporter.report(
        'store_failed',
        `writing to the Rewind store failed: ${messageOf(error)}; events are dropped and counted (the agent is not affected)`,
        error,
      );
      return { delivered: 0, dropped: events.length, spooled: 0, stored };
    }
  }

  /**
   * Writes the blobs with one `putMany` (the store packs the small ones into one file that
   * appears atomically, and is durable when the call resolves). The hashes were computed by the
   * pipeline from these very bytes, so they are passed along (trusted, see PutManyOptions)
   * instead of being computed again. A store without putMany gets one put per blob,
   * `blobConcurrency` at a time, parts first (they come first in the map).
   */
  async #putBlobs(
    store: Store,
    blobs: Map<BlobHash, Buffer>,
  ): Promise<{ failed: Set<BlobHash>; stored: BlobHash[] }> {
    const failed = new Set<BlobHash>();
    const stored: BlobHash[] = [];
    if (blobs.size === 0) return { failed, stored };
    const entries = [...blobs];
    const fail = (hashes: Iterable<BlobHash>, error: unknown): void => {
      for (const hash of hashes) failed.add(hash);
      this.#reporter.report(
        'store_failed',
        `writing a payload to the Rewind blob store failed: ${messageOf(error)}; events are dropped and counted (the agent is not affected)`,
        error,
      );
    };
    if (typeof store.blobs.putMany === 'function') {
      try {
        const named = await store.blobs.putMany(
          entries.map(([, bytes]) => bytes),
          { hashes: entries.map(([hash]) => hash) },
        );
        const wrong = entries.findIndex(([hash], i) => named[i] !== hash);
        if (wrong >= 0)
          throw new Error(`the blob store named ${entries[wrong]![0]} ${named[wrong] ?? 'nothing'}`);
        for (const [hash] of entries) stored.push(hash);
      } catch (error) {
        fail(blobs.keys(), error);
      }
      return { failed, stored };
    }
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < entries.length) {
        const [hash, bytes] = entries[next++]!;
        try {
          const named = await store.blobs.put(bytes);
          if (named !== hash) throw new Error(`the blob store named ${hash} ${named}`);
          stored.push(hash);
        } catch (error) {
          fail([hash], error);
        }
      }
    };
    const workers: Promise<void>[] = [];
    for (let i = Math.min(this.#concurrency, entries.length); i > 0; i--) workers.push(worker());
    await Promise.all(workers);
    return { failed, stored };
  }

  async close(): Promise<void> {
    const store = this.#store;
    this.#store = undefined;
    if (store !== undefined) await store.close();
  }
}
