import type { BlobHash } from '@rewind/schema';
import type { AppendOutcome, BlobStore } from '@rewind/store';
import type { Metrics } from './metrics.ts';

// The `rewind_pending_artifacts` gauge, kept cheap: after a batch is stored, the blob references
// of its accepted events are checked in the background (never on the request's path), at most
// CHECKS_PER_SECOND hashes per second; references over that budget are skipped and counted. A hash
// found missing stays counted until it is uploaded through this process. It is a per-process
// indicator for alerts; `rewind doctor` (or GET /v1/runs/:id) gives the exact list.

const CHECKS_PER_SECOND = 200;
const MAX_TRACKED = 100_000;
const REF_FIELDS = ['input', 'output', 'tape', 'request', 'response'] as const;

export class PendingTracker {
  readonly #blobs: BlobStore;
  readonly #metrics: Metrics;
  readonly #pending = new Set<BlobHash>();
  #budget = CHECKS_PER_SECOND;
  #refilledAt = Date.now();
  #inFlight: Promise<void> | undefined;

  constructor(blobs: BlobStore, metrics: Metrics) {
    this.#blobs = blobs;
    this.#metrics = metrics;
  }

  /** Notes the references of the events accepted in a batch; returns at once. */
  accepted(events: readonly unknown[], outcomes: readonly AppendOutcome[]): void {
    const hashes: BlobHash[] = [];
    for (let i = 0; i < outcomes.length; i++) {
      if (outcomes[i]!.status !== 'accepted') continue;
      const event = events[i] as Record<string, unknown>;
      for (const field of REF_FIELDS) {
        const ref = event[field] as { hash?: BlobHash; parts?: BlobHash[] } | undefined;
        if (ref === undefined || ref === null || typeof ref.hash !== 'string') continue;
        hashes.push(ref.hash);
        if (Array.isArray(ref.parts)) hashes.push(...ref.parts);
      }
    }
    if (hashes.length === 0) return;
    const now = Date.now();
    this.#budget = Math.min(
      CHECKS_PER_SECOND,
      this.#budget + ((now - this.#refilledAt) / 1000) * CHECKS_PER_SECOND,
    );
    this.#refilledAt = now;
    if (this.#inFlight !== undefined || this.#budget < hashes.length) {
      this.#metrics.pendingChecksSkipped += hashes.length;
      return;
    }
    this.#budget -= hashes.length;
    this.#inFlight = this.#blobs
      .missing(hashes)
      .then((missing) => {
        for (const hash of missing) if (this.#pending.size < MAX_TRACKED) this.#pending.add(hash);
        this.#metrics.pendingArtifacts = this.#pending.size;
      })
      .catch(() => {
        this.#metrics.pendingChecksSkipped += hashes.length;
      })
      .finally(() => {
        this.#inFlight = undefined;
      });
  }

  stored(hash: BlobHash): void {
    if (this.#pending.delete(hash)) this.#metrics.pendingArtifacts = this.#pending.size;
  }

  /** Waits for the check in flight (tests, shutdown). */
  async settled(): Promise<void> {
    await this.#inFlight;
  }
}
