import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { zstdCompressSync } from 'node:zlib';
import { type BlobHash, blobHashOf } from '@rewind/schema';
import {
  BlobCorruptError,
  BlobHashMismatchError,
  BlobNotFoundError,
  InvalidBlobHashError,
} from '../blob-errors.ts';
import type { BlobStore } from '../blob-store.ts';

// THE contract of a BlobStore (SPEC §7): what every implementation (filesystem, S3) guarantees.
// Layout-specific behaviour (packs, temp files, crash recovery, gc races) is tested next to each
// implementation. `open` must return a new, EMPTY store each time it is called; the suite closes
// what it opens.

export interface BlobContractHarness {
  open(): Promise<BlobStore>;
  /**
   * Replaces the stored (zstd-compressed) representation of `hash` in `store` by what `damage`
   * returns for it: how the suite simulates bit rot and tampering.
   */
  damage(store: BlobStore, hash: BlobHash, damage: (stored: Uint8Array) => Uint8Array): Promise<void>;
}

const DAY = 24 * 60 * 60 * 1000;
const text = (value: string): Uint8Array => new TextEncoder().encode(value);
const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** JSON-ish text that compresses like real payloads and is unique per `seed`. */
export function jsonishBlob(seed: string, size: number): Uint8Array {
  let out = `{"seed":${JSON.stringify(seed)},"messages":[`;
  for (let i = 0; out.length < size; i++) out += `{"role":"user","text":"word ${i} of ${seed}"},`;
  return text(`${out.slice(0, Math.max(0, size - 2))}]}`.slice(0, size));
}

function flipAt(at: (length: number) => number): (stored: Uint8Array) => Uint8Array {
  return (stored) => {
    const copy = new Uint8Array(stored);
    const index = at(copy.length);
    copy[index] = copy[index]! ^ 0x5a;
    return copy;
  };
}

