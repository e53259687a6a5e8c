import type { BlobHash } from '@rewind/schema';

// The content-addressed blob store (SPEC §7): blobs named by the sha256 of their bytes,
// written once (temp file, fsync, rename), zstd-compressed at rest, verified on every read.

export interface BlobStat {
  hash: BlobHash;
  /** Uncompressed size in bytes. */
  size: number;
  /** When the blob was written (or last re-put), epoch ms; gc's grace period counts from here. */
  writtenAt: number;
}

export interface VerifyReport {
  checked: number;
  corrupt: BlobHash[];
}

export interface GcReport {
  scanned: number;
  deleted: BlobHash[];
  /** Unreferenced but younger than the grace period: kept for now. */
  keptInGrace: number;
}

export interface BlobStore {
  readonly location: string;
  /** Stores bytes under their own hash and returns it. Idempotent. */
  put(bytes: Uint8Array): Promise<BlobHash>;
  /** Stores bytes that claim a hash; rejects with BlobHashMismatchError when they do not match. */
  putVerified(hash: BlobHash, bytes: Uint8Array): Promise<void>;
  /** The exact bytes; BlobNotFoundError when absent, BlobCorruptError when they fail verification. */
  get(hash: BlobHash): Promise<Uint8Array>;
  has(hash: BlobHash): Promise<boolean>;
  /** The subset of `hashes` not stored, in input order. */
  missing(hashes: readonly BlobHash[]): Promise<BlobHash[]>;
  stat(hash: BlobHash): Promise<BlobStat | undefined>;
  list(): AsyncIterable<BlobHash>;
  /** Re-hashes every blob. */
  verify(): Promise<VerifyReport>;
  /** Deletes blobs not in `referenced` whose writtenAt is older than `graceMs` (default 24 h). */
  gc(
    referenced: (hash: BlobHash) => boolean | Promise<boolean>,
    options?: { graceMs?: number; now?: number },
  ): Promise<GcReport>;
  close(): Promise<void>;
}
