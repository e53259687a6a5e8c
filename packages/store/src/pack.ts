import { promisify } from 'node:util';
import {
  crc32,
  constants as zlibConstants,
  zstdCompressSync,
  zstdDecompress,
  zstdDecompressSync,
} from 'node:zlib';

// The pack file format (docs/storage.md, "Packs"): many small blobs in one file, compressed in
// groups so that similar payloads compress against each other and zstd's fixed cost per call is
// paid per frame, not per blob. Pure code: building a pack in memory, checking and parsing its
// index, decoding a frame, and the in-memory index over every loaded pack. The files themselves
// are handled by pack-store.ts.
//
//   header   8 bytes   "RWPACK01"
//   frames             zstd frames back to back, each the concatenated bytes of a group of blobs
//   index              frameCount × {compressed length u32, raw length u32}
//                      entryCount × {sha256 32 bytes, frame u32, offset in frame u32, size u32},
//                      sorted by hash, no duplicates
//   footer  32 bytes   index offset u64, frameCount u32, entryCount u32,
//                      crc32 of (index + footer bytes 0..16) u32, reserved u32 (0), "RWPKEND1"
//
// All integers little-endian. A pack is read by its footer, then its index; a pack whose sizes do
// not add up to the file size, whose crc does not match, or whose index points outside its frames
// is damaged and is not loaded (verify reports it).

export const PACK_HEADER = Buffer.from('RWPACK01', 'latin1');
export const PACK_TRAILER_MAGIC = Buffer.from('RWPKEND1', 'latin1');
export const HEADER_BYTES = 8;
export const FOOTER_BYTES = 32;
export const FRAME_RECORD_BYTES = 8;
export const ENTRY_BYTES = 44;
/** Entries per pack at most (a bigger batch is written as several packs); also the location radix. */
export const MAX_PACK_ENTRIES = 1 << 20;
/** A frame never declares more raw bytes than this (a damaged index must not make us allocate gigabytes). */
export const MAX_FRAME_RAW_BYTES = 64 * 1024 * 1024;

// As for loose blobs: a bigger frame is decompressed on the thread pool, not the event loop.
const SYNC_DECOMPRESS_LIMIT = 128 * 1024;

const decompressAsync = promisify(zstdDecompress);

/** What a pack's index says, parsed. */
export interface PackLayout {
  frameCount: number;
  entryCount: number;
  /** File offset of each frame. */
  frameOffsets: Float64Array;
  /** Compressed length of each frame. */
  frameLengths: Uint32Array;
  /** Raw (decompressed) length of each frame. */
  frameSizes: Uint32Array;
  /** entryCount × ENTRY_BYTES, sorted by hash. */
  entries: Buffer;
  indexOffset: number;
  fileSize: number;
}

export interface PackItem {
  /** The 32 raw bytes of the blob's sha256. */
  hash: Buffer;
  bytes: Uint8Array;
}

export interface BuildOptions {
  /** zstd level. */
  level: number;
  /** Raw bytes per frame, about (a frame holds at least one blob). */
  frameBytes: number;
}

/**
 * Builds a pack of distinct blobs in memory: returns the file as chunks (header, frames, index +
 * footer) and its layout. Blobs are grouped into frames in the given order (callers put similar
 * payloads next to each other).
 */
