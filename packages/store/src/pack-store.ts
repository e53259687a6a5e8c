import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fstatSync,
  fsync,
  futimesSync,
  mkdirSync,
  openSync,
  renameSync,
  type Stats,
  statSync,
  unlinkSync,
  writeSync,
  writevSync,
} from 'node:fs';
import { link, mkdir, open, rename, stat, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type BlobHash, sha256Hex } from '@rewind/schema';
import { BlobCorruptError } from './blob-errors.ts';
import {
  forEachLimit,
  fsyncDir,
  ignoreCode,
  isCode,
  readdirIfExists,
  readFileIfExists,
  statIfExists,
  uniqueSuffix,
} from './fs-util.ts';
import {
  buildPack,
  decodeFrame,
  ENTRY_BYTES,
  entryAt,
  entryHex,
  FOOTER_BYTES,
  type LoadedPack,
  MAX_PACK_ENTRIES,
  PackIndex,
  type PackItem,
  type PackLayout,
  type PackLocation,
  parseFooter,
  parseIndex,
  parsePack,
} from './pack.ts';

// The packs of the filesystem blob store (docs/storage.md, "Packs"):
//
//   <dir>/packs/<time36>-<16 hex>.pack       one pack: header, zstd frames, index, footer (pack.ts)
//   <dir>/tmp/<pid>-<random>.tmp             packs being written
//   <dir>/trash/<pack name>.<pid>-<random>   packs gc is in the middle of deleting
//
// A pack appears in packs/ only by an atomic rename of a complete, fsynced temp file, and is never
// modified afterwards (only its mtime: a put of a blob it holds refreshes it, which protects the
// whole pack from gc for a grace period). gc removes a pack with the same trash protocol as loose
// blobs, after writing its live blobs to a new pack when it is mostly garbage.

export const PACK_NAME = /^[0-9a-z]{1,12}-[0-9a-f]{16}\.pack$/;
export const PACK_TRASH_NAME = /^([0-9a-z]{1,12}-[0-9a-f]{16}\.pack)\.\d+-[0-9a-f]+$/;
/** A directory changed less than this long before we listed it may change again within the same mtime tick. */
const RACY_MS = 100;
const LOAD_CONCURRENCY = 16;

const fsyncAsync = promisify(fsync);

/** A frame that cannot be read back as the index describes it (as opposed to an I/O error). */
class FrameError extends Error {}
const VERIFY_CONCURRENCY = 2;
const REFERENCED_CONCURRENCY = 16;
/** Small packs merged at the latest when there are this many. */
const MERGE_MAX_PACKS = 64;

export interface PackStoreOptions {
  level: number;
  frameBytes: number;
  cacheBytes: number;
  /** Rewrite an old pack when at least this fraction of its raw bytes is garbage. */
  rewriteFraction: number;
  /**
   * Merge the small packs this instance wrote once they hold this many raw bytes together (or
   * number MERGE_MAX_PACKS); 0 turns merging off.
   */
  mergeBytes: number;
}

/** An old small pack gc may merge with others. */
interface MergeCandidate {
  pack: LoadedPack;
  before: Stats;
  live: number[];
  garbage: number[];
  raw: number;
}

/** A small pack this instance wrote, kept in memory until it is merged with the next ones. */
interface RecentPack {
  pack: LoadedPack;
  items: readonly PackItem[];
  raw: number;
  /** Its mtime right after writing: a different one later means someone refreshed it. */
  mtimeMs: number;
}

export interface PackGcHooks {
  beforeTrashPack?(pack: string, garbage: BlobHash[]): void | Promise<void>;
  afterTrashPack?(pack: string, garbage: BlobHash[]): void | Promise<void>;
}