export function runBlobStoreContract(name: string, harness: BlobContractHarness): void {
  describe(`BlobStore contract: ${name}`, () => {
    const opened: BlobStore[] = [];
    after(async () => {
      for (const store of opened) await store.close();
    });
    const open = async (): Promise<BlobStore> => {
      const store = await harness.open();
      opened.push(store);
      return store;
    };

    test('round-trips empty, small and large blobs; stat gives the uncompressed size', async () => {
      const store = await open();
      for (const size of [0, 1, 2048, 40 * 1024, 300 * 1024, 3 * 1024 * 1024]) {
        const bytes = size > 100_000 ? randomBytes(size) : jsonishBlob(`size-${size}`, size);
        const hash = await store.put(bytes);
        assert.equal(hash, blobHashOf(bytes));
        assert.deepEqual(new Uint8Array(await store.get(hash)), new Uint8Array(bytes), `size ${size}`);
        const info = await store.stat(hash);
        assert.equal(info?.hash, hash);
        assert.equal(info?.size, bytes.length, `stat size ${size}`);
      }
    });

    test('a returned blob is a copy: changing it changes nothing stored', async () => {
      const store = await open();
      const bytes = jsonishBlob('copy', 3000);
      const hash = await store.put(bytes);
      (await store.get(hash)).fill(0);
      assert.deepEqual(new Uint8Array(await store.get(hash)), bytes);
    });

    test('put is idempotent, and a re-put refreshes writtenAt', async () => {
      const store = await open();
      const bytes = jsonishBlob('again', 3000);
      const hash = await store.put(bytes);
      const first = (await store.stat(hash))!.writtenAt;
      assert.ok(Math.abs(first - Date.now()) < 60_000, 'writtenAt is a recent epoch-ms time');
      // S3's LastModified has one-second resolution.
      await wait(1100);
      assert.equal(await store.put(bytes), hash);
      const second = (await store.stat(hash))!.writtenAt;
      assert.ok(second > first, `re-put refreshed writtenAt (${first} → ${second})`);
      const listed: BlobHash[] = [];
      for await (const listedHash of store.list()) listed.push(listedHash);
      assert.deepEqual(listed, [hash], 'stored once');
    });

    test('putVerified stores matching bytes and rejects others, storing nothing', async () => {
      const store = await open();
      const bytes = jsonishBlob('verified', 1000);
      const wrongHash = blobHashOf(text('something else'));
      await assert.rejects(store.putVerified(wrongHash, bytes), (error) => {
        assert.ok(BlobHashMismatchError.isInstance(error));
        assert.equal(error.code, 'blob_hash_mismatch');
        assert.equal(error.hash, wrongHash);
        assert.equal(error.actual, blobHashOf(bytes));
        return true;
      });
      assert.deepEqual(await store.missing([wrongHash, blobHashOf(bytes)]), [wrongHash, blobHashOf(bytes)]);
      await store.putVerified(blobHashOf(bytes), bytes);
      assert.deepEqual(new Uint8Array(await store.get(blobHashOf(bytes))), bytes);
    });

    test('putMany returns hashes in input order, stores duplicates once, and reads back', async () => {
      const store = await open();
      const blobs = Array.from({ length: 120 }, (_, i) => jsonishBlob(`many-${i}`, 200 + (i % 9) * 300));
      blobs.push(jsonishBlob('many-big', 2 * 1024 * 1024));
      const hashes = await store.putMany([...blobs, blobs[3]!, blobs[3]!]);
      assert.deepEqual(hashes, [...blobs, blobs[3]!, blobs[3]!].map(blobHashOf));
      for (const [i, hash] of hashes.slice(0, blobs.length).entries())
        assert.deepEqual(new Uint8Array(await store.get(hash)), blobs[i]);
      const listed: BlobHash[] = [];
      for await (const hash of store.list()) listed.push(hash);
      assert.deepEqual(listed, [...new Set(hashes)].sort());
      // Again: idempotent.
      assert.deepEqual(await store.putMany(blobs), hashes.slice(0, blobs.length));
      assert.deepEqual(await store.putMany([]), []);
    });

    test('putMany with precomputed hashes uses them; a length mismatch is a RangeError', async () => {
      const store = await open();
      const blobs = [jsonishBlob('given-0', 500), jsonishBlob('given-1', 700)];
      const given = blobs.map(blobHashOf);
      assert.deepEqual(await store.putMany(blobs, { hashes: given }), given);
      assert.deepEqual(await store.missing(given), []);
      await assert.rejects(store.putMany(blobs, { hashes: given.slice(1) }), RangeError);
    });

    test('an absent blob is BlobNotFoundError carrying the hash', async () => {
      const store = await open();
      const hash = blobHashOf(text('never stored'));
      await assert.rejects(store.get(hash), (error) => {
        assert.ok(BlobNotFoundError.isInstance(error));
        assert.equal(error.code, 'blob_not_found');
        assert.equal(error.hash, hash);
        return true;
      });
      assert.equal(await store.stat(hash), undefined);
      assert.equal(await store.has(hash), false);
    });

    const damages: [string, (stored: Uint8Array) => Uint8Array][] = [
      ['one byte flipped in the data', flipAt((length) => Math.floor(length / 2))],
      ['one byte flipped in the last byte', flipAt((length) => length - 1)],
      ['one byte flipped in the magic number', flipAt(() => 0)],
      ['one byte flipped in the content size', flipAt(() => 6)],
      ['truncated', (stored) => stored.subarray(0, 20)],
      ['emptied', () => new Uint8Array(0)],
      ['replaced by a valid frame of other bytes', () => zstdCompressSync(jsonishBlob('other', 4000))],
      ['replaced by raw, uncompressed bytes', () => jsonishBlob('raw', 4000)],
    ];
    for (const [what, damage] of damages) {
      test(`a stored copy ${what} is BlobCorruptError, never wrong bytes`, async () => {
        const store = await open();
        const hash = await store.put(jsonishBlob(what, 4000));
        await harness.damage(store, hash, damage);
        await assert.rejects(store.get(hash), (error) => {
          assert.ok(BlobCorruptError.isInstance(error), String(error));
          assert.equal(error.code, 'blob_corrupt');
          assert.equal(error.hash, hash);
          assert.match(error.message, /rewind verify/);
          return true;
        });
      });
    }

    test('verify re-hashes every blob and reports the corrupt ones', async () => {
      const store = await open();
      const hashes = await Promise.all(
        Array.from({ length: 30 }, (_, i) => store.put(jsonishBlob(`verify-${i}`, 3000))),
      );
      const damaged = [hashes[3]!, hashes[17]!].sort();
      for (const hash of damaged)
        await harness.damage(
          store,
          hash,
          flipAt((length) => Math.floor(length / 2)),
        );
      assert.deepEqual(await store.verify(), { checked: 30, corrupt: damaged, damagedPacks: [] });
    });

    test('has, missing, stat and list answer for many hashes', async () => {
      const store = await open();
      const stored = await store.putMany(
        Array.from({ length: 150 }, (_, i) => jsonishBlob(`present-${i}`, 500)),
      );
      const absent = Array.from({ length: 60 }, (_, i) => blobHashOf(text(`absent-${i}`)));
      const mixed = [...stored, ...absent].sort();
      assert.deepEqual(
        await store.missing([...mixed, absent[0]!]),
        [...mixed.filter((hash) => absent.includes(hash)), absent[0]!],
        'in input order, duplicates kept',
      );
      assert.deepEqual(await store.missing([]), []);
      assert.equal(await store.has(stored[0]!), true);
      assert.equal(await store.has(absent[0]!), false);
      assert.equal(await store.stat(absent[0]!), undefined);
      const listed: BlobHash[] = [];
      for await (const hash of store.list()) listed.push(hash);
      assert.deepEqual(listed, [...stored].sort());
    });

    test('every method refuses a malformed hash with InvalidBlobHashError', async () => {
      const store = await open();
      const bad: unknown[] = [
        '../../../../etc/passwd',
        'sha256:../../../../etc/passwd',
        `sha256:${'a'.repeat(62)}/..`,
        `sha256:${'A'.repeat(64)}`,
        `sha256:${'a'.repeat(63)}`,
        `sha256:${'a'.repeat(64)}\n`,
        `sha256:${'a'.repeat(64)}\0`,
        `md5:${'a'.repeat(64)}`,
        '',
        undefined,
        42,
      ];
      for (const value of bad) {
        const hash = value as BlobHash;
        const calls: [string, () => Promise<unknown>][] = [
          ['get', () => store.get(hash)],
          ['has', () => store.has(hash)],
          ['stat', () => store.stat(hash)],
          ['missing', () => store.missing([blobHashOf(text('fine')), hash])],
          ['putVerified', () => store.putVerified(hash, text('x'))],
          ['putMany', () => store.putMany([text('x')], { hashes: [hash] })],
        ];
        for (const [method, call] of calls) {
          await assert.rejects(call(), (error) => {
            assert.ok(
              InvalidBlobHashError.isInstance(error),
              `${method}(${JSON.stringify(value)}): ${error}`,
            );
            return true;
          });
        }
      }
    });

    test('gc deletes unreferenced blobs past the grace period, keeps referenced and young ones', async () => {
      const store = await open();
      const blobs = Array.from({ length: 10 }, (_, i) => jsonishBlob(`gc-${i}`, 300 + i * 100));
      const hashes = await store.putMany(blobs);
      const referenced = new Set(hashes.slice(0, 4));
      // Now: everything is young.
      const young = await store.gc((hash) => referenced.has(hash));
      assert.deepEqual(young, { scanned: 10, deleted: [], keptInGrace: 6, keptInPacks: 0 });
      // Two days on: the six unreferenced ones go.
      const report = await store.gc(async (hash) => referenced.has(hash), { now: Date.now() + 2 * DAY });
      assert.equal(report.scanned, 10);
      assert.deepEqual(report.deleted, hashes.slice(4).sort());
      assert.equal(report.keptInGrace, 0);
      assert.deepEqual((await store.missing(hashes)).sort(), hashes.slice(4).sort());
      for (const hash of hashes.slice(4))
        await assert.rejects(store.get(hash), (error) => BlobNotFoundError.isInstance(error));
      for (const [i, hash] of hashes.slice(0, 4).entries())
        assert.deepEqual(new Uint8Array(await store.get(hash)), blobs[i]);
    });

    test('gc counts the grace period from the last put of a blob', async () => {
      const store = await open();
      const old = jsonishBlob('grace-old', 800);
      const refreshed = jsonishBlob('grace-refreshed', 800);
      // Separate puts: a filesystem pack shares one writtenAt among its blobs.
      const oldHash = await store.put(old);
      const refreshedHash = await store.put(refreshed);
      await wait(2100);
      await store.put(refreshed);
      const renewedAt = (await store.stat(refreshedHash))!.writtenAt;
      // A grace of one second, judged half a second after the re-put: only the old blob is past it.
      const report = await store.gc(() => false, { graceMs: 1000, now: renewedAt + 500 });
      assert.deepEqual(report.deleted, [oldHash]);
      assert.equal(report.keptInGrace, 1);
      assert.deepEqual(new Uint8Array(await store.get(refreshedHash)), refreshed);
    });

    test('close is safe to call more than once', async () => {
      const store = await harness.open();
      await store.close();
      await store.close();
    });
  });
}
