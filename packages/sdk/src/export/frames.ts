import type { BlobHash } from '@rewind/schema';

// The body of `POST /v1/blobs` (docs/api.md; `application/vnd.rewind.blobs`): frames, each the
// 71 ASCII bytes `sha256:<64 hex>`, a 4-byte big-endian uint32 length, then that many bytes.

export const BLOB_FRAMES_TYPE = 'application/vnd.rewind.blobs';
const HASH_BYTES = 71;
const HEADER_BYTES = HASH_BYTES + 4;

export function frameBytes(size: number): number {
  return HEADER_BYTES + size;
}

export function encodeBlobFrames(blobs: Iterable<readonly [BlobHash, Uint8Array]>): Buffer {
  const list = [...blobs];
  let total = 0;
  for (const [, bytes] of list) total += frameBytes(bytes.length);
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  for (const [hash, bytes] of list) {
    if (hash.length !== HASH_BYTES) throw new TypeError(`not a blob hash: ${hash}`);
    at += out.write(hash, at, 'latin1');
    at = out.writeUInt32BE(bytes.length, at);
    out.set(bytes, at);
    at += bytes.length;
  }
  return out;
}

/** Decodes frames; throws on a truncated or malformed stream (the blobs before it are returned in `ok`). */
export function decodeBlobFrames(body: Buffer): { blobs: Array<[BlobHash, Buffer]>; error?: string } {
  const blobs: Array<[BlobHash, Buffer]> = [];
  let at = 0;
  while (at < body.length) {
    if (body.length - at < HEADER_BYTES) return { blobs, error: `truncated frame header at byte ${at}` };
    const hash = body.toString('latin1', at, at + HASH_BYTES);
    if (!/^sha256:[0-9a-f]{64}$/.test(hash)) return { blobs, error: `malformed hash at byte ${at}` };
    const size = body.readUInt32BE(at + HASH_BYTES);
    const start = at + HEADER_BYTES;
    if (body.length - start < size) return { blobs, error: `truncated frame at byte ${at}` };
    blobs.push([hash as BlobHash, body.subarray(start, start + size)]);
    at = start + size;
  }
  return { blobs };
}