/** What gc learns about each hash, across all its copies (loose and packed). */
export class GcTally {
  static readonly GRACE = 1;
  static readonly KEPT_IN_PACK = 2;
  static readonly REMOVED = 4;
  readonly flags = new Map<string, number>();
  readonly #answers = new Map<string, Promise<boolean>>();
  readonly #referenced: (hash: BlobHash) => boolean | Promise<boolean>;
  constructor(referenced: (hash: BlobHash) => boolean | Promise<boolean>) {
    this.#referenced = referenced;
  }
  /** Asks `referenced` once per hash however many copies there are. */
  referenced(hex: string): Promise<boolean> {
    let answer = this.#answers.get(hex);
    if (answer === undefined) {
      answer = (async () => this.#referenced(`sha256:${hex}`))();
      this.#answers.set(hex, answer);
      if (!this.flags.has(hex)) this.flags.set(hex, 0);
    }
    return answer;
  }
  mark(hex: string, flag: number): void {
    this.flags.set(hex, (this.flags.get(hex) ?? 0) | flag);
  }
}

export class PackStore {
  readonly dir: string;
  readonly #tempDir: string;
  readonly #trashDir: string;
  readonly #options: PackStoreOptions;
  readonly index = new PackIndex();
  /** Packs whose index could not be read, with the reason (verify reports them). */
  readonly damaged = new Map<string, string>();
  /** The packs directory as last listed (mtime, ctime, size, inode), when it is safe to trust. */
  #stamp: string | undefined;
  #scanning: Promise<boolean> | undefined;
  readonly #frames = new Map<string, Promise<Buffer>>();
  #frameBytes = 0;
  readonly #frameSizes = new Map<string, number>();
  #recent: RecentPack[] = [];
  #recentRaw = 0;
  #merging: Promise<void> | undefined;

  constructor(root: string, tempDir: string, trashDir: string, options: PackStoreOptions) {
    this.dir = join(root, 'packs');
    this.#tempDir = tempDir;
    this.#trashDir = trashDir;
    this.#options = options;
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await this.recoverTrash();
    await this.scan(true);
  }

  pathOf(pack: LoadedPack | string): string {
    return join(this.dir, typeof pack === 'string' ? pack : pack.name);
  }

  /**
   * Loads packs written since the last look (by other processes) and forgets packs gone from disk.
   * Without `force`, nothing is listed when the directory has not changed since (one stat).
   * Resolves to whether the set of packs changed.
   */
  async scan(force: boolean): Promise<boolean> {
    // One listing at a time: concurrent misses share it.
    while (this.#scanning !== undefined) {
      const changed = await this.#scanning;
      if (!force) return changed;
    }
    this.#scanning = this.#scan(force);
    try {
      return await this.#scanning;
    } finally {
      this.#scanning = undefined;
    }
  }

  async #scan(force: boolean): Promise<boolean> {
    const started = Date.now();
    const info = await statIfExists(this.dir);
    if (info === undefined) {
      const had = this.index.packs().map((pack) => pack.name);
      this.index.remove(had);
      this.#stamp = undefined;
      return had.length > 0;
    }
    const stamp = `${info.mtimeMs}/${info.ctimeMs}/${info.size}/${info.ino}`;
    if (!force && stamp === this.#stamp) return false;
    const names = new Set(await readdirIfExists(this.dir, PACK_NAME));
    const gone = this.index.packs().filter((pack) => !names.has(pack.name));
    for (const name of this.damaged.keys()) if (!names.has(name)) this.damaged.delete(name);
    this.index.remove(gone.map((pack) => pack.name));
    let added = 0;
    await forEachLimit(names, LOAD_CONCURRENCY, async (name) => {
      if (this.index.get(name) !== undefined || this.damaged.has(name)) return;
      if (await this.#load(name)) added++;
    });
    // A change within the same mtime tick as our stat would leave the stamp as it is: trust the
    // stamp only when the directory had been quiet for a while before we looked.
    this.#stamp = Math.max(info.mtimeMs, info.ctimeMs) < started - RACY_MS ? stamp : undefined;
    return added > 0 || gone.length > 0;
  }

  async #load(name: string): Promise<boolean> {
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(this.pathOf(name), 'r');
    } catch (error) {
      if (isCode(error, 'ENOENT')) return false; // removed by gc meanwhile
      throw error;
    }
    let layout: PackLayout | string;
    try {
      const { size } = await handle.stat();
      const footer = Buffer.alloc(Math.min(FOOTER_BYTES, size));
      await handle.read(footer, 0, footer.length, size - footer.length);
      const info = parseFooter(footer, size);
      if (typeof info === 'string') {
        layout = info;
      } else {
        const index = Buffer.alloc(info.indexBytes);
        const { bytesRead } = await handle.read(index, 0, index.length, info.indexOffset);
        layout = parseIndex(info, footer, index.subarray(0, bytesRead), size);
      }
    } finally {
      await handle.close();
    }
    if (typeof layout === 'string') {
      this.damaged.set(name, layout);
      return false;
    }
    this.index.add(name, layout);
    return true;
  }

