import { type BlobHash, blobHashOf } from '@rewind/schema';
import { BlobNotFoundError } from '@rewind/store';
import { readBody, requireMediaType } from '../body.ts';
import type { Handler, ServerContext } from '../context.ts';
import { withStore } from '../context.ts';
import { badRequest, HttpError, notFound } from '../http-error.ts';
import { isPlainObject, readJson } from '../json-body.ts';
import { blobRejection } from '../redaction.ts';

// The blob routes. The hash in a path must be exactly 64 lowercase hex digits (checked on the raw,
// undecoded path segment), so a path can only ever name a blob: nothing like `..` or `%2e%2e`
// reaches the blob store. Every upload is re-hashed here before it is stored.

const HEX = /^[0-9a-f]{64}$/;
const HASH = /^sha256:[0-9a-f]{64}$/;
const FRAME_HEADER = 71; // "sha256:" + 64 hex
const BATCH_MEDIA_TYPE = 'application/vnd.rewind.blobs';

function hashParam(raw: string): BlobHash {
  if (!HEX.test(raw)) {
    throw badRequest(
      'invalid_hash',
      `'${raw.slice(0, 80)}' is not a blob hash: the path must be /v1/blobs/sha256/<64 lowercase hex digits>`,
    );
  }
  return `sha256:${raw}` as BlobHash;
}

/** Answers 404 for a blob the store lacks; other failures are the store's. */
async function blobRead<T>(context: ServerContext, hash: BlobHash, read: () => Promise<T>): Promise<T> {
  return withStore(context, async () => {
    try {
      return await read();
    } catch (error) {
      if (BlobNotFoundError.isInstance(error)) throw notFound(`blob ${hash} is not stored`);
      throw error;
    }
  });
}

export const putBlob: Handler = async (context, { req, rawParams }) => {
  const hash = hashParam(rawParams[0]!);
  // Any Content-Type is taken: a blob is bytes, whatever the client calls them.
  const bytes = await readBody(req, context.limits.maxBlobBytes, 'the blob');
  const actual = blobHashOf(bytes);
  if (actual !== hash) {
    throw badRequest(
      'hash_mismatch',
      `the body hashes to ${actual}, not ${hash}: send the blob's exact bytes under their own hash`,
      {
        expected: hash,
        actual,
      },
    );
  }
  const refused = blobRejection(context.redactor, bytes);
  if (refused !== undefined) {
    const colon = refused.indexOf(':');
    throw new HttpError(422, refused.slice(0, colon), refused.slice(colon + 2), { details: { hash } });
  }
  const existed = await withStore(context, async () => {
    if (await context.store.blobs.has(hash)) return true;
    await context.store.blobs.putVerified(hash, bytes);
    return false;
  });
  if (!existed) context.metrics.blobBytes += bytes.length;
  context.pending.stored(hash);
  return { status: existed ? 200 : 201, json: { hash, size: bytes.length } };
};

export const headBlob: Handler = async (context, { rawParams }) => {
  const hash = hashParam(rawParams[0]!);
  const stat = await withStore(context, () => context.store.blobs.stat(hash));
  if (stat === undefined) return { status: 404 };
  return {
    status: 200,
    headers: { 'Content-Length': stat.size, 'Content-Type': 'application/octet-stream' },
  };
};

export const getBlob: Handler = async (context, { rawParams }) => {
  const hash = hashParam(rawParams[0]!);
  const bytes = await blobRead(context, hash, () => context.store.blobs.get(hash));
  return { status: 200, body: bytes, contentType: 'application/octet-stream' };
};

