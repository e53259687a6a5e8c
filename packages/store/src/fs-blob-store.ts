import { randomBytes } from 'node:crypto';
import { readFile, type Stats } from 'node:fs';
import { link, mkdir, open, readdir, rename, stat, unlink, utimes } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import {
  constants as zlibConstants,
  zstdCompress,
  zstdCompressSync,
  zstdDecompress,
  zstdDecompressSync,
} from 'node:zlib';
import { type BlobHash, blobHashHex, sha256Hex } from '@rewind/schema';
import {
  BlobCorruptError,
  BlobHashMismatchError,
  BlobNotFoundError,
  InvalidBlobHashError,
} from './blob-errors.ts';
import type { BlobStat, BlobStore, GcReport, VerifyReport } from './blob-store.ts';

// The filesystem content-addressed blob store (SPEC §7).
//
//   <dir>/sha256/<first 2 hex>/<remaining 62 hex>   one zstd frame of the blob's bytes
//   <dir>/tmp/<pid>-<random>.tmp                    writes in progress
//   <dir>/trash/<64 hex>.<pid>-<random>             blobs gc is in the middle of deleting
//
// A blob file only ever appears under its name by an atomic rename of a complete, fsynced
// temp file, so a crash leaves at worst a temp file, which the next open removes. Every read
// re-hashes, so damaged bytes surface as BlobCorruptError, never as wrong content.

export interface FsBlobStoreOptions {
  /** zstd compression level (default 3, zstd's own default). */
  level?: number;
  /** Temp files older than this are removed on open even if their writer still runs (default 1 h). */
  tempMaxAgeMs?: number;
  /** Fault-injection points for tests; never set them in production. */
  hooks?: FsBlobStoreHooks;
}

export interface FsBlobStoreHooks {
  /** gc found `hash` unreferenced and past its grace period, and is about to move it to trash/. */
  beforeTrash?(hash: BlobHash): void | Promise<void>;
  /** gc moved `hash` to trash/ and is about to look at its mtime again. */
  afterTrash?(hash: BlobHash): void | Promise<void>;
}

const DAY_MS = 24 * 60 * 60 * 1000;
const HOUR_MS = 60 * 60 * 1000;
// Measured on Node 24 (2 KB JSON-ish text): sync zstd takes ~30 µs to compress and ~25 µs to
// decompress, the async calls ~50 µs (a thread-pool round trip). Above these sizes the sync calls
// would block the event loop for more than ~150 µs, so big blobs go to the thread pool.
const SYNC_COMPRESS_LIMIT = 32 * 1024;
const SYNC_DECOMPRESS_LIMIT = 128 * 1024;
// Output chunk size for decompression when the frame declares the size: one chunk is much faster
// than the default 16 KiB chunks, but a damaged header must not make us allocate gigabytes up front.
const MAX_DECOMPRESS_CHUNK = 8 * 1024 * 1024;
const STAT_CONCURRENCY = 64;
const GC_CONCURRENCY = 16;
const VERIFY_CONCURRENCY = 8;
/** Magic number + descriptor + window + dictionary id + content size: the longest zstd frame header. */
const MAX_FRAME_HEADER = 18;

const SHARD = /^[0-9a-f]{2}$/;
const REST = /^[0-9a-f]{62}$/;
const TEMP_NAME = /^(\d+)-[0-9a-f]+\.tmp$/;
const TRASH_NAME = /^([0-9a-f]{64})\.\d+-[0-9a-f]+$/;

// The callback readFile reads a small file in about half the time of fs/promises' (measured).
const readFileCallback = promisify(readFile);
const compressAsync = promisify(zstdCompress);
const decompressAsync = promisify(zstdDecompress);

export async function openFsBlobStore(dir: string, options: FsBlobStoreOptions = {}): Promise<FsBlobStore> {
  return FsBlobStore.open(dir, options);
}

export class FsBlobStore implements BlobStore {
  readonly location: string;
  readonly #blobsDir: string;
  readonly #tempDir: string;
  readonly #trashDir: string;
  readonly #level: number;
  readonly #tempMaxAgeMs: number;
  readonly #hooks: FsBlobStoreHooks;