  /** Puts back packs a crashed gc left in trash/. */
  async recoverTrash(): Promise<void> {
    for (const name of await readdirIfExists(this.#trashDir, PACK_TRASH_NAME)) {
      await this.#restore(join(this.#trashDir, name), this.pathOf(PACK_TRASH_NAME.exec(name)![1]!));
    }
  }

  /**
   * Writes distinct blobs as one pack (several when there are more than 2^20): temp file, fsync,
   * rename into packs/, fsync of packs/. `mtime` back-dates the pack (gc merging old packs).
   */
  /**
   * Writes a batch (putMany's new blobs) as one pack. A small pack is also kept in memory, and
   * once this instance has written enough of them (a frame's worth) they are merged into one
   * pack (see #mergeRecent): an agent that records one model call at a time writes a small pack
   * per call, and only a merge lets consecutive requests — the same message list plus a message
   * or two — compress against each other.
   */
  async writeBatch(items: readonly PackItem[]): Promise<void> {
    const mtimes: number[] = [];
    const written = await this.write(items, undefined, mtimes);
    const mergeBytes = this.#options.mergeBytes;
    if (mergeBytes <= 0 || written.length !== 1) return;
    let raw = 0;
    for (const item of items) raw += item.bytes.byteLength;
    if (raw >= mergeBytes / 2) return; // big enough as it is
    this.#recent.push({ pack: written[0]!, items, raw, mtimeMs: mtimes[0]! });
    this.#recentRaw += raw;
    if (this.#recentRaw < mergeBytes && this.#recent.length < MERGE_MAX_PACKS) return;
    while (this.#merging !== undefined) await this.#merging;
    if (this.#recent.length < 2) return;
    this.#merging = this.#mergeRecent().finally(() => {
      this.#merging = undefined;
    });
    await this.#merging;
  }

  /**
   * Writes the recent small packs' blobs as one pack (complete and durable first), then removes
   * the small packs with gc's trash protocol: renamed into trash/, and put back if their mtime
   * shows that a put refreshed them meanwhile (a put after the rename finds no pack and writes
   * its blob anew). The merged pack is younger than all of them, so no blob loses grace time. A
   * failure leaves the small packs as they are: the blobs are stored either way.
   */
  async #mergeRecent(): Promise<void> {
    const group = this.#recent;
    this.#recent = [];
    this.#recentRaw = 0;
    const seen = new Set<string>();
    const items: PackItem[] = [];
    for (const recent of group) {
      for (const item of recent.items) {
        const hex = item.hash.toString('hex');
        if (seen.has(hex)) continue;
        seen.add(hex);
        items.push(item);
      }
    }
    let merged: LoadedPack[];
    try {
      merged = await this.write(items);
    } catch {
      return;
    }
    const removed: string[] = [];
    for (const { pack, mtimeMs } of group) {
      // Synchronous metadata calls (no disk wait): a merge removes dozens of packs.
      const path = this.pathOf(pack);
      const trashed = join(this.#trashDir, `${pack.name}.${uniqueSuffix()}`);
      try {
        renameSync(path, trashed);
      } catch {
        continue; // gc holds it, or it is gone: not ours to decide any more
      }
      try {
        const after = statSync(trashed, { throwIfNoEntry: false });
        if (after === undefined) continue; // another process's open() put it back
        if (after.mtimeMs !== mtimeMs) {
          await this.#restore(trashed, path);
          continue;
        }
        unlinkSync(trashed);
        removed.push(pack.name);
      } catch {
        await this.#restore(trashed, path).catch(() => {});
      }
    }
    this.index.replace(removed, merged);
    this.#stamp = undefined;
  }

  async write(items: readonly PackItem[], mtime?: Date, mtimes?: number[]): Promise<LoadedPack[]> {
    const written: LoadedPack[] = [];
    for (let from = 0; from < items.length; from += MAX_PACK_ENTRIES) {
      const chunk = items.slice(from, from + MAX_PACK_ENTRIES);
      const { chunks, layout } = await buildPack(chunk, {
        level: this.#options.level,
        frameBytes: this.#options.frameBytes,
      });
      const name = `${Date.now().toString(36)}-${randomBytes(8).toString('hex')}.pack`;
      const temp = join(this.#tempDir, `${uniqueSuffix()}.tmp`);
      // Synchronous calls for what only touches the page cache and the directory (open, write,
      // close, rename: a few µs each), the callback API for what waits on the disk (fsync). The
      // promise-based FileHandle path costs ~3× the CPU (measured: ~500 vs ~160–210 µs per
      // durable small file on a 2-vCPU VM), which an agent recording one call at a time pays
      // on every call.
      try {
        const fd = openSync(temp, 'wx', 0o644);
        try {
          writeAll(fd, chunks, layout.fileSize);
          if (mtime !== undefined) futimesSync(fd, mtime, mtime);
          await fsyncAsync(fd);
          if (mtimes !== undefined) mtimes.push(fstatSync(fd).mtimeMs);
        } finally {
          closeSync(fd);
        }
        try {
          renameSync(temp, this.pathOf(name));
        } catch (error) {
          if (!isCode(error, 'ENOENT')) throw error; // packs/ was removed by hand
          mkdirSync(this.dir, { recursive: true });
          renameSync(temp, this.pathOf(name));
        }
      } catch (error) {
        try {
          unlinkSync(temp);
        } catch {}
        throw error;
      }
      written.push(this.index.add(name, layout));
    }
    if (written.length > 0) await fsyncDirFast(this.dir);
    return written;
  }

  /**
   * Marks a pack as just written (its mtime), which protects all its blobs from gc for a grace
   * period; false when the pack is gone (gc removed it: write the blobs again).
   */
  async refresh(pack: LoadedPack): Promise<boolean> {
    const path = this.pathOf(pack);
    const now = new Date();
    try {
      await utimes(path, now, now);
      // As for loose blobs: seeing the pack still there after utimes orders gc's rename (and its
      // second look at the mtime) after our refresh.
      await stat(path);
      return true;
    } catch (error) {
      // EPERM/EACCES: another user's pack; we cannot refresh it, so write our own copy.
      if (isCode(error, 'ENOENT')) {
        await this.scan(true); // forget it, and every other pack gone with it
        return false;
      }
      if (isCode(error, 'EPERM') || isCode(error, 'EACCES')) return false;
      throw error;
    }
  }

  /** The pack's file, when it still exists; when not, the packs are listed again (see scan). */
  async present(pack: LoadedPack): Promise<Stats | undefined> {
    const info = await statIfExists(this.pathOf(pack));
    if (info === undefined) await this.scan(true);
    return info;
  }

  /**
   * The verified bytes of a packed blob, or undefined when no loaded pack holds it. Throws
   * BlobCorruptError when every packed copy fails verification.
   */
  async read(hash: BlobHash, key: Buffer): Promise<Buffer | undefined> {
    let location = this.index.lookup(key);
    if (location === undefined) return undefined;
    let result = await this.#readAt(hash, location);
    if (result === 'gone') {
      // gc removed or rewrote the pack (and is done with its trash): look again.
      await this.scan(true);
      location = this.index.lookup(key);
      if (location === undefined) return undefined;
      result = await this.#readAt(hash, location);
      if (result === 'gone') return undefined;
    }
    if (!(result instanceof Error)) return result;
    // Another pack may hold a good copy.
    for (const other of this.index.locateAll(key)) {
      if (other.pack === location.pack) continue;
      const copy = await this.#readAt(hash, other);
      if (Buffer.isBuffer(copy)) return copy;
    }
    throw result;
  }

  async #readAt(hash: BlobHash, location: PackLocation): Promise<Buffer | BlobCorruptError | 'gone'> {
    const { pack, entry } = location;
    const { frame, offset, size } = entryAt(pack.layout, entry);
    let path = this.pathOf(pack);
    let raw: Buffer;
    try {
      raw = await this.#frame(pack, frame, path);
    } catch (error) {
      if (error instanceof FrameError)
        return new BlobCorruptError(hash, path, `frame ${frame}: ${error.message}`, { cause: error });
      if (!isCode(error, 'ENOENT')) throw error;
      // gc may be holding the pack in trash/ for a moment.
      const trashed = (await readdirIfExists(this.#trashDir, PACK_TRASH_NAME)).find((name) =>
        name.startsWith(`${pack.name}.`),
      );
      if (trashed === undefined) return 'gone';
      path = join(this.#trashDir, trashed);
      try {
        raw = await this.#frame(pack, frame, path);
      } catch (again) {
        if (again instanceof FrameError)
          return new BlobCorruptError(hash, path, `frame ${frame}: ${again.message}`, { cause: again });
        if (isCode(again, 'ENOENT')) return 'gone';
        throw again;
      }
    }
    const slice = raw.subarray(offset, offset + size);
    const actual = sha256Hex(slice);
    if (`sha256:${actual}` !== hash)
      return new BlobCorruptError(hash, path, `its content in frame ${frame} hashes to sha256:${actual}`);
    return Buffer.from(slice); // a copy: the caller may modify it, the cached frame stays intact
  }

  /** A frame's raw bytes, through a small LRU cache (bounded by bytes). */
  #frame(pack: LoadedPack, frame: number, path: string): Promise<Buffer> {
    const key = `${pack.name}#${frame}`;
    const cached = this.#frames.get(key);
    if (cached !== undefined) {
      this.#frames.delete(key);
      this.#frames.set(key, cached);
      return cached;
    }
    const { frameOffsets, frameLengths, frameSizes } = pack.layout;
    const loading = (async () => {
      const handle = await open(path, 'r');
      let compressed: Buffer;
      try {
        compressed = Buffer.allocUnsafe(frameLengths[frame]!);
        const { bytesRead } = await handle.read(compressed, 0, compressed.length, frameOffsets[frame]!);
        if (bytesRead !== compressed.length) throw new FrameError(`the pack file ends inside frame ${frame}`);
      } finally {
        await handle.close();
      }
      try {
        return await decodeFrame(compressed, frameSizes[frame]!);
      } catch (error) {
        throw new FrameError(`zstd: ${(error as Error).message}`, { cause: error });
      }
    })();
    const size = frameSizes[frame]!;
    this.#frames.set(key, loading);
    this.#frameSizes.set(key, size);
    this.#frameBytes += size;
    loading.catch(() => this.#dropFrame(key, loading));
    for (const [oldest, value] of this.#frames) {
      if (this.#frameBytes <= this.#options.cacheBytes || oldest === key) break;
      this.#dropFrame(oldest, value);
    }
    return loading;
  }

  #dropFrame(key: string, value: Promise<Buffer>): void {
    if (this.#frames.get(key) !== value) return;
    this.#frames.delete(key);
    this.#frameBytes -= this.#frameSizes.get(key) ?? 0;
    this.#frameSizes.delete(key);
  }

  clearCache(): void {
    this.#frames.clear();
    this.#frameSizes.clear();
    this.#frameBytes = 0;
  }

  /** Re-reads every pack file: damaged packs, and every blob whose copy fails verification. */
  async verify(): Promise<{
    checked: number;
    corrupt: Set<string>;
    damaged: { path: string; reason: string }[];
  }> {
    let checked = 0;
    const corrupt = new Set<string>();
    const damaged: { path: string; reason: string }[] = [];
    await forEachLimit(await readdirIfExists(this.dir, PACK_NAME), VERIFY_CONCURRENCY, async (name) => {
      const path = this.pathOf(name);
      const file = await readFileIfExists(path);
      if (file === undefined) return; // gc removed it meanwhile
      const layout = parsePack(file);
      if (typeof layout === 'string') {
        damaged.push({ path, reason: layout });
        return;
      }
      const raws: (Buffer | undefined)[] = [];
      for (let frame = 0; frame < layout.frameCount; frame++) {
        const start = layout.frameOffsets[frame]!;
        try {
          raws.push(
            await decodeFrame(
              file.subarray(start, start + layout.frameLengths[frame]!),
              layout.frameSizes[frame]!,
            ),
          );
        } catch {
          raws.push(undefined);
        }
      }
      for (let entry = 0; entry < layout.entryCount; entry++) {
        const { frame, offset, size } = entryAt(layout, entry);
        const hex = entryHex(layout, entry);
        const raw = raws[frame];
        if (raw === undefined || sha256Hex(raw.subarray(offset, offset + size)) !== hex) corrupt.add(hex);
        checked++;
      }
    });
    return { checked, corrupt, damaged: damaged.sort((a, b) => (a.path < b.path ? -1 : 1)) };
  }

  /**
   * The packed half of gc. A pack written or refreshed within the grace period is left alone.
   * An older pack: all garbage → removed; mostly garbage → its live blobs are written to a new
   * pack (complete before the old one goes), then it is removed; otherwise it stays as it is.
   * Removal renames the pack into trash/, then looks at its mtime again: a put that refreshed the
   * pack meanwhile shows there and the pack is put back (a put after the rename finds no pack and
   * writes its blob anew).
   */
  async gc(cutoff: number, tally: GcTally, hooks: PackGcHooks): Promise<void> {
    await this.scan(true);
    const removed: string[] = [];
    const small: MergeCandidate[] = [];
    for (const pack of this.index.packs()) {
      const path = this.pathOf(pack);
      const before = await statIfExists(path);
      if (before === undefined) continue;
      const { layout } = pack;
      const live: number[] = [];
      const garbage: number[] = [];
      let garbageBytes = 0;
      let totalBytes = 0;
      const inGrace = before.mtimeMs >= cutoff;
      const entries = Array.from({ length: layout.entryCount }, (_, entry) => entry);
      const referenced = new Array<boolean>(layout.entryCount);
      await forEachLimit(entries, REFERENCED_CONCURRENCY, async (entry) => {
        referenced[entry] = await tally.referenced(entryHex(layout, entry));
      });
      for (const entry of entries) {
        const { size } = entryAt(layout, entry);
        totalBytes += size;
        if (referenced[entry]) {
          live.push(entry);
        } else if (inGrace) {
          tally.mark(entryHex(layout, entry), GcTally.GRACE);
        } else {
          garbage.push(entry);
          garbageBytes += size;
        }
      }
      const mostlyLive = garbageBytes < totalBytes * this.#options.rewriteFraction;
      // An old small pack that would stay as it is: merged with others below (left by processes
      // that ended before merging their own).
      if (!inGrace && live.length > 0 && mostlyLive && totalBytes < this.#options.mergeBytes / 2) {
        small.push({ pack, before, live, garbage, raw: totalBytes });
        continue;
      }
      if (garbage.length === 0) continue;
      const keep = (flag: number): void => {
        for (const entry of garbage) tally.mark(entryHex(layout, entry), flag);
      };
      if (live.length > 0) {
        if (mostlyLive) {
          keep(GcTally.KEPT_IN_PACK);
          continue;
        }
        const items = await this.#readEntries(pack, live);
        if (items === undefined) {
          keep(GcTally.KEPT_IN_PACK); // a live blob does not verify: leave the pack for verify to report
          continue;
        }
        await this.write(items);
      }
      const outcome = await this.#trashPack(pack, before.mtimeMs, cutoff, garbage, hooks);
      if (outcome === 'kept') keep(GcTally.GRACE);
      if (outcome !== 'removed') continue;
      removed.push(pack.name);
      keep(GcTally.REMOVED);
    }
    const merged = await this.#mergeOld(small, cutoff, tally, hooks, removed);
    this.index.replace(removed, merged); // one pass over the map for all of them
    this.#stamp = undefined;
    this.clearCache();
  }

  /**
   * Merges old small packs (in name order, i.e. about the order they were written) into packs of
   * about `mergeBytes`, leaving out their garbage. The merged pack gets the newest mtime of its
   * sources, so that nothing gains or loses grace time; each source then goes through the trash
   * protocol (and stays, as a duplicate, if a put refreshed it meanwhile).
   */
  async #mergeOld(
    small: MergeCandidate[],
    cutoff: number,
    tally: GcTally,
    hooks: PackGcHooks,
    removed: string[],
  ): Promise<LoadedPack[]> {
    const keep = (candidate: MergeCandidate, flag: number): void => {
      for (const entry of candidate.garbage) tally.mark(entryHex(candidate.pack.layout, entry), flag);
    };
    small.sort((a, b) => (a.pack.name < b.pack.name ? -1 : 1));
    const groups: MergeCandidate[][] = [];
    let group: MergeCandidate[] = [];
    let bytes = 0;
    for (const candidate of small) {
      group.push(candidate);
      bytes += candidate.raw;
      if (bytes >= this.#options.mergeBytes) {
        groups.push(group);
        group = [];
        bytes = 0;
      }
    }
    groups.push(group);
    const written: LoadedPack[] = [];
    for (const members of groups) {
      const items: PackItem[] = [];
      let readable = members.length > 1;
      for (const { pack, live } of members) {
        if (!readable) break;
        const read = await this.#readEntries(pack, live);
        if (read === undefined) readable = false;
        else items.push(...read);
      }
      if (!readable) {
        for (const candidate of members) keep(candidate, GcTally.KEPT_IN_PACK);
        continue;
      }
      const seen = new Set<string>();
      const distinct = items.filter((item) => {
        const hex = item.hash.toString('hex');
        if (seen.has(hex)) return false;
        seen.add(hex);
        return true;
      });
      const newest = Math.max(...members.map((candidate) => candidate.before.mtimeMs));
      written.push(...(await this.write(distinct, new Date(newest))));
      for (const candidate of members) {
        const outcome = await this.#trashPack(
          candidate.pack,
          candidate.before.mtimeMs,
          cutoff,
          candidate.garbage,
          hooks,
        );
        if (outcome === 'removed') {
          removed.push(candidate.pack.name);
          keep(candidate, GcTally.REMOVED);
        } else if (outcome === 'kept') {
          keep(candidate, GcTally.GRACE);
        }
      }
    }
    return written;
  }

  /**
   * Removes a pack unless a put refreshed it: renamed into trash/, then its mtime looked at again
   * (a put before the rename shows there, and the pack is put back; a put after it finds no pack
   * and writes its blob anew).
   */
  async #trashPack(
    pack: LoadedPack,
    mtimeMs: number,
    cutoff: number,
    garbage: readonly number[],
    hooks: PackGcHooks,
  ): Promise<'removed' | 'kept' | 'gone'> {
    const path = this.pathOf(pack);
    const garbageHashes = garbage.map((entry): BlobHash => `sha256:${entryHex(pack.layout, entry)}`);
    await hooks.beforeTrashPack?.(pack.name, garbageHashes);
    const trashed = join(this.#trashDir, `${pack.name}.${uniqueSuffix()}`);
    try {
      await rename(path, trashed);
    } catch (error) {
      if (isCode(error, 'ENOENT')) return 'gone'; // another gc got there first
      throw error;
    }
    await hooks.afterTrashPack?.(pack.name, garbageHashes);
    const after = await statIfExists(trashed);
    if (after === undefined) return 'gone'; // another process's open() put it back
    if (after.mtimeMs !== mtimeMs || after.mtimeMs >= cutoff) {
      await this.#restore(trashed, path);
      return 'kept';
    }
    await unlink(trashed).catch(ignoreCode('ENOENT'));
    return 'removed';
  }

  /** The verified blobs of some entries of a pack, or undefined when one of them fails. */
  async #readEntries(pack: LoadedPack, entries: readonly number[]): Promise<PackItem[] | undefined> {
    const items: PackItem[] = [];
    for (const entry of entries) {
      const hex = entryHex(pack.layout, entry);
      const result = await this.#readAt(`sha256:${hex}`, { pack, entry });
      if (!Buffer.isBuffer(result)) return undefined;
      const base = entry * ENTRY_BYTES;
      items.push({ hash: Buffer.from(pack.layout.entries.subarray(base, base + 32)), bytes: result });
    }
    return items;
  }

  /** Moves a trashed pack back (pack names are unique, so nothing newer can be in its place). */
  async #restore(trashed: string, path: string): Promise<void> {
    try {
      await link(trashed, path);
      await fsyncDir(this.dir);
    } catch (error) {
      if (isCode(error, 'ENOENT')) {
        if ((await statIfExists(trashed)) === undefined) return; // someone else restored or removed it
        await mkdir(this.dir, { recursive: true });
        return this.#restore(trashed, path);
      }
      if (isCode(error, 'EPERM') || isCode(error, 'ENOTSUP')) {
        if ((await statIfExists(path)) === undefined) await rename(trashed, path).catch(ignoreCode('ENOENT'));
      } else if (!isCode(error, 'EEXIST')) {
        throw error;
      }
    }
    await unlink(trashed).catch(ignoreCode('ENOENT'));
    this.#stamp = undefined;
  }
}

/** Writes every chunk (writev may write less than asked). */
function writeAll(fd: number, chunks: readonly Buffer[], total: number): void {
  let written = writevSync(fd, chunks as Buffer[], 0);
  if (written === total) return;
  const whole = Buffer.concat(chunks as Buffer[]);
  while (written < total) written += writeSync(fd, whole, written, total - written, written);
}

/** fsyncDir with the cheap calls of write() (see there). */
async function fsyncDirFast(dir: string): Promise<void> {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch (error) {
    if (isCode(error, 'EISDIR') || isCode(error, 'EPERM')) return; // platforms that cannot open directories
    throw error;
  }
  try {
    await fsyncAsync(fd);
  } catch (error) {
    if (!isCode(error, 'EINVAL')) throw error; // filesystems that do not sync directories
  } finally {
    closeSync(fd);
  }
}