/** POST /v1/blobs: frames of `sha256:<hex>`, a u32 BE length, then the bytes. */
export const postBlobs: Handler = async (context, { req }) => {
  requireMediaType(req, BATCH_MEDIA_TYPE, 'a blob batch');
  const { limits } = context;
  const body = await readBody(req, limits.maxBlobBatchBytes, 'the blob batch');
  const frames: { claimed: string; bytes: Uint8Array }[] = [];
  let offset = 0;
  while (offset < body.length) {
    const index = frames.length;
    if (index >= limits.maxBlobFrames) {
      throw new HttpError(
        413,
        'too_large',
        `the batch holds more than ${limits.maxBlobFrames} blobs: send smaller batches`,
        {
          details: { limit: limits.maxBlobFrames, unit: 'blobs' },
        },
      );
    }
    const malformed = (problem: string) =>
      badRequest('invalid_body', `blob frame ${index} (at byte ${offset}) ${problem}; nothing was stored`, {
        frame: index,
        offset,
      });
    if (body.length - offset < FRAME_HEADER + 4)
      throw malformed(
        'is truncated: a frame is "sha256:<64 hex>", a 4-byte big-endian length, then the bytes',
      );
    const claimed = body.toString('latin1', offset, offset + FRAME_HEADER);
    if (!HASH.test(claimed)) throw malformed('does not start with "sha256:" and 64 lowercase hex digits');
    const size = body.readUInt32BE(offset + FRAME_HEADER);
    const start = offset + FRAME_HEADER + 4;
    if (body.length - start < size)
      throw malformed(`announces ${size} bytes but only ${body.length - start} follow`);
    frames.push({ claimed, bytes: body.subarray(start, start + size) });
    offset = start + size;
  }
  const results: { hash: string; status: 'stored' | 'rejected'; reason?: string }[] = [];
  const good: Uint8Array[] = [];
  const goodHashes: BlobHash[] = [];
  for (const frame of frames) {
    const actual = blobHashOf(frame.bytes);
    const refused = actual === frame.claimed ? blobRejection(context.redactor, frame.bytes) : undefined;
    if (actual !== frame.claimed) {
      results.push({
        hash: frame.claimed,
        status: 'rejected',
        reason: `hash_mismatch: the bytes hash to ${actual}`,
      });
    } else if (refused !== undefined) {
      results.push({ hash: actual, status: 'rejected', reason: refused });
    } else {
      results.push({ hash: actual, status: 'stored' });
      good.push(frame.bytes);
      goodHashes.push(actual);
    }
  }
  if (good.length > 0) {
    // The hashes were computed just above from exactly these bytes: putMany may trust them.
    await withStore(context, () => context.store.blobs.putMany(good, { hashes: goodHashes }));
    for (let i = 0; i < good.length; i++) {
      context.metrics.blobBytes += good[i]!.length;
      context.pending.stored(goodHashes[i]!);
    }
  }
  return { status: 200, json: { results } };
};

export const postMissing: Handler = async (context, { req }) => {
  const { limits } = context;
  const body = await readJson(req, {
    maxBytes: limits.maxJsonBytes,
    maxDepth: limits.maxDepth,
    what: 'the hash list',
  });
  if (!isPlainObject(body) || !Array.isArray(body.hashes)) {
    throw badRequest('invalid_body', 'the body must be a JSON object {"hashes": ["sha256:<64 hex>", ...]}');
  }
  const hashes: unknown[] = body.hashes;
  if (hashes.length > limits.maxMissingHashes) {
    throw new HttpError(
      413,
      'too_large',
      `the list holds ${hashes.length} hashes, more than the limit of ${limits.maxMissingHashes}: ask in smaller lists`,
      {
        details: { limit: limits.maxMissingHashes, unit: 'hashes', count: hashes.length },
      },
    );
  }
  hashes.forEach((hash, index) => {
    if (typeof hash !== 'string' || !HASH.test(hash))
      throw badRequest(
        'invalid_body',
        `hashes[${index}] is not "sha256:" followed by 64 lowercase hex digits`,
        { index },
      );
  });
  const missing = await withStore(context, () => context.store.blobs.missing(hashes as BlobHash[]));
  return { status: 200, json: { missing } };
};
