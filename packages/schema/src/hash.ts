import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical-json.ts';
import type { BlobHash } from './events.ts';

const BLOB_HASH = /^sha256:[0-9a-f]{64}$/;

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The content address of some bytes: `sha256:<hex>`. */
export function blobHashOf(data: string | Uint8Array): BlobHash {
  return `sha256:${sha256Hex(data)}`;
}

/** The hash of a JSON value's canonical form: what request and response hashes are. */
export function jsonHash(value: unknown): BlobHash {
  return blobHashOf(canonicalJson(value));
}

export function isBlobHash(value: unknown): value is BlobHash {
  return typeof value === 'string' && BLOB_HASH.test(value);
}

/** The 64 hex digits of a blob hash, or undefined when it is not one. */
export function blobHashHex(hash: string): string | undefined {
  return BLOB_HASH.test(hash) ? hash.slice(7) : undefined;
}
