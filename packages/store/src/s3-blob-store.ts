import { hash as digest } from 'node:crypto';
import type * as S3 from '@aws-sdk/client-s3';
import { type BlobHash, sha256Hex } from '@rewind/schema';
import { compress, decode, hexOf } from './blob-codec.ts';
import {
  BlobCorruptError,
  BlobHashMismatchError,
  BlobNotFoundError,
  InvalidBlobLocationError,
} from './blob-errors.ts';
import type { BlobStat, BlobStore, GcReport, PutManyOptions, VerifyReport } from './blob-store.ts';
import { forEachLimit } from './fs-util.ts';
import { StoreUnavailableError } from './store-errors.ts';

// The content-addressed blob store on an S3-compatible object store (SPEC §3 scale-out, §7).
//
//   s3://<bucket>/<prefix>/sha256/<64 hex>    one zstd frame of the blob's bytes, with the
//                                             uncompressed size as user metadata (rewind-size)
//
// S3 makes each PUT atomic and durable when it answers 200, so there are no temp files and no
// partial objects; there are no packs either (one object per blob: requests, not files, are what
// S3 charges for, and many small objects are what it is built for). Every read re-hashes, as on
// the filesystem. `writtenAt` is the object's LastModified, which a re-put (a new PUT of the same
// bytes) refreshes. gc's race with concurrent puts is narrower than on the filesystem and not
// closed: see docs/storage.md, "S3".
//
// @aws-sdk/client-s3 is imported lazily, when a store is opened, so that SQLite and PostgreSQL
// users with filesystem blobs never load it.

export interface S3BlobStoreOptions {
  /**
   * Where the AWS settings are read from (default process.env): AWS_ENDPOINT_URL_S3 or
   * AWS_ENDPOINT_URL (an S3-compatible server; path-style addressing is used then), AWS_REGION
   * or AWS_DEFAULT_REGION (default us-east-1), AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
   * AWS_SESSION_TOKEN (otherwise the SDK's default credential chain: profiles, instance roles…).
   */
  env?: Record<string, string | undefined>;
  /** zstd compression level (default 3). */
  level?: number;
  /** Requests in flight for putMany, missing, verify and gc (default 16). */
  concurrency?: number;
  /** Fault-injection points for tests; never set them in production. */
  hooks?: S3BlobStoreHooks;
}

export interface S3BlobStoreHooks {
  /** gc found `hash` unreferenced and past its grace period, and is about to look at it again. */
  beforeRecheck?(hash: BlobHash): void | Promise<void>;
}

export interface S3Location {
  bucket: string;
  /** Without leading or trailing slashes; empty for the bucket's root. */
  prefix: string;
}

// Anything starting with `s3:` is meant as S3 (`s3:/bucket`, `s3:bucket` are typos, reported by
// parseS3Location rather than taken for a directory named `s3:`).
const S3_URL = /^s3:/i;
// S3's bucket naming rules (general purpose buckets): 3–63 characters, lowercase letters,
// digits, dots and hyphens, beginning and ending with a letter or digit.
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const HEX64 = /^[0-9a-f]{64}$/;
const DAY_MS = 24 * 60 * 60 * 1000;
const SIZE_METADATA = 'rewind-size';

export function isS3Location(location: string): boolean {
  return S3_URL.test(location);
}