export async function buildPack(
  items: readonly PackItem[],
  options: BuildOptions,
): Promise<{ chunks: Buffer[]; layout: PackLayout }> {
  if (items.length === 0 || items.length > MAX_PACK_ENTRIES)
    throw new RangeError(`a pack holds 1 to ${MAX_PACK_ENTRIES} blobs, not ${items.length}`);
  const groups: PackItem[][] = [];
  let group: PackItem[] = [];
  let groupBytes = 0;
  for (const item of items) {
    if (group.length > 0 && groupBytes + item.bytes.byteLength > options.frameBytes) {
      groups.push(group);
      group = [];
      groupBytes = 0;
    }
    group.push(item);
    groupBytes += item.bytes.byteLength;
  }
  groups.push(group);

  const entries = Buffer.allocUnsafe(items.length * ENTRY_BYTES);
  const order: number[] = [];
  const frames: Buffer[] = [];
  const rawSizes: number[] = [];
  let at = 0;
  for (const [frame, members] of groups.entries()) {
    // Synchronous zstd costs about a third less CPU than the thread pool's (measured on Node 24:
    // ~3.9 vs ~5–7 µs per KiB at level 3 on a 2-vCPU VM), and CPU is what capture pays for; one
    // frame (~1 MiB by default: a few ms) at a time, yielding to the event loop in between. The frame is
    // assembled in a reused buffer (no fresh pages to fault in) and compressed before yielding.
    if (frame > 0) await yieldToEventLoop();
    let offset = 0;
    for (const item of members) offset += item.bytes.byteLength;
    if (scratch.length < offset) scratch = Buffer.allocUnsafeSlow(Math.max(offset, 2 * scratch.length));
    offset = 0;
    for (const item of members) {
      const base = at * ENTRY_BYTES;
      const size = item.bytes.byteLength;
      item.hash.copy(entries, base, 0, 32);
      entries.writeUInt32LE(frame, base + 32);
      entries.writeUInt32LE(offset, base + 36);
      entries.writeUInt32LE(size, base + 40);
      scratch.set(item.bytes, offset);
      offset += size;
      order.push(at++);
    }
    frames.push(compressFrame(scratch.subarray(0, offset), options.level));
    rawSizes.push(offset);
  }

  // Sorted by hash: by the first 48 bits as numbers (cheap), the whole hash only on a tie.
  const prefixes = new Float64Array(items.length);
  for (let i = 0; i < items.length; i++) prefixes[i] = entries.readUIntBE(i * ENTRY_BYTES, 6);
  order.sort(
    (a, b) =>
      prefixes[a]! - prefixes[b]! ||
      entries.compare(entries, b * ENTRY_BYTES, b * ENTRY_BYTES + 32, a * ENTRY_BYTES, a * ENTRY_BYTES + 32),
  );
  const sorted = Buffer.allocUnsafe(entries.length);
  for (const [index, from] of order.entries()) {
    entries.copy(sorted, index * ENTRY_BYTES, from * ENTRY_BYTES, (from + 1) * ENTRY_BYTES);
    if (
      index > 0 &&
      sorted.compare(
        sorted,
        (index - 1) * ENTRY_BYTES,
        (index - 1) * ENTRY_BYTES + 32,
        index * ENTRY_BYTES,
        index * ENTRY_BYTES + 32,
      ) === 0
    )
      throw new RangeError('a pack cannot hold the same blob twice');
  }

  const frameCount = frames.length;
  const frameOffsets = new Float64Array(frameCount);
  const frameLengths = new Uint32Array(frameCount);
  const frameSizes = new Uint32Array(frameCount);
  let position = HEADER_BYTES;
  for (let i = 0; i < frameCount; i++) {
    frameOffsets[i] = position;
    frameLengths[i] = frames[i]!.byteLength;
    frameSizes[i] = rawSizes[i]!;
    position += frames[i]!.byteLength;
  }
  const indexOffset = position;
  const tail = Buffer.allocUnsafe(frameCount * FRAME_RECORD_BYTES + sorted.length + FOOTER_BYTES);
  for (let i = 0; i < frameCount; i++) {
    tail.writeUInt32LE(frameLengths[i]!, i * FRAME_RECORD_BYTES);
    tail.writeUInt32LE(frameSizes[i]!, i * FRAME_RECORD_BYTES + 4);
  }
  sorted.copy(tail, frameCount * FRAME_RECORD_BYTES);
  const footerAt = tail.length - FOOTER_BYTES;
  tail.writeBigUInt64LE(BigInt(indexOffset), footerAt);
  tail.writeUInt32LE(frameCount, footerAt + 8);
  tail.writeUInt32LE(items.length, footerAt + 12);
  tail.writeUInt32LE(crc32(tail.subarray(0, footerAt + 16)), footerAt + 16);
  tail.writeUInt32LE(0, footerAt + 20);
  PACK_TRAILER_MAGIC.copy(tail, footerAt + 24);
  const fileSize = indexOffset + tail.length;
  return {
    chunks: [PACK_HEADER, ...frames, tail],
    layout: {
      frameCount,
      entryCount: items.length,
      frameOffsets,
      frameLengths,
      frameSizes,
      entries: sorted,
      indexOffset,
      fileSize,
    },
  };
}

