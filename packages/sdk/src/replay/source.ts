import type { BlobHash, RewindEvent } from '@rewind/schema';
import type { RunRecord, Store } from '@rewind/store';

// Where a replay reads its recording from. Small on purpose: a local Store now; an HTTP source
// over the server's `GET /v1/runs/:id/events` and `GET /v1/blobs/sha256/:hex` later, and a
// bundle file after that.

export interface RecordingSource {
  /** Where the recording is, for messages. */
  readonly location: string;
  getRun(runId: string): Promise<RunRecord | undefined>;
  /** The run's events in a stable order (run.started, steps by seq, run.finished). */
  readEvents(runId: string): Promise<RewindEvent[]>;
  /** A blob's exact bytes; undefined when the source does not have it. */
  getBlob(hash: BlobHash): Promise<Uint8Array | undefined>;
  /** Optional: the hashes the source lacks (lets replay check blobs it may never need to read). */
  missingBlobs?(hashes: readonly BlobHash[]): Promise<BlobHash[]>;
}

/** A RecordingSource over a local (or PostgreSQL-backed) Store. */
export function storeSource(store: Store): RecordingSource {
  return {
    location: store.location,
    getRun: (runId) => store.getRun(runId),
    readEvents: (runId) => store.readEvents(runId),
    async getBlob(hash) {
      try {
        return await store.blobs.get(hash);
      } catch (error) {
        if ((error as { code?: unknown }).code === 'blob_not_found') return undefined;
        throw error;
      }
    },
    missingBlobs: (hashes) => store.blobs.missing(hashes),
  };
}
