import type { BlobHash } from '@rewind/schema';

// The content-addressed blob store (SPEC §7): blobs named by the sha256 of their bytes,
// written once (temp file, fsync, rename), zstd-compressed at rest, verified on every read.
// Small blobs stored together (putMany) share one file and compress together (docs/storage.md).

export interface BlobStat {
  hash: BlobHash;
  /** Uncompressed size in bytes. */
  size: number;
  /** When the blob was written (or last re-put), epoch ms; gc's grace period counts from here. */
  writtenAt: number;
}

export interface VerifyReport {
  /** Stored copies re-hashed. */
  checked: number;
  /** Hashes with a copy that fails verification, sorted. */
  corrupt: BlobHash[];
  /** Pack files whose index cannot be read: the blobs in them are unreadable (and unknown). */
  damagedPacks: { path: string; reason: string }[];
}

export interface GcReport {
  /** Distinct hashes looked at. */
  scanned: number;
  deleted: BlobHash[];
  /** Unreferenced but younger than the grace period: kept for now. */
  keptInGrace: number;
  /**
   * Unreferenced and past the grace period, but in a pack whose other blobs are mostly live: kept
   * until enough of the pack is garbage for gc to rewrite it.
   */
  keptInPacks: number;
}

export interface PutManyOptions {
  /**
   * The hashes of `items`, in the same order, when the caller has computed them already (the
   * SDK does). They are TRUSTED: only in-process callers that computed them as the sha256 of
   * exactly these bytes may pass them; anything that takes bytes from elsewhere (the server) must
   * not, and uses putVerified or lets putMany hash. A wrong hash is not served as wrong content —
   * every read re-hashes and fails with BlobCorruptError, and `verify` reports it — but the
   * blob is then lost under that hash.
   */
  hashes?: readonly BlobHash[];
}

export interface BlobStore {
  readonly location: string;
  /** Stores bytes under their own hash and returns it. Idempotent. */
  put(bytes: Uint8Array): Promise<BlobHash>;
  /** Stores bytes that claim a hash; rejects with BlobHashMismatchError when they do not match. */
  putVerified(hash: BlobHash, bytes: Uint8Array): Promise<void>;
  /**
   * Stores many blobs; returns their hashes in input order. Idempotent. Everything is durable
   * when it resolves; it rejects when anything could not be stored (some may have been).
   */
  putMany(items: readonly Uint8Array[], options?: PutManyOptions): Promise<BlobHash[]>;
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