function compressFrame(raw: Buffer, level: number): Buffer {
  return zstdCompressSync(raw, {
    pledgedSrcSize: raw.byteLength,
    params: { [zlibConstants.ZSTD_c_compressionLevel]: level },
    // One output buffer rather than 16 KiB chunks concatenated.
    chunkSize: Math.max(raw.byteLength + (raw.byteLength >>> 7) + 1024, 64),
  });
}

/** Where frames are assembled before compression (reused: grows to the largest frame). */
let scratch = Buffer.allocUnsafeSlow(0);

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** What the footer says, or why the pack is damaged. */
export interface PackFooter {
  indexOffset: number;
  frameCount: number;
  entryCount: number;
  /** Length of the index (frame records and entries) that precedes the footer. */
  indexBytes: number;
}

export function parseFooter(footer: Buffer, fileSize: number): PackFooter | string {
  if (fileSize < HEADER_BYTES + FOOTER_BYTES) return `${fileSize} bytes is too short for a pack`;
  if (footer.length !== FOOTER_BYTES) return 'the footer could not be read whole';
  if (!footer.subarray(24, 32).equals(PACK_TRAILER_MAGIC)) return 'no pack footer at the end of the file';
  const indexOffset = Number(footer.readBigUInt64LE(0));
  const frameCount = footer.readUInt32LE(8);
  const entryCount = footer.readUInt32LE(12);
  const indexBytes = frameCount * FRAME_RECORD_BYTES + entryCount * ENTRY_BYTES;
  if (entryCount > MAX_PACK_ENTRIES || indexOffset + indexBytes + FOOTER_BYTES !== fileSize)
    return `the footer's sizes (${frameCount} frames, ${entryCount} blobs, index at ${indexOffset}) do not add up to the file size ${fileSize}`;
  return { indexOffset, frameCount, entryCount, indexBytes };
}

/** Checks the index (read from `footer.indexOffset`, `footer.indexBytes` long) and parses it. */
export function parseIndex(
  footerInfo: PackFooter,
  footer: Buffer,
  index: Buffer,
  fileSize: number,
): PackLayout | string {
  if (index.length !== footerInfo.indexBytes) return 'the index could not be read whole';
  const expected = crc32(footer.subarray(0, 16), crc32(index));
  if (footer.readUInt32LE(16) !== expected) return 'the index checksum does not match';
  const { frameCount, entryCount, indexOffset } = footerInfo;
  const frameOffsets = new Float64Array(frameCount);
  const frameLengths = new Uint32Array(frameCount);
  const frameSizes = new Uint32Array(frameCount);
  let position = HEADER_BYTES;
  for (let i = 0; i < frameCount; i++) {
    frameOffsets[i] = position;
    frameLengths[i] = index.readUInt32LE(i * FRAME_RECORD_BYTES);
    frameSizes[i] = index.readUInt32LE(i * FRAME_RECORD_BYTES + 4);
    if (frameSizes[i]! > MAX_FRAME_RAW_BYTES) return `frame ${i} claims ${frameSizes[i]} bytes`;
    position += frameLengths[i]!;
  }
  if (position !== indexOffset) return `the frames end at ${position}, the index starts at ${indexOffset}`;
  const entries = index.subarray(frameCount * FRAME_RECORD_BYTES);
  for (let e = 0; e < entryCount; e++) {
    const base = e * ENTRY_BYTES;
    const frame = entries.readUInt32LE(base + 32);
    const offset = entries.readUInt32LE(base + 36);
    const size = entries.readUInt32LE(base + 40);
    if (frame >= frameCount || offset + size > frameSizes[frame]!)
      return `blob ${e} of the index lies outside its frame`;
    if (e > 0 && entries.compare(entries, base - ENTRY_BYTES, base - ENTRY_BYTES + 32, base, base + 32) <= 0)
      return 'the index is not sorted';
  }
  return { frameCount, entryCount, frameOffsets, frameLengths, frameSizes, entries, indexOffset, fileSize };
}

