// The bounds on what a client may send (docs/server.md "Limits"). Every one is answered with a
// clear 4xx (413 too_large, 400 too_deep), never by growing memory without bound.

export interface ServerLimits {
  /** Events in one POST /v1/events. */
  maxEvents: number;
  /** Decoded bytes of one POST /v1/events body (also the cap on its bytes on the wire). */
  maxEventBytes: number;
  /** JSON nesting depth of a request body (objects and arrays). */
  maxDepth: number;
  /** Bytes of one blob (PUT /v1/blobs/sha256/:hex), decoded. */
  maxBlobBytes: number;
  /** Frames in one POST /v1/blobs. */
  maxBlobFrames: number;
  /** Decoded bytes of one POST /v1/blobs body. */
  maxBlobBatchBytes: number;
  /** Hashes in one POST /v1/blobs/missing. */
  maxMissingHashes: number;
  /** Bytes of any other JSON request body (POST /v1/blobs/missing). */
  maxJsonBytes: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  maxEvents: 10_000,
  maxEventBytes: 16 * 2 ** 20,
  maxDepth: 64,
  maxBlobBytes: 64 * 2 ** 20,
  maxBlobFrames: 10_000,
  maxBlobBatchBytes: 64 * 2 ** 20,
  maxMissingHashes: 10_000,
  maxJsonBytes: 2 * 2 ** 20,
};

export function resolveLimits(limits: Partial<ServerLimits> | undefined): ServerLimits {
  const out = { ...DEFAULT_LIMITS };
  for (const [key, value] of Object.entries(limits ?? {}) as Array<[keyof ServerLimits, unknown]>) {
    if (value === undefined) continue;
    if (!(key in DEFAULT_LIMITS)) throw new TypeError(`unknown server limit '${key}'`);
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1)
      throw new TypeError(`server limit '${key}' must be a positive whole number, got ${String(value)}`);
    out[key] = value;
  }
  return out;
}
