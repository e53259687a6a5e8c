import { randomBytes } from 'node:crypto';
import { type FileHandle, mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { BlobHash, RewindEvent } from '@rewind/schema';

// The exporter's local spool (docs/sdk.md, "Export"): what could not be delivered — events and
// the blob bytes they need — written to append-only files, so that a server outage or a process
// exiting at a deadline loses nothing; any later exporter using the same directory delivers it.
//
// A file is a sequence of records: the 4 bytes `RWS1`, a big-endian uint32 payload length, the
// CRC-32 of the payload (uint32 BE), then the payload, whose first byte says what it is:
//   `B` a blob: the 71 ASCII bytes `sha256:<hex>`, then its bytes;
//   `E` a group of events: UTF-8 JSON `{"owner", "events", "uses"}` (`uses[i]`: the blobs event i
//       references), written after the blobs of the group.
// A record that is cut short (a crash mid-write) or fails its CRC is skipped: reading resumes at
// the next `RWS1` after it, so a torn tail never poisons the records before it.
//
// Files are named `<ms>-<pid>-<hex>` plus a state (and `+<offset>`, the bytes already delivered):
//   `.open`        being appended to by its writer (pid); sealed (renamed `.spool`) when the writer
//                  closes it, drains it itself, or is found dead;
//   `.spool`       sealed, waiting for any exporter to deliver it;
//   `.claim-<pid>` being delivered by that process; put back (`.spool`, with the new offset) when
//                  it stops, deleted when everything in it is delivered; put back by anyone when
//                  that process is dead.
// Renames are atomic, so two exporters never deliver one file at the same time.

export const SPOOL_MAGIC = Buffer.from('RWS1', 'latin1');
const HEADER = 12;
const BLOB = 0x42;
const EVENTS = 0x45;
/** A writer starts a new file beyond this size, so a reader holds at most this much at once. */
const SEGMENT_BYTES = 64 * 1024 * 1024;
const NAME = /^(\d+-(\d+)-[0-9a-f]+)(?:\+(\d+))?\.(open|spool|claim-(\d+))$/;

export interface SpoolGroup {
  /** The id of the exporter that produced the events (it counts them when it delivers them). */
  owner: string;
  events: RewindEvent[];
  uses: BlobHash[][];
  /** The blobs written with the group. */
  blobs: Map<BlobHash, Buffer>;
}

function record(payload: Buffer): Buffer {
  const header = Buffer.allocUnsafe(HEADER);
  SPOOL_MAGIC.copy(header, 0);
  header.writeUInt32BE(payload.length, 4);
  header.writeUInt32BE(crc32(payload), 8);
  return Buffer.concat([header, payload]);
}

/** The bytes of one group: its blobs' records, then its events' record. */
export function encodeGroup(group: SpoolGroup): Buffer {
  const records: Buffer[] = [];
  for (const [hash, bytes] of group.blobs) {
    const payload = Buffer.allocUnsafe(1 + hash.length + bytes.length);
    payload[0] = BLOB;
    payload.write(hash, 1, 'latin1');
    payload.set(bytes, 1 + hash.length);
    records.push(record(payload));
  }
  const json = Buffer.from(
    `E${JSON.stringify({ owner: group.owner, events: group.events, uses: group.uses })}`,
    'utf8',
  );
  records.push(record(json));
  return Buffer.concat(records);
}

export interface ReadGroup extends SpoolGroup {
  /** The offset just after the group's events record: where reading resumes once it is delivered. */
  end: number;
}

export interface SpoolReadResult {
  groups: ReadGroup[];
  /** Bytes skipped because a record was torn or failed its check. */
  skipped: number;
}

/** Reads the groups of a spool file from `offset`, skipping damaged records. */
export function decodeGroups(file: Buffer, offset = 0): SpoolReadResult {
  const groups: ReadGroup[] = [];
  let blobs = new Map<BlobHash, Buffer>();
  let skipped = 0;
  let at = offset;
  const resync = (): void => {
    const next = file.indexOf(SPOOL_MAGIC, at + 1);
    const to = next < 0 ? file.length : next;
    skipped += to - at;
    at = to;
  };
  while (at < file.length) {
    if (file.length - at < HEADER || file.compare(SPOOL_MAGIC, 0, 4, at, at + 4) !== 0) {
      resync();
      continue;
    }
    const length = file.readUInt32BE(at + 4);
    const start = at + HEADER;
    if (length < 1 || file.length - start < length) {
      resync();
      continue;
    }
    const payload = file.subarray(start, start + length);
    if (crc32(payload) !== file.readUInt32BE(at + 8)) {
      resync();
      continue;
    }
    if (payload[0] === BLOB && length >= 72) {
      blobs.set(payload.toString('latin1', 1, 72) as BlobHash, payload.subarray(72));
    } else if (payload[0] === EVENTS) {
      try {
        const parsed = JSON.parse(payload.toString('utf8', 1)) as Omit<SpoolGroup, 'blobs'>;
        groups.push({
          owner: parsed.owner,
          events: parsed.events,
          uses: parsed.uses,
          blobs,
          end: start + length,
        });
      } catch {
        skipped += HEADER + length;
      }
      blobs = new Map();
    } else {
      skipped += HEADER + length;
    }
    at = start + length;
  }
  return { groups, skipped };
}

/**
 * The files this process has open or claimed (across spools and copies of the SDK): a file named
 * with our pid but not in here was left by an earlier process that had the same pid (pid 1 in a
 * container, every time).
 */
const LIVE: Map<string, number> = (() => {
  const holder = globalThis as Record<symbol, Map<string, number> | undefined>;
  const key = Symbol.for('rewind.spool.live.v1');
  const live = holder[key] ?? new Map<string, number>();
  holder[key] = live;
  return live;
})();

/** Counted: two claimers of one file race, and the loser's retreat must not unmark the winner's. */
function hold(base: string): void {
  LIVE.set(base, (LIVE.get(base) ?? 0) + 1);
}

function unhold(base: string): void {
  const count = (LIVE.get(base) ?? 0) - 1;
  if (count > 0) LIVE.set(base, count);
  else LIVE.delete(base);
}

function isAlive(pid: number, base: string): boolean {
  if (pid === process.pid) return LIVE.has(base);
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function newBase(): string {
  return `${String(Date.now()).padStart(13, '0')}-${process.pid}-${randomBytes(6).toString('hex')}`;
}

function nameOf(base: string, offset: number, state: string): string {
  return `${base}${offset > 0 ? `+${offset}` : ''}.${state}`;
}

/** A spool file this process is delivering: read it, then `release` it (with progress) or `finish` it. */
export class SpoolClaim {
  readonly #dir: string;
  readonly base: string;
  #path: string;
  /** Bytes of the file already delivered (by anyone): reading starts here. */
  readonly offset: number;

  constructor(dir: string, base: string, offset: number, path: string) {
    this.#dir = dir;
    this.base = base;
    this.offset = offset;
    this.#path = path;
  }

  read(): Promise<Buffer> {
    return readFile(this.#path);
  }

  /** Puts the file back for later, everything before `offset` delivered. */
  async release(offset: number): Promise<void> {
    try {
      await rename(this.#path, join(this.#dir, nameOf(this.base, offset, 'spool')));
    } finally {
      unhold(this.base);
    }
  }

  /** Everything in the file is delivered: deletes it. Returns its size. */
  async finish(): Promise<number> {
    try {
      const size = (await stat(this.#path).catch(() => undefined))?.size ?? 0;
      await unlink(this.#path);
      return size;
    } finally {
      unhold(this.base);
    }
  }
}

export interface SpoolFileInfo {
  name: string;
  state: 'open' | 'spool' | 'claim';
  bytes: number;
}

export class Spool {
  readonly dir: string;
  readonly #maxBytes: number;
  /** Files this spool wrote: a process delivers its own files first. */
  readonly #own = new Set<string>();
  #segment: { base: string; handle: FileHandle; bytes: number } | undefined;
  /** Appends and seals run one at a time, in call order. */
  #chain: Promise<unknown> = Promise.resolve();
  #approxBytes: number | undefined;

  constructor(dir: string, options: { maxBytes?: number } = {}) {
    this.dir = dir;
    this.#maxBytes = options.maxBytes ?? 1024 * 1024 * 1024;
  }

  #serial<T>(task: () => Promise<T>): Promise<T> {
    const next = this.#chain.then(task, task);
    this.#chain = next.catch(() => {});
    return next;
  }

  /**
   * Appends one group durably (written and fdatasync'ed when it resolves). Rejects when the
   * disk refuses, or with a `SpoolFullError` when the spool holds `maxBytes` already.
   */
  append(group: SpoolGroup): Promise<void> {
    const bytes = encodeGroup(group);
    return this.#serial(async () => {
      if (this.#approxBytes === undefined) this.#approxBytes = await this.#size();
      if (this.#approxBytes + bytes.length > this.#maxBytes)
        throw new SpoolFullError(
          `the spool ${this.dir} holds ${this.#approxBytes} bytes, its limit (${this.#maxBytes}) is reached`,
        );
      if (this.#segment !== undefined && this.#segment.bytes >= SEGMENT_BYTES) await this.#sealNow();
      if (this.#segment === undefined) {
        await mkdir(this.dir, { recursive: true });
        const base = newBase();
        hold(base);
        const handle = await open(join(this.dir, nameOf(base, 0, 'open')), 'a');
        this.#segment = { base, handle, bytes: 0 };
        this.#own.add(base);
      }
      const segment = this.#segment;
      await segment.handle.write(bytes);
      await segment.handle.datasync();
      segment.bytes += bytes.length;
      this.#approxBytes += bytes.length;
    });
  }

  async #size(): Promise<number> {
    return (await this.files()).reduce((sum, file) => sum + file.bytes, 0);
  }

  /** Closes the file being appended to and makes it deliverable. */
  seal(): Promise<void> {
    return this.#serial(() => this.#sealNow());
  }

  async #sealNow(): Promise<void> {
    const segment = this.#segment;
    if (segment === undefined) return;
    this.#segment = undefined;
    try {
      await segment.handle.close();
      await rename(
        join(this.dir, nameOf(segment.base, 0, 'open')),
        join(this.dir, nameOf(segment.base, 0, 'spool')),
      );
    } finally {
      unhold(segment.base);
    }
  }

  /** Whether this spool has written a file it has not sealed yet. */
  get hasOpenSegment(): boolean {
    return this.#segment !== undefined;
  }

  /** The spool's files, oldest first (missing directory: none). */
  async files(): Promise<SpoolFileInfo[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const files: SpoolFileInfo[] = [];
    for (const name of names.sort()) {
      const match = NAME.exec(name);
      if (match === null) continue;
      const bytes = (await stat(join(this.dir, name)).catch(() => undefined))?.size;
      if (bytes === undefined) continue;
      const state = match[4]!.startsWith('claim') ? 'claim' : (match[4] as 'open' | 'spool');
      files.push({ name, state, bytes });
    }
    return files;
  }

  /**
   * Claims the next deliverable file (this spool's own first, then the oldest), after putting
   * back the files of dead writers and claimers. Undefined when there is none.
   */
  async claimNext(): Promise<SpoolClaim | undefined> {
    let names: string[];
    try {
      names = (await readdir(this.dir)).sort();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    const ready: Array<{ base: string; offset: number; name: string }> = [];
    for (const name of names) {
      const match = NAME.exec(name);
      if (match === null) continue;
      const base = match[1]!;
      const offset = Number(match[3] ?? 0);
      const state = match[4]!;
      try {
        if (state === 'open') {
          if (isAlive(Number(match[2]), base)) continue;
          const sealed = nameOf(base, offset, 'spool');
          await rename(join(this.dir, name), join(this.dir, sealed));
          ready.push({ base, offset, name: sealed });
        } else if (state === 'spool') {
          ready.push({ base, offset, name });
        } else if (!isAlive(Number(match[5]), base)) {
          const back = nameOf(base, offset, 'spool');
          await rename(join(this.dir, name), join(this.dir, back));
          ready.push({ base, offset, name: back });
        }
      } catch {
        // another exporter got there first
      }
    }
    ready.sort((a, b) => Number(this.#own.has(b.base)) - Number(this.#own.has(a.base)));
    for (const file of ready) {
      const claimed = join(this.dir, nameOf(file.base, file.offset, `claim-${process.pid}`));
      hold(file.base);
      try {
        await rename(join(this.dir, file.name), claimed);
      } catch {
        unhold(file.base);
        continue; // claimed by someone else meanwhile
      }
      return new SpoolClaim(this.dir, file.base, file.offset, claimed);
    }
    return undefined;
  }

  /** Forgets `bytes` from the size estimate (a delivered file was deleted). */
  delivered(bytes: number): void {
    if (this.#approxBytes !== undefined) this.#approxBytes = Math.max(0, this.#approxBytes - bytes);
  }

  /** Seals the file being written. */
  close(): Promise<void> {
    return this.seal();
  }
}

export class SpoolFullError extends Error {
  override readonly name = 'SpoolFullError';
  readonly code = 'spool_full';
}