/** Parses a whole pack file held in memory (verify, tests). */
export function parsePack(file: Buffer): PackLayout | string {
  const footer = file.subarray(Math.max(0, file.length - FOOTER_BYTES));
  const info = parseFooter(footer, file.length);
  if (typeof info === 'string') return info;
  if (!file.subarray(0, HEADER_BYTES).equals(PACK_HEADER)) return 'no pack header at the start of the file';
  return parseIndex(
    info,
    footer,
    file.subarray(info.indexOffset, info.indexOffset + info.indexBytes),
    file.length,
  );
}

/** Decompresses one frame; throws when zstd fails or the frame does not have the size the index says. */
export async function decodeFrame(compressed: Buffer, rawSize: number): Promise<Buffer> {
  const options = { maxOutputLength: Math.max(rawSize, 1), chunkSize: Math.max(rawSize, 64) };
  const raw =
    rawSize <= SYNC_DECOMPRESS_LIMIT
      ? zstdDecompressSync(compressed, options)
      : await decompressAsync(compressed, options);
  if (raw.byteLength !== rawSize)
    throw new Error(`the frame decompressed to ${raw.byteLength} bytes, the index says ${rawSize}`);
  return raw;
}

export interface EntryInfo {
  frame: number;
  offset: number;
  size: number;
}

export function entryAt(layout: PackLayout, entry: number): EntryInfo {
  const base = entry * ENTRY_BYTES;
  const { entries } = layout;
  return {
    frame: entries.readUInt32LE(base + 32),
    offset: entries.readUInt32LE(base + 36),
    size: entries.readUInt32LE(base + 40),
  };
}

export function entryHex(layout: PackLayout, entry: number): string {
  return layout.entries.toString('hex', entry * ENTRY_BYTES, entry * ENTRY_BYTES + 32);
}

/** A pack loaded into the index. */
export interface LoadedPack {
  name: string;
  slot: number;
  layout: PackLayout;
}

export interface PackLocation {
  pack: LoadedPack;
  entry: number;
}

/** Binary search of a pack's sorted index; the entry number or -1. */
export function findInPack(layout: PackLayout, hash: Buffer): number {
  let low = 0;
  let high = layout.entryCount - 1;
  while (low <= high) {
    const middle = (low + high) >>> 1;
    const cmp = hash.compare(layout.entries, middle * ENTRY_BYTES, middle * ENTRY_BYTES + 32);
    if (cmp === 0) return middle;
    if (cmp < 0) high = middle - 1;
    else low = middle + 1;
  }
  return -1;
}

/**
 * Every loaded pack and one map from hash to a location, kept compact: the key is the hash's
 * first 48 bits (a number, no string per blob), the value `slot × 2^20 + entry`; the full hash
 * is compared in the pack's own index buffer. Keys that collide keep a short list. A hash held by
 * several packs maps to the first one loaded; `locateAll` finds the others (binary search per pack).
 */
export class PackIndex {
  #packs: (LoadedPack | undefined)[] = [];
  readonly #byName = new Map<string, LoadedPack>();
  #map = new Map<number, number>();
  #overflow = new Map<number, number[]>();
  #distinct = 0;

  /** Distinct hashes held by the loaded packs. */
  get size(): number {
    return this.#distinct;
  }

  get(name: string): LoadedPack | undefined {
    return this.#byName.get(name);
  }

