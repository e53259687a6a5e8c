import { hash as digest } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { link, mkdir, open, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { type BlobHash, sha256Hex } from '@rewind/schema';
import { compress, decode, frameContentSize, hexOf, MAX_FRAME_HEADER } from './blob-codec.ts';
import {
  BlobCorruptError,
  BlobHashMismatchError,
  BlobNotFoundError,
  InvalidBlobHashError,
} from './blob-errors.ts';
import type { BlobStat, BlobStore, GcReport, PutManyOptions, VerifyReport } from './blob-store.ts';
import {
  forEachLimit,
  fsyncDir,
  ignoreCode,
  isAlive,
  isCode,
  readdirIfExists,
  readFileIfExists,
  statIfExists,
  uniqueSuffix,
} from './fs-util.ts';
import { entryAt, entryHex, type LoadedPack, type PackItem } from './pack.ts';
import { GcTally, type PackGcHooks, PackStore } from './pack-store.ts';

export { frameContentSize } from './blob-codec.ts';

// The filesystem content-addressed blob store (SPEC §7).
//
//   <dir>/sha256/<first 2 hex>/<remaining 62 hex>   one zstd frame of the blob's bytes (a loose blob)
//   <dir>/packs/<name>.pack                         many small blobs in one file (pack.ts, pack-store.ts)
//   <dir>/tmp/<pid>-<random>.tmp                    writes in progress
//   <dir>/trash/<64 hex>.<pid>-<random>             blobs gc is in the middle of deleting
//   <dir>/trash/<name>.pack.<pid>-<random>          packs gc is in the middle of deleting
//   <dir>/small-loose                               exists once a blob small enough for a pack
//                                                   was written loose (put): putMany then looks
//                                                   for loose copies before packing
//
// A blob file or a pack only ever appears under its name by an atomic rename of a complete,
// fsynced temp file, so a crash leaves at worst a temp file, which the next open removes. Every
// read re-hashes, so damaged bytes surface as BlobCorruptError, never as wrong content.
// `put` writes loose blobs; `putMany` writes its small blobs as one pack (docs/storage.md).

export interface FsBlobStoreOptions {
  /** zstd compression level (default 3, zstd's own default). */
  level?: number;
  /** Temp files older than this are removed on open even if their writer still runs (default 1 h). */
  tempMaxAgeMs?: number;
  /**
   * putMany writes blobs up to this size into packs, bigger ones as loose files (default 1 MiB:
   * the pointer lists of long conversations, tens of KiB each and nearly identical from one
   * request to the next, must share frames to compress against each other).
   */
  packMaxBlobBytes?: number;
  /**
   * Raw bytes per compressed group (frame) of a pack, about (default 1 MiB). Bigger frames
   * compress better (more similar payloads share one); a read decompresses the whole frame
   * (~1 ms per MiB), which the frame cache amortizes over the blobs read together.
   */
  packFrameBytes?: number;
  /** zstd level of packs (default: `level`). */
  packLevel?: number;
  /** Decompressed pack frames kept in memory for reads, in bytes (default 16 MiB). */
  frameCacheBytes?: number;
  /** gc rewrites an old pack when at least this fraction of its bytes is garbage (default 0.5). */
  packRewriteFraction?: number;
  /**
   * The small packs an instance writes (one per putMany of a few blobs) are merged into one once
   * they hold this many raw bytes together (default: packFrameBytes; 0 turns merging off).
   */
  packMergeBytes?: number;
  /** Fault-injection points for tests; never set them in production. */
  hooks?: FsBlobStoreHooks;
}

export interface FsBlobStoreHooks extends PackGcHooks {
  /** gc found `hash` unreferenced and past its grace period, and is about to move it to trash/. */
  beforeTrash?(hash: BlobHash): void | Promise<void>;
  /** gc moved `hash` to trash/ and is about to look at its mtime again. */
  afterTrash?(hash: BlobHash): void | Promise<void>;
}

const DAY_MS = 24 * 60 * 60 * 1000;
const HOUR_MS = 60 * 60 * 1000;
const STAT_CONCURRENCY = 64;
const GC_CONCURRENCY = 16;
const VERIFY_CONCURRENCY = 8;
const LOOSE_PUT_CONCURRENCY = 8;

const SHARD = /^[0-9a-f]{2}$/;
const REST = /^[0-9a-f]{62}$/;
const TEMP_NAME = /^(\d+)-[0-9a-f]+\.tmp$/;
const TRASH_NAME = /^([0-9a-f]{64})\.\d+-[0-9a-f]+$/;

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
  readonly #packs: PackStore;
  readonly #packMaxBlobBytes: number;
  readonly #smallLooseFlag: string;
  /** This process has made sure the small-loose flag exists. */
  #flagged = false;

  /** Use openFsBlobStore: it creates the directories and cleans up after crashed writers. */
  constructor(dir: string, options: FsBlobStoreOptions = {}) {
    this.location = resolve(dir);
    this.#blobsDir = join(this.location, 'sha256');
    this.#tempDir = join(this.location, 'tmp');
    this.#trashDir = join(this.location, 'trash');
    this.#level = options.level ?? 3;
    this.#tempMaxAgeMs = options.tempMaxAgeMs ?? HOUR_MS;
    this.#hooks = options.hooks ?? {};
    this.#packMaxBlobBytes = options.packMaxBlobBytes ?? 1024 * 1024;
    this.#smallLooseFlag = join(this.location, 'small-loose');
    this.#packs = new PackStore(this.location, this.#tempDir, this.#trashDir, {
      level: options.packLevel ?? this.#level,
      frameBytes: options.packFrameBytes ?? 1024 * 1024,
      cacheBytes: options.frameCacheBytes ?? 16 * 1024 * 1024,
      rewriteFraction: options.packRewriteFraction ?? 0.5,
      mergeBytes: options.packMergeBytes ?? options.packFrameBytes ?? 1024 * 1024,
    });
  }

  static async open(dir: string, options: FsBlobStoreOptions = {}): Promise<FsBlobStore> {
    const store = new FsBlobStore(dir, options);
    for (const sub of [store.#blobsDir, store.#tempDir, store.#trashDir])
      await mkdir(sub, { recursive: true });
    await store.#createShards();
    await store.#removeStaleTemps();
    await store.#recoverTrash();
    // A store from before packs may hold small loose blobs that nothing flagged: flag it if it
    // holds any loose blob at all (checked once, on the first open that creates packs/).
    if (!existsSync(store.#packs.dir) && !existsSync(store.#smallLooseFlag) && (await store.#anyLoose()))
      await store.#flagSmallLoose();
    await store.#packs.init();
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

  /**
   * Stores many blobs at once. Blobs up to `packMaxBlobBytes` that are not stored yet (in a pack
   * or as a loose file) are written as ONE pack; bigger ones as loose files; stored ones are only
   * refreshed (their pack's or file's mtime, as put does). Resolves once everything is durable.
   * `options.hashes` are trusted (see PutManyOptions): each read still re-hashes.
   */
  async putMany(items: readonly Uint8Array[], options: PutManyOptions = {}): Promise<BlobHash[]> {
    const given = options.hashes;
    if (given !== undefined && given.length !== items.length)
      throw new RangeError(`putMany got ${items.length} blobs and ${given.length} hashes`);
    const hashes = new Array<BlobHash>(items.length);
    const small = new Map<string, PackItem>();
    const large = new Map<string, Uint8Array>();
    for (const [index, bytes] of items.entries()) {
      let hash: BlobHash;
      let key: Buffer;
      if (given === undefined) {
        key = digest('sha256', bytes, 'buffer');
        hash = `sha256:${key.toString('hex')}`;
      } else {
        hash = given[index]!;
        key = keyOfHash(hash) ?? throwInvalid(hash);
      }
      hashes[index] = hash;
      const hex = hash.slice(7);
      if (bytes.byteLength > this.#packMaxBlobBytes) large.set(hex, bytes);
      else if (!small.has(hex)) small.set(hex, { hash: key, bytes });
    }

    const toPack: PackItem[] = [];
    if (small.size > 0) {
      // A loose tree that is not a directory cannot be searched: fail rather than guess.
      if (!statSync(this.#blobsDir).isDirectory())
        throw new Error(`${this.#blobsDir} is not a directory; the blob store is damaged`);
      // Looking for a loose copy costs a stat per blob (more than packing it): only when small
      // blobs were ever written loose (the flag; a copy written loose by another process after
      // this look is at worst stored twice, which is harmless).
      const checkLoose = existsSync(this.#smallLooseFlag);
      const inPacks = new Map<string, { pack: LoadedPack; items: PackItem[] }>();
      const loose: PackItem[] = [];
      for (const [hex, item] of small) {
        const location = this.#packs.index.lookup(item.hash);
        if (location !== undefined) {
          const group = inPacks.get(location.pack.name);
          if (group === undefined) inPacks.set(location.pack.name, { pack: location.pack, items: [item] });
          else group.items.push(item);
        } else if (checkLoose && statSync(this.#pathOf(hex), { throwIfNoEntry: false }) !== undefined) {
          loose.push(item);
        } else {
          toPack.push(item);
        }
      }
      // Already stored: refresh, so that gc keeps them for another grace period. A pack or file
      // that is gone by now (gc) means writing the blob again.
      for (const { pack, items: held } of inPacks.values()) {
        if (!(await this.#packs.refresh(pack))) toPack.push(...held);
      }
      for (const item of loose) {
        if (!(await this.#refresh(this.#pathOf(item.hash.toString('hex'))))) toPack.push(item);
      }
    }
    await Promise.all([
      toPack.length > 0 ? this.#packs.writeBatch(toPack) : undefined,
      forEachLimit(large, LOOSE_PUT_CONCURRENCY, async ([hex, bytes]) => this.#store(hex, bytes)),
    ]);
    return hashes;
  }

  async get(hash: BlobHash): Promise<Uint8Array> {
    const hex = hexOf(hash);
    const key = Buffer.from(hex, 'hex');
    let corrupt: unknown;
    try {
      const packed = await this.#packs.read(hash, key);
      if (packed !== undefined) return packed;
    } catch (error) {
      if (!BlobCorruptError.isInstance(error)) throw error;
      corrupt = error;
    }
    const found = await this.#read(hex);
    if (found !== undefined) {
      try {
        return await decode(hash, hex, found.path, found.file);
      } catch (error) {
        throw corrupt ?? error;
      }
    }
    if (corrupt !== undefined) throw corrupt;
    // Packs written by other processes since we last looked.
    if (await this.#packs.scan(false)) {
      const packed = await this.#packs.read(hash, key);
      if (packed !== undefined) return packed;
    }
    throw new BlobNotFoundError(hash);
  }

  async has(hash: BlobHash): Promise<boolean> {
    return (await this.missing([hash])).length === 0;
  }

  async missing(hashes: readonly BlobHash[]): Promise<BlobHash[]> {
    const hexes = hashes.map(hexOf);
    const unique = [...new Set(hexes)];
    const present = new Set<string>();
    await this.#presentInPacks(unique, present);
    await forEachLimit(
      unique.filter((hex) => !present.has(hex)),
      STAT_CONCURRENCY,
      async (hex) => {
        if (await this.#exists(hex)) present.add(hex);
      },
    );
    if (present.size < unique.length && (await this.#packs.scan(false)))
      await this.#presentInPacks(
        unique.filter((hex) => !present.has(hex)),
        present,
      );
    return hashes.filter((_, index) => !present.has(hexes[index]!));
  }

  /** Adds to `present` the hashes a loaded pack holds whose file still exists (one stat per pack). */
  async #presentInPacks(hexes: readonly string[], present: Set<string>): Promise<void> {
    const byPack = new Map<string, { pack: LoadedPack; hexes: string[] }>();
    for (const hex of hexes) {
      const location = this.#packs.index.lookup(Buffer.from(hex, 'hex'));
      if (location === undefined) continue;
      let group = byPack.get(location.pack.name);
      if (group === undefined) {
        group = { pack: location.pack, hexes: [] };
        byPack.set(location.pack.name, group);
      }
      group.hexes.push(hex);
    }
    const gone: string[] = [];
    await forEachLimit(byPack.values(), STAT_CONCURRENCY, async (group) => {
      if (await this.#packs.present(group.pack)) for (const hex of group.hexes) present.add(hex);
      else gone.push(...group.hexes);
    });
    // Their pack was removed (gc; present() listed the packs again): maybe they are in another one.
    if (gone.length > 0) await this.#presentInPacks(gone, present);
  }

  async stat(hash: BlobHash): Promise<BlobStat | undefined> {
    const hex = hexOf(hash);
    const packed = await this.#statPacked(hash, hex);
    if (packed !== undefined) return packed;
    const loose = await this.#statLoose(hash, hex);
    if (loose !== undefined) return loose;
    return (await this.#packs.scan(false)) ? this.#statPacked(hash, hex) : undefined;
  }

  async #statPacked(hash: BlobHash, hex: string): Promise<BlobStat | undefined> {
    const key = Buffer.from(hex, 'hex');
    for (let attempt = 0; attempt < 2; attempt++) {
      const location = this.#packs.index.lookup(key);
      if (location === undefined) return undefined;
      const info = await this.#packs.present(location.pack);
      if (info !== undefined)
        return { hash, size: entryAt(location.pack.layout, location.entry).size, writtenAt: info.mtimeMs };
    }
    return undefined;
  }

  async #statLoose(hash: BlobHash, hex: string): Promise<BlobStat | undefined> {
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

  /** Every stored hash once, sorted (packed and loose merged). */
  async *list(): AsyncIterable<BlobHash> {
    await this.#packs.scan(true);
    const packed = new Set<string>();
    for (const { layout } of this.#packs.index.packs())
      for (let entry = 0; entry < layout.entryCount; entry++) packed.add(entryHex(layout, entry));
    const sorted = [...packed].sort();
    let next = 0;
    for await (const hex of this.#listLoose()) {
      while (next < sorted.length && sorted[next]! < hex) yield `sha256:${sorted[next++]!}`;
      if (!packed.has(hex)) yield `sha256:${hex}`;
    }
    while (next < sorted.length) yield `sha256:${sorted[next++]!}`;
  }

  async *#listLoose(): AsyncIterable<string> {
    for (const shard of await readdirIfExists(this.#blobsDir, SHARD)) {
      for (const rest of await readdirIfExists(join(this.#blobsDir, shard), REST)) yield `${shard}${rest}`;
    }
  }

  /**
   * Re-hashes every stored copy: each loose file and each blob of each pack. `checked` counts
   * copies; `corrupt` lists each hash with a damaged copy once; `damagedPacks` lists packs whose
   * index cannot be read (their blobs are unknown and unreadable: re-upload, see `rewind doctor`).
   */
  async verify(): Promise<VerifyReport> {
    const packs = await this.#packs.verify();
    let checked = packs.checked;
    const corrupt = packs.corrupt;
    await forEachLimit(this.#listLoose(), VERIFY_CONCURRENCY, async (hex) => {
      const hash: BlobHash = `sha256:${hex}`;
      const path = this.#pathOf(hex);
      const file = await readFileIfExists(path);
      if (file === undefined) return; // gc removed it meanwhile
      try {
        await decode(hash, hex, path, file);
      } catch (error) {
        if (!BlobCorruptError.isInstance(error)) throw error;
        corrupt.add(hex);
      }
      checked++;
    });
    return {
      checked,
      corrupt: [...corrupt].sort().map((hex): BlobHash => `sha256:${hex}`),
      damagedPacks: packs.damaged,
    };
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
    await this.#removeStaleTemps();
    const tally = new GcTally(referenced);
    await this.#packs.gc(cutoff, tally, this.#hooks);
    await forEachLimit(this.#listLoose(), GC_CONCURRENCY, async (hex) => {
      if (await tally.referenced(hex)) return;
      const hash: BlobHash = `sha256:${hex}`;
      const path = this.#pathOf(hex);
      const before = await statIfExists(path);
      if (before === undefined) return;
      if (before.mtimeMs >= cutoff) {
        tally.mark(hex, GcTally.GRACE);
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
        tally.mark(hex, GcTally.GRACE);
        return;
      }
      try {
        await unlink(trashed);
      } catch (error) {
        if (isCode(error, 'ENOENT')) return;
        throw error;
      }
      tally.mark(hex, GcTally.REMOVED);
    });
    const report: GcReport = { scanned: tally.flags.size, deleted: [], keptInGrace: 0, keptInPacks: 0 };
    for (const [hex, flags] of tally.flags) {
      if (flags & GcTally.GRACE) report.keptInGrace++;
      else if (flags & GcTally.KEPT_IN_PACK) report.keptInPacks++;
      // Removed, and no copy left (another pack or a loose file may hold one).
      else if (flags & GcTally.REMOVED && this.#packs.index.lookup(Buffer.from(hex, 'hex')) === undefined)
        if (!(await this.#exists(hex))) report.deleted.push(`sha256:${hex}`);
    }
    report.deleted.sort();
    return report;
  }

  async close(): Promise<void> {
    // Nothing is held open between calls; every write is complete (fsynced and renamed) before
    // its put resolves. Only the cache of decompressed pack frames is dropped.
    this.#packs.clearCache();
  }

  #pathOf(hex: string): string {
    return join(this.#blobsDir, hex.slice(0, 2), hex.slice(2));
  }

  async #exists(hex: string): Promise<boolean> {
    return (await statIfExists(this.#pathOf(hex))) !== undefined;
  }

  async #store(hex: string, bytes: Uint8Array): Promise<void> {
    // Already packed: refreshing the pack is enough (and keeps one copy).
    const location = this.#packs.index.lookup(Buffer.from(hex, 'hex'));
    if (location !== undefined && (await this.#packs.refresh(location.pack))) return;
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
    // Before the blob can be seen: whoever sees it also sees the flag.
    if (bytes.byteLength <= this.#packMaxBlobBytes) await this.#flagSmallLoose();
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

  async #flagSmallLoose(): Promise<void> {
    if (this.#flagged) return;
    if (!existsSync(this.#smallLooseFlag)) await writeFile(this.#smallLooseFlag, '', { flag: 'a' });
    this.#flagged = true;
  }

  async #anyLoose(): Promise<boolean> {
    for (const shard of await readdirIfExists(this.#blobsDir, SHARD))
      if ((await readdirIfExists(join(this.#blobsDir, shard), REST)).length > 0) return true;
    return false;
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

const HEX_DIGITS = new Int8Array(128).fill(-1);
for (let digit = 0; digit < 16; digit++) HEX_DIGITS[digit.toString(16).charCodeAt(0)] = digit;

/** The 32 bytes of a well-formed hash ("sha256:" + 64 lowercase hex), in one pass; undefined otherwise. */
function keyOfHash(hash: unknown): Buffer | undefined {
  if (typeof hash !== 'string' || hash.length !== 71 || !hash.startsWith('sha256:')) return undefined;
  const key = Buffer.allocUnsafe(32);
  for (let i = 0, at = 7; i < 32; i++, at += 2) {
    const high = HEX_DIGITS[hash.charCodeAt(at)] ?? -1;
    const low = HEX_DIGITS[hash.charCodeAt(at + 1)] ?? -1;
    if ((high | low) < 0) return undefined;
    key[i] = (high << 4) | low;
  }
  return key;
}

function throwInvalid(hash: unknown): never {
  throw new InvalidBlobHashError(hash);
}
