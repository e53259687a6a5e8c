import type { BlobHash } from './events.ts';
import { isBlobHash } from './hash.ts';
import { isPlainObject } from './shape.ts';

// A payload may be split into content-addressed parts so that repeated content (a conversation
// resent on every model call) is stored once: any object `{"$blob": "sha256:…"}` inside a JSON
// payload stands for the JSON value stored under that hash. Readers inline the parts.

export interface BlobPointer {
  $blob: BlobHash;
}

export function isBlobPointer(value: unknown): value is BlobPointer {
  return isPlainObject(value) && isBlobHash(value.$blob) && Object.keys(value).length === 1;
}

export function blobPointer(hash: BlobHash): BlobPointer {
  return { $blob: hash };
}