  /** Use openFsBlobStore: it creates the directories and cleans up after crashed writers. */
  constructor(dir: string, options: FsBlobStoreOptions = {}) {
    this.location = resolve(dir);
    this.#blobsDir = join(this.location, 'sha256');
    this.#tempDir = join(this.location, 'tmp');
    this.#trashDir = join(this.location, 'trash');
    this.#level = options.level ?? 3;
    this.#tempMaxAgeMs = options.tempMaxAgeMs ?? HOUR_MS;
    this.#hooks = options.hooks ?? {};
  }

  static async open(dir: string, options: FsBlobStoreOptions = {}): Promise<FsBlobStore> {
    const store = new FsBlobStore(dir, options);
    for (const sub of [store.#blobsDir, store.#tempDir, store.#trashDir])
      await mkdir(sub, { recursive: true });
    await store.#createShards();
    await store.#removeStaleTemps();
    await store.#recoverTrash();
    return store;
  }

  async put(bytes: Uint8Array): Promise<BlobHash> {
    const hex = sha256Hex(bytes);
    await this.#store(hex, bytes);
    return `sha256:${hex}`;
  }

  async putVerified(hash: BlobHash, bytes: Uint8Array): Promise<void> {
    const hex = hexOf(hash);
    const actual = sha256Hex(bytes);
    if (actual !== hex) throw new BlobHashMismatchError(hash, `sha256:${actual}`);
    await this.#store(hex, bytes);
  }

  async get(hash: BlobHash): Promise<Uint8Array> {
    const hex = hexOf(hash);
    const found = await this.#read(hex);
    if (found === undefined) throw new BlobNotFoundError(hash);
    return decode(hash, hex, found.path, found.file);
  }

  async has(hash: BlobHash): Promise<boolean> {
    return this.#exists(hexOf(hash));
  }

  async missing(hashes: readonly BlobHash[]): Promise<BlobHash[]> {
    const hexes = hashes.map(hexOf);
    const present = new Map<string, boolean>();
    await forEachLimit(new Set(hexes), STAT_CONCURRENCY, async (hex) => {
      present.set(hex, await this.#exists(hex));
    });
    return hashes.filter((_, index) => !present.get(hexes[index]!));
  }

  async stat(hash: BlobHash): Promise<BlobStat | undefined> {
    const hex = hexOf(hash);
    const path = this.#pathOf(hex);
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      if (isCode(error, 'ENOENT')) return undefined;
      throw error;
    }
    // The uncompressed size comes from the zstd frame header (we always pledge the size when
    // compressing, so it is there): 18 bytes read, no decompression, and no second place to
    // keep in sync — the layout leaves no room for it in the file name anyway.
    try {
      const header = new Uint8Array(MAX_FRAME_HEADER);
      const [info, { bytesRead }] = await Promise.all([
        handle.stat(),
        handle.read(header, 0, header.length, 0),
      ]);
      const declared = frameContentSize(header.subarray(0, bytesRead));
      if (declared === 'invalid') throw new BlobCorruptError(hash, path, 'not a zstd frame');
      const size = declared === 'unknown' ? (await this.get(hash)).byteLength : declared;
      return { hash, size, writtenAt: info.mtimeMs };
    } finally {
      await handle.close();
    }
  }

  async *list(): AsyncIterable<BlobHash> {
    for (const shard of await readdirIfExists(this.#blobsDir, SHARD)) {
      for (const rest of await readdirIfExists(join(this.#blobsDir, shard), REST))
        yield `sha256:${shard}${rest}`;
    }
  }

  async verify(): Promise<VerifyReport> {
    let checked = 0;
    const corrupt: BlobHash[] = [];
    await forEachLimit(this.list(), VERIFY_CONCURRENCY, async (hash) => {
      try {
        await this.get(hash);
      } catch (error) {
        if (BlobNotFoundError.isInstance(error)) return; // gc removed it meanwhile
        if (!BlobCorruptError.isInstance(error)) throw error;
        corrupt.push(hash);
      }
      checked++;
    });
    return { checked, corrupt: corrupt.sort() };
  }

  // The race to close: put of an existing blob only refreshes its mtime, so gc could decide a
  // blob is old, a put could refresh it, and gc could then unlink what that put relies on. So gc
  // never unlinks a blob where puts can see it: it first renames it into trash/ (atomic), then
  // reads the mtime again. A put that refreshed the blob before the rename shows up in that mtime
  // and gc puts the blob back; a put after the rename finds nothing (ENOENT) and writes it anew.
  async gc(
    referenced: (hash: BlobHash) => boolean | Promise<boolean>,
    options: { graceMs?: number; now?: number } = {},
  ): Promise<GcReport> {
    const cutoff = (options.now ?? Date.now()) - (options.graceMs ?? DAY_MS);
    const report: GcReport = { scanned: 0, deleted: [], keptInGrace: 0 };
    await this.#removeStaleTemps();
    await forEachLimit(this.list(), GC_CONCURRENCY, async (hash) => {
      report.scanned++;
      if (await referenced(hash)) return;
      const hex = hash.slice('sha256:'.length);
      const path = this.#pathOf(hex);
      const before = await statIfExists(path);
      if (before === undefined) return;
      if (before.mtimeMs >= cutoff) {
        report.keptInGrace++;
        return;
      }
      await this.#hooks.beforeTrash?.(hash);
      const trashed = join(this.#trashDir, `${hex}.${uniqueSuffix()}`);
      try {
        await rename(path, trashed);
      } catch (error) {
        if (isCode(error, 'ENOENT')) return; // another gc got there first
        throw error;
      }
      await this.#hooks.afterTrash?.(hash);
      const after = await statIfExists(trashed);
      if (after === undefined) return; // another process's open() put it back
      if (after.mtimeMs !== before.mtimeMs || after.mtimeMs >= cutoff) {
        await this.#restore(trashed, path);
        report.keptInGrace++;
        return;
      }
      try {
        await unlink(trashed);
      } catch (error) {
        if (isCode(error, 'ENOENT')) return;
        throw error;
      }
      report.deleted.push(hash);
    });
    report.deleted.sort();
    return report;
  }

  async close(): Promise<void> {
    // Nothing is held open between calls; every write is complete (fsynced and renamed) before
    // its put resolves.
  }

  #pathOf(hex: string): string {
    return join(this.#blobsDir, hex.slice(0, 2), hex.slice(2));
  }

  async #exists(hex: string): Promise<boolean> {
    return (await statIfExists(this.#pathOf(hex))) !== undefined;
  }

  async #store(hex: string, bytes: Uint8Array): Promise<void> {
    const path = this.#pathOf(hex);
    if (await this.#refresh(path)) return;
    await this.#writeNew(path, bytes);
  }

  /** True when the blob is already stored; its mtime now says it was just written, which protects it from gc. */
  async #refresh(path: string): Promise<boolean> {
    const now = new Date();
    try {
      await utimes(path, now, now);
      // utimes resolves the path before it sets the time, so gc may have renamed the file into
      // trash/ in between. Seeing the path still there afterwards puts gc's rename, and therefore
      // its second look at the mtime, after our refresh.
      await stat(path);
      return true;
    } catch (error) {
      // EPERM/EACCES: a file another user wrote (only its owner may set times); replace it with our own copy.
      if (isCode(error, 'ENOENT') || isCode(error, 'EPERM') || isCode(error, 'EACCES')) return false;
      throw error;
    }
  }

  async #writeNew(path: string, bytes: Uint8Array): Promise<void> {
    const compressed = await compress(bytes, this.#level);
    const temp = join(this.#tempDir, `${uniqueSuffix()}.tmp`);
    try {
      const handle = await open(temp, 'wx', 0o644);
      try {
        await handle.writeFile(compressed);
        await handle.sync();
      } finally {
        await handle.close();
      }
      try {
        await rename(temp, path);
      } catch (error) {
        if (!isCode(error, 'ENOENT')) throw error; // the shard directory was removed by hand
        await mkdir(dirname(path), { recursive: true });
        await fsyncDir(this.#blobsDir);
        await rename(temp, path);
      }
    } catch (error) {
      await unlink(temp).catch(() => {});
      throw error;
    }
    await fsyncDir(dirname(path));
  }

  /** The stored file of a blob, also looking in trash/ where gc may be holding it for a moment. */
  async #read(hex: string): Promise<{ path: string; file: Buffer } | undefined> {
    const path = this.#pathOf(hex);
    const file = await readFileIfExists(path);
    if (file !== undefined) return { path, file };
    for (const name of await readdirIfExists(this.#trashDir, TRASH_NAME)) {
      if (!name.startsWith(`${hex}.`)) continue;
      const trashed = join(this.#trashDir, name);
      const held = await readFileIfExists(trashed);
      if (held !== undefined) return { path: trashed, file: held };
    }
    // gc may have put it back while we looked in trash/.
    const again = await readFileIfExists(path);
    return again === undefined ? undefined : { path, file: again };
  }

  /** Moves a trashed blob back, without clobbering a copy written meanwhile (same bytes, newer mtime). */
  async #restore(trashed: string, path: string): Promise<void> {
    try {
      await link(trashed, path);
      await fsyncDir(dirname(path));
    } catch (error) {
      if (isCode(error, 'ENOENT')) {
        if ((await statIfExists(trashed)) === undefined) return; // someone else restored or removed it
        await mkdir(dirname(path), { recursive: true });
        return this.#restore(trashed, path);
      }
      if (isCode(error, 'EPERM') || isCode(error, 'ENOTSUP')) {
        // A filesystem without hard links: rename, unless a fresh copy is already in place.
        if ((await statIfExists(path)) === undefined) await rename(trashed, path).catch(ignoreCode('ENOENT'));
      } else if (!isCode(error, 'EEXIST')) {
        throw error;
      }
    }
    await unlink(trashed).catch(ignoreCode('ENOENT'));
  }

  /** All 256 shard directories up front, so that a put never pays for creating one (and fsyncing sha256/). */
  async #createShards(): Promise<void> {
    const existing = new Set(await readdirIfExists(this.#blobsDir, SHARD));
    let created = false;
    for (let byte = 0; byte < 256; byte++) {
      const shard = byte.toString(16).padStart(2, '0');
      if (existing.has(shard)) continue;
      await mkdir(join(this.#blobsDir, shard), { recursive: true });
      created = true;
    }
    if (created) await fsyncDir(this.#blobsDir);
  }

  /** A gc that died between its rename into trash/ and its decision leaves blobs there: put them all back. */
  async #recoverTrash(): Promise<void> {
    for (const name of await readdirIfExists(this.#trashDir, TRASH_NAME)) {
      await this.#restore(join(this.#trashDir, name), this.#pathOf(name.slice(0, 64)));
    }
  }

  /**
   * Removes temp files of writers that are gone. Another live process may share the directory,
   * so a temp file stays while its writer's pid is alive, unless it is older than tempMaxAgeMs
   * (the pid may have been reused).
   */
  async #removeStaleTemps(): Promise<void> {
    const now = Date.now();
    for (const name of await readdirIfExists(this.#tempDir)) {
      const path = join(this.#tempDir, name);
      const info = await statIfExists(path);
      if (info === undefined) continue;
      const pid = TEMP_NAME.exec(name)?.[1];
      const writerGone = pid !== undefined && !isAlive(Number(pid));
      if (writerGone || now - info.mtimeMs > this.#tempMaxAgeMs)
        await unlink(path).catch(ignoreCode('ENOENT'));
    }
  }
}

function hexOf(hash: BlobHash): string {
  const hex = blobHashHex(hash);
  if (hex === undefined) throw new InvalidBlobHashError(hash);
  return hex;
}

async function compress(bytes: Uint8Array, level: number): Promise<Buffer> {
  const options = {
    // Pledging the size makes zstd record it in the frame header, which stat() reads.
    pledgedSrcSize: bytes.byteLength,
    params: { [zlibConstants.ZSTD_c_compressionLevel]: level },
  };
  return bytes.byteLength <= SYNC_COMPRESS_LIMIT
    ? zstdCompressSync(bytes, options)
    : compressAsync(bytes, options);
}

async function decode(hash: BlobHash, hex: string, path: string, file: Buffer): Promise<Buffer> {
  const declared = frameContentSize(file.subarray(0, MAX_FRAME_HEADER));
  if (declared === 'invalid') throw new BlobCorruptError(hash, path, 'not a zstd frame');
  let bytes: Buffer;
  try {
    const options =
      declared === 'unknown'
        ? {}
        : {
            maxOutputLength: Math.max(declared, 1),
            chunkSize: Math.min(Math.max(declared, 64), MAX_DECOMPRESS_CHUNK),
          };
    const expected = declared === 'unknown' ? file.byteLength : declared;
    bytes =
      expected <= SYNC_DECOMPRESS_LIMIT
        ? zstdDecompressSync(file, options)
        : await decompressAsync(file, options);
  } catch (cause) {
    throw new BlobCorruptError(hash, path, `zstd: ${(cause as Error).message}`, { cause });
  }
  if (declared !== 'unknown' && bytes.byteLength !== declared) {
    throw new BlobCorruptError(
      hash,
      path,
      `decompressed to ${bytes.byteLength} bytes, the frame says ${declared}`,
    );
  }
  const actual = sha256Hex(bytes);
  if (actual !== hex) throw new BlobCorruptError(hash, path, `its content hashes to sha256:${actual}`);
  return bytes;
}

/**
 * The uncompressed size a zstd frame header declares (RFC 8878 §3.1.1.1): `unknown` when the
 * frame does not record it, `invalid` when this is not the start of a zstd frame.
 */
export function frameContentSize(header: Uint8Array): number | 'unknown' | 'invalid' {
  if (header.byteLength < 5) return 'invalid';
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
  if (view.getUint32(0, true) !== 0xfd2fb528) return 'invalid';
  const descriptor = header[4]!;
  if (descriptor & 0x08) return 'invalid'; // reserved bit
  const singleSegment = (descriptor >> 5) & 1;
  const sizeFlag = descriptor >> 6;
  const sizeBytes = sizeFlag === 0 ? singleSegment : 1 << sizeFlag;
  if (sizeBytes === 0) return 'unknown';
  const at = 5 + (singleSegment ? 0 : 1) + [0, 1, 2, 4][descriptor & 3]!;
  if (header.byteLength < at + sizeBytes) return 'invalid';
  switch (sizeBytes) {
    case 1:
      return view.getUint8(at);
    case 2:
      return view.getUint16(at, true) + 256;
    case 4:
      return view.getUint32(at, true);
    default: {
      const size = view.getBigUint64(at, true);
      return size > BigInt(Number.MAX_SAFE_INTEGER) ? 'invalid' : Number(size);
    }
  }
}

function uniqueSuffix(): string {
  return `${process.pid}-${randomBytes(8).toString('hex')}`;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return !isCode(error, 'ESRCH'); // EPERM: alive, owned by someone else
  }
}

async function fsyncDir(dir: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(dir, 'r');
  } catch (error) {
    if (isCode(error, 'EISDIR') || isCode(error, 'EPERM')) return; // platforms that cannot open directories
    throw error;
  }
  try {
    await handle.sync();
  } catch (error) {
    if (!isCode(error, 'EINVAL')) throw error; // filesystems that do not sync directories
  } finally {
    await handle.close();
  }
}

async function statIfExists(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch (error) {
    if (isCode(error, 'ENOENT')) return undefined;
    throw error;
  }
}

async function readFileIfExists(path: string): Promise<Buffer | undefined> {
  try {
    return await readFileCallback(path);
  } catch (error) {
    if (isCode(error, 'ENOENT')) return undefined;
    throw error;
  }
}

async function readdirIfExists(dir: string, pattern?: RegExp): Promise<string[]> {
  try {
    const names = await readdir(dir);
    return (pattern === undefined ? names : names.filter((name) => pattern.test(name))).sort();
  } catch (error) {
    if (isCode(error, 'ENOENT')) return [];
    throw error;
  }
}

/** Runs `fn` over `items` with at most `limit` calls in flight; rejects with the first failure. */
async function forEachLimit<T>(
  items: Iterable<T> | AsyncIterable<T>,
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  const iterator: Iterator<T> | AsyncIterator<T> =
    Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : items[Symbol.iterator]();
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed) {
      const next = await iterator.next();
      if (next.done) return;
      try {
        await fn(next.value);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
}

function isCode(error: unknown, code: string): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === code;
}

function ignoreCode(code: string): (error: unknown) => void {
  return (error) => {
    if (!isCode(error, code)) throw error;
  };
}
