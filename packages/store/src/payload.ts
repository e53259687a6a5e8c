import { type BlobHash, type BlobRef, isBlobPointer, RewindError } from '@rewind/schema';
import type { BlobStore } from './blob-store.ts';

export class PayloadError extends RewindError {
  override readonly name = 'PayloadError';
  readonly hash: BlobHash;
  constructor(hash: BlobHash, message: string, options?: { cause?: unknown }) {
    super('payload_unreadable', message, options);
    this.hash = hash;
  }
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/** Reads a JSON payload blob and inlines its `{"$blob": …}` parts, recursively. */
export async function readPayload(blobs: BlobStore, ref: BlobRef | BlobHash): Promise<unknown> {
  const hash = typeof ref === 'string' ? ref : ref.hash;
  const cache = new Map<BlobHash, unknown>();
  return inline(await readJsonBlob(blobs, hash), blobs, cache, new Set([hash]));
}

async function readJsonBlob(blobs: BlobStore, hash: BlobHash): Promise<unknown> {
  const bytes = await blobs.get(hash);
  try {
    return JSON.parse(decoder.decode(bytes));
  } catch (cause) {
    throw new PayloadError(hash, `blob ${hash} is not a JSON payload (${(cause as Error).message})`, {
      cause,
    });
  }
}

async function inline(
  value: unknown,
  blobs: BlobStore,
  cache: Map<BlobHash, unknown>,
  path: Set<BlobHash>,
): Promise<unknown> {
  if (typeof value !== 'object' || value === null) return value;
  if (isBlobPointer(value)) {
    const hash = value.$blob;
    if (path.has(hash)) throw new PayloadError(hash, `blob ${hash} refers to itself through its parts`);
    if (!cache.has(hash)) {
      const nested = new Set(path).add(hash);
      cache.set(hash, await inline(await readJsonBlob(blobs, hash), blobs, cache, nested));
    }
    return cache.get(hash);
  }
  if (Array.isArray(value)) return Promise.all(value.map((item) => inline(item, blobs, cache, path)));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) out[key] = await inline(item, blobs, cache, path);
  return out;
}
