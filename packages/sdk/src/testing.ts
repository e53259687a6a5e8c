import { hash } from 'node:crypto';
import { type BlobHash, isBlobPointer, type RewindEvent, validateEvent } from '@rewind/schema';
import type { AppendResult, BlobStore, Store } from '@rewind/store';

// Test helpers (not exported from the package): an in-memory Store that validates events like
// the real ones, and ways to make a store fail or hang.

export class MemoryStore implements Store {
  readonly location = 'memory';
  readonly events: RewindEvent[] = [];
  readonly blobMap = new Map<BlobHash, Uint8Array>();
  /** Every blob put and event appended, in order, to check blobs come before their events. */
  readonly log: Array<{ op: 'put'; hash: BlobHash } | { op: 'append'; eventId: string }> = [];
  closed = false;
  readonly blobs: BlobStore;

  constructor() {
    const blobMap = this.blobMap;
    const log = this.log;
    this.blobs = {
      location: 'memory',
      async put(bytes: Uint8Array): Promise<BlobHash> {
        const hex = hash('sha256', bytes, 'hex');
        const key: BlobHash = `sha256:${hex}`;
        blobMap.set(key, new Uint8Array(bytes));
        log.push({ op: 'put', hash: key });
        return key;
      },
      async get(key: BlobHash): Promise<Uint8Array> {
        const bytes = blobMap.get(key);
        if (bytes === undefined) throw new Error(`no blob ${key}`);
        return bytes;
      },
      async has(key: BlobHash): Promise<boolean> {
        return blobMap.has(key);
      },
      async missing(hashes: readonly BlobHash[]): Promise<BlobHash[]> {
        return hashes.filter((key) => !blobMap.has(key));
      },
    } as BlobStore;
  }

  async append(events: readonly unknown[]): Promise<AppendResult> {
    const result: AppendResult = { accepted: 0, duplicates: 0, rejected: 0, outcomes: [] };
    for (const event of events) {
      const checked = validateEvent(event);
      const eventId = String((event as { eventId?: unknown }).eventId);
      if (!checked.ok) {
        result.rejected++;
        result.outcomes.push({ eventId, status: 'rejected', reason: JSON.stringify(checked.issues) });
        continue;
      }
      if (this.events.some((e) => e.eventId === eventId)) {
        result.duplicates++;
        result.outcomes.push({ eventId, status: 'duplicate' });
        continue;
      }
      this.events.push(checked.value);
      this.log.push({ op: 'append', eventId });
      result.accepted++;
      result.outcomes.push({ eventId, status: 'accepted' });
    }
    return result;
  }

  /** A stored JSON payload with its parts inlined. */
  payload(key: BlobHash): unknown {
    const bytes = this.blobMap.get(key);
    if (bytes === undefined) throw new Error(`no blob ${key}`);
    const inline = (value: unknown): unknown => {
      if (typeof value !== 'object' || value === null) return value;
      if (isBlobPointer(value)) return this.payload(value.$blob);
      if (Array.isArray(value)) return value.map(inline);
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, inline(v)]));
    };
    return inline(JSON.parse(Buffer.from(bytes).toString('utf8')));
  }

  eventsOf(runId: string): RewindEvent[] {
    return this.events.filter((event) => event.runId === runId);
  }

  listRuns(): never {
    throw new Error('not implemented');
  }
  getRun(): never {
    throw new Error('not implemented');
  }
  readTimeline(): never {
    throw new Error('not implemented');
  }
  getStep(): never {
    throw new Error('not implemented');
  }
  async readEvents(runId: string): Promise<RewindEvent[]> {
    return this.eventsOf(runId);
  }
  referencedBlobs(): never {
    throw new Error('not implemented');
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

export function enospc(): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error('ENOSPC: no space left on device, write');
  error.code = 'ENOSPC';
  error.errno = -28;
  error.syscall = 'write';
  return error;
}

/** A store whose writes fail like a full disk: every blob put and every append rejects with ENOSPC. */
export function fullDiskStore(inner: Store = new MemoryStore()): Store & { attempts: number } {
  const store = Object.create(inner) as Store & { attempts: number };
  store.attempts = 0;
  const blobs = Object.create(inner.blobs) as BlobStore;
  blobs.put = async () => {
    store.attempts++;
    throw enospc();
  };
  Object.defineProperty(store, 'blobs', { value: blobs });
  store.append = async () => {
    store.attempts++;
    throw enospc();
  };
  return store;
}

/** A store whose appends (and, with `blobs: true`, blob puts) never settle. */
export function hangingStore(inner: Store = new MemoryStore(), options: { blobs?: boolean } = {}): Store {
  const store = Object.create(inner) as Store;
  const never = new Promise<never>(() => {});
  if (options.blobs === true) {
    const blobs = Object.create(inner.blobs) as BlobStore;
    blobs.put = () => never;
    Object.defineProperty(store, 'blobs', { value: blobs });
  }
  store.append = () => never;
  store.close = () => never;
  return store;
}