/** Parses `s3://bucket/prefix`; InvalidBlobLocationError says what is wrong with a malformed one. */
export function parseS3Location(location: string): S3Location {
  if (!/^s3:\/\//i.test(location))
    throw new InvalidBlobLocationError(location, 'it does not start with s3://');
  const rest = location.slice('s3://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash === -1 ? rest : rest.slice(0, slash);
  const prefix = (slash === -1 ? '' : rest.slice(slash + 1)).replace(/^\/+|\/+$/g, '');
  if (bucket === '') throw new InvalidBlobLocationError(location, 'it names no bucket');
  if (!BUCKET.test(bucket) || bucket.includes('..'))
    throw new InvalidBlobLocationError(
      location,
      `"${bucket}" is not a valid bucket name (3–63 characters: lowercase letters, digits, dots and hyphens, beginning and ending with a letter or digit)`,
    );
  if (
    prefix !== '' &&
    (/[?#]/.test(prefix) || prefix.split('/').some((part) => part === '' || part === '.' || part === '..'))
  )
    throw new InvalidBlobLocationError(
      location,
      `"${prefix}" is not a usable key prefix (no empty, "." or ".." segments, no "?" or "#")`,
    );
  return { bucket, prefix };
}

type S3Module = typeof S3;

export async function openS3BlobStore(
  location: string,
  options: S3BlobStoreOptions = {},
): Promise<S3BlobStore> {
  const parsed = parseS3Location(location);
  const env = options.env ?? process.env;
  const sdk: S3Module = await import('@aws-sdk/client-s3');
  const endpoint = nonEmpty(env.AWS_ENDPOINT_URL_S3) ?? nonEmpty(env.AWS_ENDPOINT_URL);
  const region = nonEmpty(env.AWS_REGION) ?? nonEmpty(env.AWS_DEFAULT_REGION) ?? 'us-east-1';
  const accessKeyId = nonEmpty(env.AWS_ACCESS_KEY_ID);
  const secretAccessKey = nonEmpty(env.AWS_SECRET_ACCESS_KEY);
  const sessionToken = nonEmpty(env.AWS_SESSION_TOKEN);
  const client = new sdk.S3Client({
    region,
    ...(endpoint === undefined ? {} : { endpoint, forcePathStyle: true }),
    ...(accessKeyId !== undefined && secretAccessKey !== undefined
      ? {
          credentials: {
            accessKeyId,
            secretAccessKey,
            ...(sessionToken === undefined ? {} : { sessionToken }),
          },
        }
      : {}),
    // Checksums only where S3 requires them: the content is verified end to end by its sha256
    // anyway, and several S3-compatible servers reject the newer checksum headers.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: { connectionTimeout: 5000, requestTimeout: 60_000 },
  });
  const store = new S3BlobStore(sdk, client, parsed, location, endpoint, options);
  try {
    await store.checkBucket();
  } catch (error) {
    client.destroy();
    throw error;
  }
  return store;
}

export class S3BlobStore implements BlobStore {
  readonly location: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly #sdk: S3Module;
  readonly #client: S3.S3Client;
  readonly #endpoint: string | undefined;
  readonly #level: number;
  readonly #concurrency: number;
  readonly #hooks: S3BlobStoreHooks;
  #closed = false;

  /** Use openS3BlobStore: it loads the AWS SDK and checks that the bucket is there. */
  constructor(
    sdk: S3Module,
    client: S3.S3Client,
    location: S3Location,
    display: string,
    endpoint: string | undefined,
    options: S3BlobStoreOptions,
  ) {
    this.location = display;
    this.bucket = location.bucket;
    this.prefix = location.prefix;
    this.#sdk = sdk;
    this.#client = client;
    this.#endpoint = endpoint;
    this.#level = options.level ?? 3;
    this.#concurrency = options.concurrency ?? 16;
    this.#hooks = options.hooks ?? {};
  }

  /** Fails with StoreUnavailableError, saying what to do, when the bucket cannot be used. */
  async checkBucket(): Promise<void> {
    const where = this.#endpoint === undefined ? 'AWS S3' : this.#endpoint;
    try {
      await this.#client.send(new this.#sdk.HeadBucketCommand({ Bucket: this.bucket }));
    } catch (error) {
      const status = statusOf(error);
      let message: string;
      if (status === 404)
        message = `the S3 bucket "${this.bucket}" does not exist at ${where}; create it (e.g. \`aws s3 mb s3://${this.bucket}\`) or point --blobs / $REWIND_BLOBS at an existing one`;
      else if (status === 403 || status === 401)
        message = `access to the S3 bucket "${this.bucket}" at ${where} was denied (HTTP ${status}); check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the AWS profile) and the bucket's policy`;
      else
        message = `cannot reach the S3 bucket "${this.bucket}" at ${where}: ${describe(error)}; check AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL and AWS_REGION, and that the server is running`;
      throw new StoreUnavailableError(this.location, message, { cause: error });
    }
  }

  async put(bytes: Uint8Array): Promise<BlobHash> {
    const hex = sha256Hex(bytes);
    await this.#write(hex, bytes);
    return `sha256:${hex}`;
  }

  async putVerified(hash: BlobHash, bytes: Uint8Array): Promise<void> {
    const hex = hexOf(hash);
    const actual = sha256Hex(bytes);
    if (actual !== hex) throw new BlobHashMismatchError(hash, `sha256:${actual}`);
    await this.#write(hex, bytes);
  }

  /** Writes every distinct blob (a PUT each, `concurrency` in flight); re-puts refresh LastModified. */
  async putMany(items: readonly Uint8Array[], options: PutManyOptions = {}): Promise<BlobHash[]> {
    const given = options.hashes;
    if (given !== undefined && given.length !== items.length)
      throw new RangeError(`putMany got ${items.length} blobs and ${given.length} hashes`);
    const hashes = new Array<BlobHash>(items.length);
    const unique = new Map<string, Uint8Array>();
    for (const [index, bytes] of items.entries()) {
      const hash: BlobHash = given === undefined ? `sha256:${digest('sha256', bytes, 'hex')}` : given[index]!;
      const hex = hexOf(hash);
      hashes[index] = hash;
      if (!unique.has(hex)) unique.set(hex, bytes);
    }
    await forEachLimit(unique, this.#concurrency, ([hex, bytes]) => this.#write(hex, bytes));
    return hashes;
  }

  async get(hash: BlobHash): Promise<Uint8Array> {
    const hex = hexOf(hash);
    const key = this.#keyOf(hex);
    let body: Uint8Array;
    try {
      const answer = await this.#client.send(
        new this.#sdk.GetObjectCommand({ Bucket: this.bucket, Key: key }),
      );
      body = (await answer.Body?.transformToByteArray()) ?? new Uint8Array(0);
    } catch (error) {
      if (isNotFound(error)) throw new BlobNotFoundError(hash);
      throw error;
    }
    return decode(hash, hex, this.#urlOf(key), Buffer.from(body.buffer, body.byteOffset, body.byteLength));
  }

  async has(hash: BlobHash): Promise<boolean> {
    return (await this.#head(hexOf(hash))) !== undefined;
  }

  async missing(hashes: readonly BlobHash[]): Promise<BlobHash[]> {
    const hexes = hashes.map(hexOf);
    const present = new Set<string>();
    await forEachLimit(new Set(hexes), this.#concurrency, async (hex) => {
      if ((await this.#head(hex)) !== undefined) present.add(hex);
    });
    return hashes.filter((_, index) => !present.has(hexes[index]!));
  }

  async stat(hash: BlobHash): Promise<BlobStat | undefined> {
    const hex = hexOf(hash);
    const head = await this.#head(hex);
    if (head === undefined) return undefined;
    const recorded = Number(head.Metadata?.[SIZE_METADATA]);
    // An object written by another tool carries no size: read it (verified) to learn it.
    const size =
      Number.isSafeInteger(recorded) && recorded >= 0 ? recorded : (await this.get(hash)).byteLength;
    return { hash, size, writtenAt: head.LastModified?.getTime() ?? 0 };
  }

  /** Every stored hash once, sorted (S3 lists keys in UTF-8 binary order, which is hex order here). */
  async *list(): AsyncIterable<BlobHash> {
    for await (const object of this.#objects()) yield `sha256:${object.hex}`;
  }

  async verify(): Promise<VerifyReport> {
    const corrupt: BlobHash[] = [];
    let checked = 0;
    await forEachLimit(this.list(), Math.min(this.#concurrency, 8), async (hash) => {
      try {
        await this.get(hash);
        checked++;
      } catch (error) {
        if (BlobNotFoundError.isInstance(error)) return; // deleted since it was listed
        if (!BlobCorruptError.isInstance(error)) throw error;
        checked++;
        corrupt.push(hash);
      }
    });
    return { checked, corrupt: corrupt.sort(), damagedPacks: [] };
  }

  /**
   * Deletes unreferenced blobs whose LastModified is older than the grace period. Each one is
   * looked at again (HEAD) right before its DELETE, so a re-put since the listing keeps it; a
   * re-put landing between that HEAD and the DELETE is lost (docs/storage.md, "S3").
   */
  async gc(
    referenced: (hash: BlobHash) => boolean | Promise<boolean>,
    options: { graceMs?: number; now?: number } = {},
  ): Promise<GcReport> {
    const graceMs = options.graceMs ?? DAY_MS;
    const now = options.now ?? Date.now();
    const report: GcReport = { scanned: 0, deleted: [], keptInGrace: 0, keptInPacks: 0 };
    await forEachLimit(this.#objects(), this.#concurrency, async ({ hex, lastModified }) => {
      report.scanned++;
      const hash: BlobHash = `sha256:${hex}`;
      if (await referenced(hash)) return;
      if (now - lastModified < graceMs) {
        report.keptInGrace++;
        return;
      }
      await this.#hooks.beforeRecheck?.(hash);
      const head = await this.#head(hex);
      if (head === undefined) return; // deleted meanwhile (another gc)
      if (
        now - (head.LastModified?.getTime() ?? 0) < graceMs ||
        head.LastModified!.getTime() > lastModified
      ) {
        report.keptInGrace++;
        return;
      }
      await this.#client.send(
        new this.#sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: this.#keyOf(hex) }),
      );
      report.deleted.push(hash);
    });
    report.deleted.sort();
    return report;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#client.destroy();
  }

  /** A PUT of the compressed bytes: creates the object, or refreshes its LastModified (same bytes). */
  async #write(hex: string, bytes: Uint8Array): Promise<void> {
    const body = await compress(bytes, this.#level);
    await this.#client.send(
      new this.#sdk.PutObjectCommand({
        Bucket: this.bucket,
        Key: this.#keyOf(hex),
        Body: body,
        ContentLength: body.byteLength,
        ContentType: 'application/zstd',
        Metadata: { [SIZE_METADATA]: String(bytes.byteLength) },
      }),
    );
  }

  async #head(hex: string): Promise<S3.HeadObjectCommandOutput | undefined> {
    try {
      return await this.#client.send(
        new this.#sdk.HeadObjectCommand({ Bucket: this.bucket, Key: this.#keyOf(hex) }),
      );
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async *#objects(): AsyncIterable<{ hex: string; lastModified: number }> {
    const base = this.#keyOf('');
    let token: string | undefined;
    do {
      const page = await this.#client.send(
        new this.#sdk.ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: base,
          ...(token === undefined ? {} : { ContinuationToken: token }),
        }),
      );
      for (const object of page.Contents ?? []) {
        const hex = object.Key?.slice(base.length);
        // Other keys under the prefix (not written by Rewind) are none of our business.
        if (hex === undefined || !HEX64.test(hex)) continue;
        yield { hex, lastModified: object.LastModified?.getTime() ?? 0 };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  #keyOf(hex: string): string {
    return this.prefix === '' ? `sha256/${hex}` : `${this.prefix}/sha256/${hex}`;
  }

  #urlOf(key: string): string {
    return `s3://${this.bucket}/${key}`;
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function statusOf(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}

function isNotFound(error: unknown): boolean {
  const name = (error as { name?: unknown } | null)?.name;
  return name === 'NoSuchKey' || name === 'NotFound' || statusOf(error) === 404;
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && !error.message.includes(code)
    ? `${code} ${error.message}`
    : error.message;
}
