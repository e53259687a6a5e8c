import { type BlobHash, RewindError } from '@rewind/schema';

// Errors of the content-addressed blob store. Each carries the hash it is about; `isInstance`
// checks the stable `code`, so it works across copies of the package.

export class BlobNotFoundError extends RewindError {
  override readonly name = 'BlobNotFoundError';
  readonly hash: BlobHash;
  constructor(hash: BlobHash) {
    super(
      'blob_not_found',
      `blob ${hash} is not in the blob store; upload it again (the SDK re-sends pending blobs), or run \`rewind doctor\` to list the steps that still lack it`,
    );
    this.hash = hash;
  }
  static override isInstance(value: unknown): value is BlobNotFoundError {
    return RewindError.isInstance(value) && value.code === 'blob_not_found';
  }
}

export class BlobCorruptError extends RewindError {
  override readonly name = 'BlobCorruptError';
  readonly hash: BlobHash;
  /** The file (or s3:// object) whose content failed verification. */
  readonly path: string;
  constructor(hash: BlobHash, path: string, reason: string, options?: { cause?: unknown }) {
    super(
      'blob_corrupt',
      `blob ${hash} is corrupt in storage (${reason}) at ${path}; run \`rewind verify\` to find every damaged blob, then delete them and re-upload from the source or restore them from a backup`,
      options,
    );
    this.hash = hash;
    this.path = path;
  }
  static override isInstance(value: unknown): value is BlobCorruptError {
    return RewindError.isInstance(value) && value.code === 'blob_corrupt';
  }
}

export class BlobHashMismatchError extends RewindError {
  override readonly name = 'BlobHashMismatchError';
  /** The hash the caller claimed. */
  readonly hash: BlobHash;
  /** The hash of the bytes actually received. */
  readonly actual: BlobHash;
  constructor(hash: BlobHash, actual: BlobHash) {
    super(
      'blob_hash_mismatch',
      `the uploaded bytes hash to ${actual}, not to the claimed ${hash}; nothing was stored — send the blob's exact bytes (no re-encoding or compression) under the sha256 of those bytes`,
    );
    this.hash = hash;
    this.actual = actual;
  }
  static override isInstance(value: unknown): value is BlobHashMismatchError {
    return RewindError.isInstance(value) && value.code === 'blob_hash_mismatch';
  }
}

export class InvalidBlobHashError extends RewindError {
  override readonly name = 'InvalidBlobHashError';
  /** The rejected value, as given (possibly not a string). */
  readonly hash: unknown;
  constructor(hash: unknown) {
    const shown =
      typeof hash === 'string'
        ? JSON.stringify(hash.length > 80 ? `${hash.slice(0, 80)}…` : hash)
        : typeof hash;
    super(
      'invalid_blob_hash',
      `${shown} is not a blob hash; blob hashes are "sha256:" followed by 64 lowercase hex digits`,
    );
    this.hash = hash;
  }
  static override isInstance(value: unknown): value is InvalidBlobHashError {
    return RewindError.isInstance(value) && value.code === 'invalid_blob_hash';
  }
}

export class InvalidBlobLocationError extends RewindError {
  override readonly name = 'InvalidBlobLocationError';
  /** The location as given. */
  readonly location: string;
  constructor(location: string, problem: string) {
    super(
      'invalid_blob_location',
      `${JSON.stringify(location)} is not a usable blob location: ${problem}; use a directory or s3://<bucket>/<prefix> (e.g. s3://rewind-blobs/prod)`,
    );
    this.location = location;
  }
  static override isInstance(value: unknown): value is InvalidBlobLocationError {
    return RewindError.isInstance(value) && value.code === 'invalid_blob_location';
  }
}