  packs(): LoadedPack[] {
    return [...this.#byName.values()];
  }

  add(name: string, layout: PackLayout): LoadedPack {
    const existing = this.#byName.get(name);
    if (existing !== undefined) return existing;
    const pack: LoadedPack = { name, slot: this.#packs.length, layout };
    this.#packs.push(pack);
    this.#byName.set(name, pack);
    for (let entry = 0; entry < layout.entryCount; entry++) this.#insert(pack, entry);
    return pack;
  }

  /** Drops packs (deleted from disk) and rebuilds the map, so hashes they shared with other packs stay found. */
  remove(names: Iterable<string>): void {
    let removed = false;
    for (const name of names) {
      const pack = this.#byName.get(name);
      if (pack === undefined) continue;
      this.#byName.delete(name);
      this.#packs[pack.slot] = undefined;
      removed = true;
    }
    if (!removed) return;
    this.#map = new Map();
    this.#overflow = new Map();
    this.#distinct = 0;
    for (const pack of this.#packs) {
      if (pack === undefined) continue;
      for (let entry = 0; entry < pack.layout.entryCount; entry++) this.#insert(pack, entry);
    }
  }

  /**
   * Drops packs whose blobs are all held by `by` (a merge of them), repointing their hashes
   * there without rebuilding the whole map; falls back to a rebuild when one is not.
   */
  replace(names: Iterable<string>, by: readonly LoadedPack[]): void {
    const rebuild: string[] = [];
    for (const name of names) {
      const pack = this.#byName.get(name);
      if (pack === undefined) continue;
      const { layout } = pack;
      let complete = true;
      for (let entry = 0; entry < layout.entryCount && complete; entry++) {
        const hash = layout.entries.subarray(entry * ENTRY_BYTES, entry * ENTRY_BYTES + 32);
        const key = hash.readUIntBE(0, 6);
        const from = pack.slot * MAX_PACK_ENTRIES + entry;
        const value = this.#map.get(key);
        if (value !== from && (value === undefined || value >= 0 || !this.#overflow.get(key)!.includes(from)))
          continue; // the map points at another pack's copy
        let to: number | undefined;
        for (const other of by) {
          const found = findInPack(other.layout, hash);
          if (found >= 0) {
            to = other.slot * MAX_PACK_ENTRIES + found;
            break;
          }
        }
        if (to === undefined) complete = false;
        else if (value === from) this.#map.set(key, to);
        else {
          const list = this.#overflow.get(key)!;
          list[list.indexOf(from)] = to;
        }
      }
      if (!complete) {
        rebuild.push(name);
        continue;
      }
      this.#byName.delete(name);
      this.#packs[pack.slot] = undefined;
    }
    this.remove(rebuild);
  }

  lookup(hash: Buffer): PackLocation | undefined {
    const key = hash.readUIntBE(0, 6);
    const value = this.#map.get(key);
    if (value === undefined) return undefined;
    if (value >= 0) return this.#matches(value, hash, 0);
    for (const location of this.#overflow.get(key)!) {
      const found = this.#matches(location, hash, 0);
      if (found !== undefined) return found;
    }
    return undefined;
  }

  /** Every loaded pack that holds `hash` (the slow path, for reading around a damaged copy). */
  locateAll(hash: Buffer): PackLocation[] {
    const found: PackLocation[] = [];
    for (const pack of this.#packs) {
      if (pack === undefined) continue;
      const entry = findInPack(pack.layout, hash);
      if (entry >= 0) found.push({ pack, entry });
    }
    return found;
  }

  #matches(location: number, hash: Buffer, hashAt: number): PackLocation | undefined {
    const pack = this.#packs[Math.floor(location / MAX_PACK_ENTRIES)]!;
    const entry = location % MAX_PACK_ENTRIES;
    const base = entry * ENTRY_BYTES;
    return pack.layout.entries.compare(hash, hashAt, hashAt + 32, base, base + 32) === 0
      ? { pack, entry }
      : undefined;
  }

  #insert(pack: LoadedPack, entry: number): void {
    const entries = pack.layout.entries;
    const base = entry * ENTRY_BYTES;
    const key = entries.readUIntBE(base, 6);
    const location = pack.slot * MAX_PACK_ENTRIES + entry;
    const current = this.#map.get(key);
    if (current === undefined) {
      this.#map.set(key, location);
      this.#distinct++;
      return;
    }
    if (current >= 0) {
      if (this.#matches(current, entries, base) !== undefined) return; // already held by another pack
      this.#map.set(key, -1);
      this.#overflow.set(key, [current, location]);
      this.#distinct++;
      return;
    }
    const list = this.#overflow.get(key)!;
    if (list.some((other) => this.#matches(other, entries, base) !== undefined)) return;
    list.push(location);
    this.#distinct++;
  }
}
