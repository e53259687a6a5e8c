import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { link, mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { zstdCompressSync } from 'node:zlib';
import { type BlobHash, blobHashOf } from '@rewind/schema';
import { BlobCorruptError, BlobNotFoundError, InvalidBlobHashError } from './blob-errors.ts';
import { type FsBlobStoreOptions, openFsBlobStore } from './fs-blob-store.ts';
import { entryAt, findInPack, parsePack } from './pack.ts';

// Packs: putMany, reading packed blobs, other processes' packs, crashes, damage, and gc.

const scratch = await mkdtemp(join(tmpdir(), 'rewind-packs-'));
after(() => rm(scratch, { recursive: true, force: true }));
let dirs = 0;
const freshDir = (): string => join(scratch, `store-${dirs++}`);

const DAY = 24 * 60 * 60 * 1000;
const CHILD = fileURLToPath(new URL('./testing/pack-writer-child.ts', import.meta.url));
const hexOf = (hash: BlobHash): string => hash.slice('sha256:'.length);
const loosePath = (dir: string, hash: BlobHash): string =>
  join(dir, 'sha256', hexOf(hash).slice(0, 2), hexOf(hash).slice(2));

/** JSON-ish text that compresses like real payloads and is unique per `seed`. */
function jsonish(seed: string, size: number): Uint8Array {
  let out = `{"seed":${JSON.stringify(seed)},"messages":[`;
  for (let i = 0; out.length < size; i++) out += `{"role":"user","text":"word ${i} of ${seed}"},`;
  return new TextEncoder().encode(`${out.slice(0, Math.max(0, size - 2))}]}`.slice(0, size));
}
const batch = (prefix: string, count: number, size = 600): Uint8Array[] =>
  Array.from({ length: count }, (_, i) => jsonish(`${prefix}-${i}`, size + (i % 7) * 50));

async function packsOf(dir: string): Promise<string[]> {
  return (await readdir(join(dir, 'packs'))).sort();
}

async function looseFiles(dir: string): Promise<string[]> {
  const entries = await readdir(join(dir, 'sha256'), { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
}

async function flipByte(path: string, at: number): Promise<void> {
  const file = await readFile(path);
  file[at] = file[at]! ^ 0x5a;
  await writeFile(path, file);
}

async function ageAll(dir: string, ms: number): Promise<void> {
  const old = new Date(Date.now() - ms);
  for (const name of await packsOf(dir)) await utimes(join(dir, 'packs', name), old, old);
  for (const file of await looseFiles(dir)) await utimes(file, old, old);
}

describe('putMany', () => {
  test('writes the new small blobs as one pack, returns hashes in input order, reads them back', async () => {
    const dir = freshDir();
    const store = await openFsBlobStore(dir);
    const blobs = batch('rt', 500);
    const hashes = await store.putMany(blobs);
    assert.deepEqual(hashes, blobs.map(blobHashOf));
    assert.equal((await packsOf(dir)).length, 1);
    assert.deepEqual(await looseFiles(dir), []);
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
    for (const [i, hash] of hashes.entries()) {
      assert.deepEqual(new Uint8Array(await store.get(hash)), blobs[i]);
      assert.equal((await store.stat(hash))?.size, blobs[i]!.byteLength);
    }
    assert.equal(await store.has(hashes[7]!), true);
    const absent = blobHashOf(jsonish('absent', 100));
    assert.deepEqual(await store.missing([absent, ...hashes, absent]), [absent, absent]);
    const listed: BlobHash[] = [];
    for await (const hash of store.list()) listed.push(hash);
    assert.deepEqual(listed, [...hashes].sort());
    // The pack compresses the batch as a whole: far smaller than the raw bytes.
    const packBytes = (await stat(join(dir, 'packs', (await packsOf(dir))[0]!))).size;
    const rawBytes = blobs.reduce((sum, bytes) => sum + bytes.byteLength, 0);
    assert.ok(packBytes * 5 < rawBytes, `${packBytes} bytes on disk for ${rawBytes}`);
    // A returned blob is a copy: changing it changes nothing stored.
    const copy = await store.get(hashes[0]!);
    copy.fill(0);
    assert.deepEqual(new Uint8Array(await store.get(hashes[0]!)), blobs[0]);
  });

  test('is idempotent: stored blobs are only refreshed, duplicates in a call are written once', async () => {
    const dir = freshDir();
    const store = await openFsBlobStore(dir);
    const blobs = batch('idem', 20);
    const hashes = await store.putMany([...blobs, blobs[3]!, blobs[3]!]);
    assert.equal(hashes.length, 22);
    assert.equal(hashes[20], hashes[3]);
    const [pack] = await packsOf(dir);
    const parsed = parsePack(await readFile(join(dir, 'packs', pack!)));
    assert.ok(typeof parsed !== 'string');
    assert.equal(parsed.entryCount, 20);
    await ageAll(dir, 3 * DAY);
    const started = Date.now();
    assert.deepEqual(await store.putMany(blobs), hashes.slice(0, 20));
    assert.deepEqual(await packsOf(dir), [pack], 'no new pack');
    assert.ok((await stat(join(dir, 'packs', pack!))).mtimeMs >= started - 1000, 'the pack was refreshed');
    assert.ok((await store.stat(hashes[0]!))!.writtenAt >= started - 1000);
    // put of a packed blob refreshes the pack instead of writing a loose copy
    await ageAll(dir, 3 * DAY);
    assert.equal(await store.put(blobs[5]!), hashes[5]);
    assert.deepEqual(await looseFiles(dir), []);
    assert.ok((await stat(join(dir, 'packs', pack!))).mtimeMs >= started - 1000);
    // a fresh store (another process) knows them from the pack on disk
    const other = await openFsBlobStore(dir);
    await other.putMany(blobs);
    assert.deepEqual(await packsOf(dir), [pack]);
    assert.deepEqual(await other.putMany([]), []);
  });

  test('skips small blobs stored as loose files (refreshing them), and writes only what is new', async () => {
    const dir = freshDir();
    const store = await openFsBlobStore(dir);
    const blobs = batch('loose', 10);
    const looseHash = await store.put(blobs[0]!);
    await ageAll(dir, 3 * DAY);
    const started = Date.now();
    await store.putMany(blobs);
    assert.ok((await stat(loosePath(dir, looseHash))).mtimeMs >= started - 1000, 'loose copy refreshed');
    const [pack] = await packsOf(dir);
    const parsed = parsePack(await readFile(join(dir, 'packs', pack!)));
    assert.ok(typeof parsed !== 'string');
    assert.equal(parsed.entryCount, 9, 'the loose blob is not packed again');
    assert.equal(findInPack(parsed, Buffer.from(hexOf(looseHash), 'hex')), -1);
  });

  test('looks for loose copies only in stores that hold small loose blobs (the small-loose flag)', async () => {
    // A store written only through putMany: no flag, so no stat per blob.
    const dir = freshDir();
    const store = await openFsBlobStore(dir, { packMaxBlobBytes: 1000 });
    await store.putMany([jsonish('big', 5000), ...batch('small', 3, 300)]);
    assert.equal(existsSync(join(dir, 'small-loose')), false, 'a big loose blob does not set it');
    // A loose copy that nothing flagged is not seen: putMany stores the blob again (harmless).
    const planted = jsonish('planted', 400);
    await writeFile(loosePath(dir, blobHashOf(planted)), zstdCompressSync(planted));
    await store.putMany([planted]);
    assert.equal((await packsOf(dir)).length, 2);
    // put of a small blob sets the flag; from then on putMany finds loose copies
    const small = jsonish('put-small', 400);
    await store.put(small);
    assert.equal(existsSync(join(dir, 'small-loose')), true);
    await store.putMany([small]);
    assert.equal((await packsOf(dir)).length, 2, 'nothing new packed');

    // A store from before packs (loose blobs, no packs/): the first open flags it.
    const old = freshDir();
    const legacy = batch('legacy', 3, 400);
    await mkdir(join(old, 'sha256', 'ab'), { recursive: true });
    for (const bytes of legacy) {
      const path = loosePath(old, blobHashOf(bytes));
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, zstdCompressSync(bytes));
    }
    const upgraded = await openFsBlobStore(old);
    assert.equal(existsSync(join(old, 'small-loose')), true);
    await upgraded.putMany(legacy);
    assert.deepEqual(await packsOf(old), [], 'the loose copies are used');
  });

  test('mixed sizes: blobs above the threshold become loose files, everything reads back', async () => {
    const dir = freshDir();
    const store = await openFsBlobStore(dir, { packMaxBlobBytes: 64 * 1024 });
    const sizes = [0, 1, 2048, 64 * 1024, 64 * 1024 + 1, 1024 * 1024, 300];
    const blobs = sizes.map((size) => jsonish(`mixed-${size}`, size));
    const hashes = await store.putMany(blobs);
    const loose = (await looseFiles(dir)).map((file) => file.split('/').slice(-2).join(''));
    assert.deepEqual(loose.sort(), [hexOf(hashes[4]!), hexOf(hashes[5]!)].sort());
    const parsed = parsePack(await readFile(join(dir, 'packs', (await packsOf(dir))[0]!)));
    assert.ok(typeof parsed !== 'string');
    assert.equal(parsed.entryCount, 5);
    for (const [i, hash] of hashes.entries()) {
      assert.deepEqual(new Uint8Array(await store.get(hash)), blobs[i], `size ${sizes[i]}`);
      assert.equal((await store.stat(hash))?.size, sizes[i]);
    }
  });

  test('large batches are split into frames of about packFrameBytes', async () => {
    const dir = freshDir();
    const store = await openFsBlobStore(dir, { packFrameBytes: 8 * 1024 });
    const blobs = batch('frames', 300, 1000);
    const hashes = await store.putMany(blobs);
    const parsed = parsePack(await readFile(join(dir, 'packs', (await packsOf(dir))[0]!)));
    assert.ok(typeof parsed !== 'string');
    assert.ok(parsed.frameCount >= 30, `${parsed.frameCount} frames`);
    // reads across frames, in any order, through the frame cache
    const reader = await openFsBlobStore(dir, { frameCacheBytes: 16 * 1024 });
    for (const i of [299, 0, 150, 1, 298, 150, 75])
      assert.deepEqual(new Uint8Array(await reader.get(hashes[i]!)), blobs[i]);
    const all = await Promise.all(hashes.map((hash) => reader.get(hash)));
    assert.deepEqual(
      all.map((bytes) => new Uint8Array(bytes)),
      blobs,
    );
  });

  test('pre-computed hashes are used as given (trusted); malformed ones are refused', async () => {
    const dir = freshDir();
    const store = await openFsBlobStore(dir);
    const blobs = batch('given', 5);
    const hashes = blobs.map(blobHashOf);
    assert.deepEqual(await store.putMany(blobs, { hashes }), hashes);
    assert.deepEqual(new Uint8Array(await store.get(hashes[2]!)), blobs[2]);
    await assert.rejects(store.putMany(blobs, { hashes: hashes.slice(1) }), RangeError);
    await assert.rejects(
      store.putMany([blobs[0]!], { hashes: ['sha256:nope' as BlobHash] }),
      InvalidBlobHashError,
    );
    // A wrong hash from a caller that broke the contract: stored, but never served as content.
    const liar = jsonish('liar', 500);
    const claimed = blobHashOf(jsonish('something else', 500));
    await store.putMany([liar], { hashes: [claimed] });
    await assert.rejects(store.get(claimed), (error) => BlobCorruptError.isInstance(error));
    assert.deepEqual((await store.verify()).corrupt, [claimed]);
  });

  test('fails when the loose tree is not a directory (a damaged store), writing nothing', async () => {
    const dir = freshDir();
    const store = await openFsBlobStore(dir);
    await rm(join(dir, 'sha256'), { recursive: true });
    await writeFile(join(dir, 'sha256'), 'not a directory');
    await assert.rejects(store.putMany(batch('broken', 3)), /not a directory/);
    assert.deepEqual(await packsOf(dir), []);
  });
});

describe('merging small packs', () => {
  test('the small packs of calls made one at a time are merged into one, and every blob still reads', async () => {
    const dir = freshDir();
    const store = await openFsBlobStore(dir, { packMergeBytes: 40 * 1024 });
    const stale = await openFsBlobStore(dir); // loads some small packs, learns of the merges on its own
    // Like an agent recording one model call per drain: each request is the previous one plus a
    // message, so merged they compress against each other.
    const written: Uint8Array[] = [];
    const history: string[] = [];
    for (let call = 0; call < 60; call++) {
      history.push(`{"role":"user","content":"message ${call} ${'lorem ipsum '.repeat(8)}"}`);
      const request = new TextEncoder().encode(`{"messages":[${history.join(',')}]}`);
      const response = jsonish(`response-${call}`, 300);
      written.push(request, response);
      await store.putMany([request, response]);
      if (call === 5) assert.deepEqual(await stale.missing(written.map(blobHashOf)), []);
    }
    const packs = await packsOf(dir);
    assert.ok(packs.length < 15, `${packs.length} packs for 60 calls`);
    const raw = written.reduce((sum, bytes) => sum + bytes.byteLength, 0);
    let onDisk = 0;
    for (const name of packs) onDisk += (await stat(join(dir, 'packs', name))).size;
    assert.ok(onDisk * 8 < raw, `${onDisk} bytes on disk for ${raw}`);
    for (const reader of [store, stale, await openFsBlobStore(dir)])
      for (const bytes of written)
        assert.deepEqual(new Uint8Array(await reader.get(blobHashOf(bytes))), bytes);
    assert.deepEqual(await readdir(join(dir, 'trash')), []);
    const report = await store.verify();
    assert.deepEqual([report.corrupt, report.damagedPacks], [[], []]);
  });

  test('a small pack that another process refreshed before the merge is kept', async () => {
    const dir = freshDir();
    const store = await openFsBlobStore(dir, { packMergeBytes: 4500 });
    const other = await openFsBlobStore(dir);
    const blobs = batch('refreshed', 5, 1000);
    for (const [i, bytes] of blobs.entries()) {
      if (i === 4) {
        assert.equal(await other.has(blobHashOf(blobs[2]!)), true); // it has seen the pack
        await other.putMany([blobs[2]!]); // and puts blob 2 again: its pack is refreshed
        assert.equal((await packsOf(dir)).length, 4, 'refreshed, not written again');
      }
      await store.putMany([bytes]);
    }
    const packs = await packsOf(dir);
    assert.equal(packs.length, 2, 'the merge, and the refreshed small pack');
    for (const reader of [store, other])
      for (const bytes of blobs) assert.deepEqual(new Uint8Array(await reader.get(blobHashOf(bytes))), bytes);
  });

  test('merging can be turned off', async () => {
    const dir = freshDir();
    const store = await openFsBlobStore(dir, { packMergeBytes: 0 });
    for (let call = 0; call < 10; call++) await store.putMany([jsonish(`off-${call}`, 200)]);
    assert.equal((await packsOf(dir)).length, 10);
  });
});

describe('other processes', () => {
  function runChild(dir: string, batches: number, batchSize: number): Promise<BlobHash[]> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [CHILD, dir, String(batches), String(batchSize), '1'], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const acked: BlobHash[] = [];
      createInterface({ input: child.stdout }).on('line', (line) => {
        const match = /^ok (sha256:[0-9a-f]{64})$/.exec(line);
        if (match) acked.push(match[1] as BlobHash);
      });
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolve(acked) : reject(new Error(`child exited ${code}`))));
    });
  }

  test('a pack written by another process after we opened is found by get, has, missing, stat and list', async () => {
    const dir = freshDir();
    const store = await openFsBlobStore(dir);
    const before = await store.putMany(batch('mine', 5));
    const theirs = await runChild(dir, 3, 20);
    assert.equal(theirs.length, 60);
    assert.equal(await store.has(theirs[0]!), true);
    assert.deepEqual(await store.missing(theirs), []);
    assert.ok((await store.stat(theirs[59]!))!.size > 0);
    assert.ok((await store.get(theirs[30]!)).byteLength > 0);
    const listed = new Set<BlobHash>();
    for await (const hash of store.list()) listed.add(hash);
    for (const hash of [...before, ...theirs]) assert.ok(listed.has(hash));
    // and a second in-process instance sees ours
    const other = await openFsBlobStore(dir);
    const more = await store.putMany(batch('later', 5));
    assert.deepEqual(new Uint8Array(await other.get(more[4]!)), batch('later', 5)[4]);
  });
});

describe('crash safety', () => {
  test('a pack writer SIGKILLed mid-way leaves only whole packs; every acknowledged blob is there; temps are cleaned', async () => {
    const dir = freshDir();
    await (await openFsBlobStore(dir)).close();
    const acknowledged = new Set<BlobHash>();
    for (let round = 0; round < 4; round++) {
      const killAfter = 200 + Math.floor(Math.random() * 1500);
      const writer = spawn(process.execPath, [CHILD, dir, '100000', '40', '2'], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const exited = new Promise<NodeJS.Signals | null>((resolve) =>
        writer.on('exit', (_, signal) => resolve(signal)),
      );
      let acks = 0;
      for await (const line of createInterface({ input: writer.stdout })) {
        const match = /^ok (sha256:[0-9a-f]{64})$/.exec(line);
        if (match === null) continue;
        acknowledged.add(match[1] as BlobHash);
        if (++acks === killAfter) setTimeout(() => writer.kill('SIGKILL'), Math.random() * 4);
      }
      assert.equal(await exited, 'SIGKILL');

      // Every pack in packs/ is whole: it parses, and every blob in it hashes to its name.
      for (const name of await packsOf(dir)) {
        const file = await readFile(join(dir, 'packs', name));
        const parsed = parsePack(file);
        assert.ok(typeof parsed !== 'string', `${name}: ${parsed}`);
      }
      const reopened = await openFsBlobStore(dir);
      const report = await reopened.verify();
      assert.deepEqual(report.corrupt, []);
      assert.deepEqual(report.damagedPacks, []);
      // The killed writer's temp files are gone (it is dead), and so is anything a merge it was
      // in the middle of left in trash/ (put back: at worst a duplicate).
      assert.deepEqual(await readdir(join(dir, 'tmp')), []);
      assert.deepEqual(await readdir(join(dir, 'trash')), []);
      assert.deepEqual(await reopened.missing([...acknowledged]), []);
    }
  });
});

describe('damage', () => {
  async function storeWithFrames(options: FsBlobStoreOptions = {}) {
    const dir = freshDir();
    const store = await openFsBlobStore(dir, { packFrameBytes: 8 * 1024, ...options });
    const blobs = batch('damage', 100, 1000);
    const hashes = await store.putMany(blobs);
    const [name] = await packsOf(dir);
    const path = join(dir, 'packs', name!);
    const parsed = parsePack(await readFile(path));
    assert.ok(typeof parsed !== 'string');
    const frameOf = (hash: BlobHash): number =>
      entryAt(parsed, findInPack(parsed, Buffer.from(hexOf(hash), 'hex'))).frame;
    return { dir, store, blobs, hashes, path, layout: parsed, frameOf };
  }

  test('a flipped byte inside a frame: its blobs fail with BlobCorruptError, the other frames still read', async () => {
    const { dir, blobs, hashes, path, layout, frameOf } = await storeWithFrames();
    const damagedFrame = 2;
    await flipByte(
      path,
      layout.frameOffsets[damagedFrame]! + Math.floor(layout.frameLengths[damagedFrame]! / 2),
    );
    const store = await openFsBlobStore(dir);
    const affected = hashes.filter((hash) => frameOf(hash) === damagedFrame);
    assert.ok(affected.length > 0);
    for (const [i, hash] of hashes.entries()) {
      if (frameOf(hash) === damagedFrame) {
        await assert.rejects(store.get(hash), (error) => {
          assert.ok(BlobCorruptError.isInstance(error), String(error));
          assert.equal(error.hash, hash);
          assert.equal(error.path, path);
          assert.match(error.message, /rewind verify/);
          return true;
        });
      } else {
        assert.deepEqual(new Uint8Array(await store.get(hash)), blobs[i]);
      }
    }
    const report = await store.verify();
    assert.equal(report.checked, 100);
    assert.deepEqual(report.corrupt, [...affected].sort());
    assert.deepEqual(report.damagedPacks, []);
  });

  test('a packed copy that is damaged is read around: another pack or a loose copy serves it', async () => {
    const { dir, blobs, hashes, path, layout, frameOf } = await storeWithFrames();
    await flipByte(path, layout.frameOffsets[0]! + 20);
    const victim = hashes.findIndex((hash) => frameOf(hash) === 0);
    const store = await openFsBlobStore(dir);
    await assert.rejects(store.get(hashes[victim]!), (error) => BlobCorruptError.isInstance(error));
    // a good copy arrives as a loose file (e.g. re-uploaded one by one)
    await writeFile(loosePath(dir, hashes[victim]!), zstdCompressSync(blobs[victim]!));
    assert.deepEqual(new Uint8Array(await store.get(hashes[victim]!)), blobs[victim]);
  });

  test('a pack whose index is damaged is skipped by open, reported by verify, and its blobs are not found', async () => {
    const { dir, hashes, path } = await storeWithFrames();
    const file = await readFile(path);
    await flipByte(path, file.length - 40); // inside the index
    const store = await openFsBlobStore(dir);
    await assert.rejects(store.get(hashes[0]!), (error) => BlobNotFoundError.isInstance(error));
    assert.equal((await store.missing(hashes)).length, 100);
    const report = await store.verify();
    assert.equal(report.checked, 0);
    assert.equal(report.damagedPacks.length, 1);
    assert.equal(report.damagedPacks[0]!.path, path);
    assert.match(report.damagedPacks[0]!.reason, /checksum/);
    // putMany writes them again into a new pack, and then they read
    const blobs = batch('damage', 100, 1000);
    await store.putMany(blobs);
    assert.deepEqual(new Uint8Array(await store.get(hashes[9]!)), blobs[9]);
  });

  test('junk in packs/: truncated, empty, and foreign files never break open', async () => {
    const { dir, hashes, path } = await storeWithFrames();
    const file = await readFile(path);
    await writeFile(join(dir, 'packs', 'lx00000-0123456789abcdef.pack'), file.subarray(0, file.length - 100));
    await writeFile(join(dir, 'packs', 'lx00001-0123456789abcdef.pack'), '');
    await writeFile(join(dir, 'packs', 'notes.txt'), 'hello');
    const store = await openFsBlobStore(dir);
    assert.deepEqual(await store.missing(hashes), []);
    const report = await store.verify();
    assert.equal(report.damagedPacks.length, 2);
    assert.deepEqual(report.corrupt, []);
  });
});

describe('gc of packs', () => {
  /** A store with `packs` packs of `perPack` blobs each, all written two days ago. */
  async function oldPacks(packs: number, perPack: number, prefix: string, options: FsBlobStoreOptions = {}) {
    const dir = freshDir();
    const store = await openFsBlobStore(dir, options);
    const blobs: Uint8Array[] = [];
    const hashes: BlobHash[] = [];
    for (let p = 0; p < packs; p++) {
      const group = batch(`${prefix}-${p}`, perPack, 300);
      blobs.push(...group);
      hashes.push(...(await store.putMany(group)));
    }
    await ageAll(dir, 2 * DAY);
    return { dir, store, blobs, hashes };
  }

  test('a pack of garbage is deleted, a young one kept, a mostly-live one kept as it is', async () => {
    // (packMergeBytes 0: these small packs are not merged, see the next test)
    const { dir, store, hashes } = await oldPacks(3, 10, 'basic', { packMergeBytes: 0 });
    const young = await store.putMany(batch('young', 4));
    // pack 0: all garbage; pack 1: 8 of 10 live; pack 2: all live
    const referenced = new Set([...hashes.slice(12, 20), ...hashes.slice(20, 30)]);
    const report = await store.gc((hash) => referenced.has(hash));
    assert.equal(report.scanned, 34);
    assert.deepEqual(report.deleted, hashes.slice(0, 10).sort());
    assert.equal(report.keptInGrace, 4);
    assert.equal(report.keptInPacks, 2);
    assert.equal((await packsOf(dir)).length, 3, 'pack 0 gone; 1, 2 and the young one stay');
    assert.deepEqual((await store.missing([...hashes, ...young])).sort(), hashes.slice(0, 10).sort());
    assert.deepEqual(await readdir(join(dir, 'trash')), []);
  });

  test('old small packs are merged, leaving their garbage out; young ones and big ones are left alone', async () => {
    // Written by processes that ended before merging their own small packs.
    const { dir, blobs, hashes } = await oldPacks(12, 10, 'merge', { packMergeBytes: 0 });
    const store = await openFsBlobStore(dir, { packMergeBytes: 40 * 1024 });
    const oldNames = await packsOf(dir);
    const oldMtime = Math.max(
      ...(await Promise.all(oldNames.map(async (name) => (await stat(join(dir, 'packs', name))).mtimeMs))),
    );
    const young = await store.putMany(batch('merge-young', 3));
    // 9 of 10 blobs of each old pack are live: too few garbage to rewrite one, but merged they go.
    const garbage = new Set(hashes.filter((_, i) => i % 10 === 0));
    const report = await store.gc((hash) => !garbage.has(hash) && !young.includes(hash));
    assert.deepEqual(report.deleted, [...garbage].sort());
    assert.equal(report.keptInGrace, 3);
    assert.equal(report.keptInPacks, 0);
    const packs = await packsOf(dir);
    assert.ok(packs.length <= 4, `${packs.length} packs`);
    for (const name of oldNames) assert.ok(!packs.includes(name), 'every old small pack was merged');
    for (const name of packs) {
      const info = await stat(join(dir, 'packs', name));
      const parsed = parsePack(await readFile(join(dir, 'packs', name)));
      assert.ok(typeof parsed !== 'string');
      if (parsed.entryCount === 3) continue; // the young pack
      assert.ok(info.mtimeMs <= oldMtime + 1, 'a merged pack keeps the newest mtime of its sources');
    }
    const reader = await openFsBlobStore(dir);
    for (const [i, hash] of hashes.entries()) {
      if (garbage.has(hash))
        await assert.rejects(reader.get(hash), (error) => BlobNotFoundError.isInstance(error));
      else assert.deepEqual(new Uint8Array(await reader.get(hash)), blobs[i]);
    }
    assert.deepEqual(await reader.missing(young), []);
    assert.deepEqual(await readdir(join(dir, 'trash')), []);
  });

  test('a mostly-garbage pack is rewritten: live blobs move to a new pack written before the old one goes', async () => {
    const { dir, blobs, hashes } = await oldPacks(1, 40, 'rewrite');
    const [oldPack] = await packsOf(dir);
    const stale = await openFsBlobStore(dir); // loaded the old pack; learns of the rewrite on its own
    const live = new Set(hashes.filter((_, i) => i % 5 === 0)); // 8 of 40
    const store = await openFsBlobStore(dir);
    const report = await store.gc((hash) => live.has(hash));
    assert.deepEqual(report.deleted, hashes.filter((hash) => !live.has(hash)).sort());
    const packs = await packsOf(dir);
    assert.equal(packs.length, 1);
    assert.notEqual(packs[0], oldPack);
    const parsed = parsePack(await readFile(join(dir, 'packs', packs[0]!)));
    assert.ok(typeof parsed !== 'string');
    assert.equal(parsed.entryCount, 8);
    for (const [i, hash] of hashes.entries()) {
      if (live.has(hash)) assert.deepEqual(new Uint8Array(await stale.get(hash)), blobs[i]);
      else await assert.rejects(stale.get(hash), (error) => BlobNotFoundError.isInstance(error));
    }
    assert.deepEqual(await stale.missing([...live]), []);
    // putMany of a deleted blob through the stale instance writes it again
    const back = hashes.findIndex((hash) => !live.has(hash));
    await stale.putMany([blobs[back]!]);
    assert.deepEqual(new Uint8Array(await store.get(hashes[back]!)), blobs[back]);
  });

  test('a blob re-put after gc judged its pack, but before gc moves it, survives with its pack', async () => {
    const { store, blobs, hashes } = await oldPacks(2, 5, 'before-trash');
    const target = 7;
    const gcStore = await openFsBlobStore(store.location, {
      hooks: {
        beforeTrashPack: async (_, garbage) => {
          if (garbage.includes(hashes[target]!)) await store.putMany([blobs[target]!]);
        },
      },
    });
    const report = await gcStore.gc(() => false);
    assert.deepEqual(report.deleted, hashes.slice(0, 5).sort());
    assert.equal(report.keptInGrace, 5);
    assert.deepEqual(new Uint8Array(await store.get(hashes[target]!)), blobs[target]);
    assert.deepEqual(await gcStore.missing(hashes.slice(5)), []);
  });

  test('a blob re-put while gc holds its pack in trash/ is written anew and survives; get finds it meanwhile', async () => {
    const { dir, store, blobs, hashes } = await oldPacks(1, 5, 'after-trash');
    const target = 3;
    let readMeanwhile: Uint8Array | undefined;
    const gcStore = await openFsBlobStore(dir, {
      hooks: {
        afterTrashPack: async () => {
          readMeanwhile = await store.get(hashes[target]!);
          await store.putMany([blobs[target]!]);
        },
      },
    });
    await gcStore.gc(() => false);
    assert.deepEqual(readMeanwhile && new Uint8Array(readMeanwhile), blobs[target]);
    assert.deepEqual(new Uint8Array(await gcStore.get(hashes[target]!)), blobs[target]);
    assert.deepEqual(
      await store.missing(hashes),
      hashes.filter((_, i) => i !== target),
    );
    assert.deepEqual(await readdir(join(dir, 'trash')), []);
  });

  test('gc running while putMany batches arrive deletes no blob put during it, and keeps every live one', async () => {
    for (let round = 0; round < 3; round++) {
      const { dir, blobs, hashes } = await oldPacks(60, 12, `race-${round}`);
      const byHash = new Map(hashes.map((hash, i) => [hash, blobs[i]!]));
      // A third of the blobs are live, so that many packs are rewritten rather than deleted.
      const live = new Set(hashes.filter((_, i) => i % 3 === 0));
      const delay = () => new Promise<void>((resolve) => setTimeout(resolve, Math.random() * 3));
      // Rounds 0 and 1: two thirds garbage is enough to rewrite a pack; round 2: it is not, so
      // the (small) packs are merged instead.
      const store = await openFsBlobStore(dir, {
        packRewriteFraction: round < 2 ? 0.5 : 0.9,
        hooks: { beforeTrashPack: delay, afterTrashPack: delay },
      });
      const asked: BlobHash[] = [];
      let gcDone = false;
      const gcRun = store
        .gc(async (hash) => {
          asked.push(hash);
          await delay();
          return live.has(hash);
        })
        .finally(() => {
          gcDone = true;
        });
      const putDuringGc: Uint8Array[] = [];
      const reput = new Set<BlobHash>();
      let fresh = 0;
      const uploader = async (): Promise<void> => {
        // Re-putting an old blob refreshes its whole pack (which gc then keeps), so old blobs are a
        // fifth of the uploads: enough to land on packs gc is deciding about, few enough that gc
        // still deletes and rewrites packs. Each uploader is its own process: its own store instance, with its own view of the packs.
        const mine = await openFsBlobStore(dir);
        while (!gcDone) {
          const items: Uint8Array[] = [];
          for (let k = 0; k < 1 + Math.floor(Math.random() * 4); k++) {
            const dice = Math.random();
            const current = asked[asked.length - 1 - Math.floor(Math.random() * Math.min(asked.length, 24))];
            const candidate =
              dice < 0.15 && current !== undefined
                ? current
                : dice < 0.2
                  ? hashes[Math.floor(Math.random() * hashes.length)]!
                  : undefined;
            const old = candidate !== undefined && !reput.has(candidate) ? byHash.get(candidate) : undefined;
            if (old !== undefined) reput.add(candidate!);
            items.push(old ?? jsonish(`new-${round}-${fresh++}`, 500));
          }
          putDuringGc.push(...items);
          await mine.putMany(items);
          await delay();
        }
      };
      const [report] = await Promise.all([gcRun, uploader(), uploader(), uploader()]);
      assert.ok(report.deleted.length > 0, 'gc deleted something');
      assert.ok(putDuringGc.length > 20, `uploads overlapped the gc (${putDuringGc.length})`);
      const reader = await openFsBlobStore(dir);
      for (const bytes of putDuringGc)
        assert.deepEqual(new Uint8Array(await reader.get(blobHashOf(bytes))), bytes);
      for (const hash of live) assert.deepEqual(new Uint8Array(await reader.get(hash)), byHash.get(hash));
      for (const hash of report.deleted) assert.ok(!live.has(hash));
      assert.deepEqual(await readdir(join(dir, 'trash')), []);
      const verified = await reader.verify();
      assert.deepEqual([verified.corrupt, verified.damagedPacks], [[], []]);
    }
  });

  test('reopening puts back a pack a crashed gc left in trash/', async () => {
    const { dir, blobs, hashes } = await oldPacks(1, 5, 'crashed-gc');
    const [name] = await packsOf(dir);
    await link(join(dir, 'packs', name!), join(dir, 'trash', `${name}.99999-00aa`));
    await rm(join(dir, 'packs', name!));
    const reopened = await openFsBlobStore(dir);
    assert.deepEqual(await readdir(join(dir, 'trash')), []);
    assert.deepEqual(await packsOf(dir), [name]);
    assert.deepEqual(new Uint8Array(await reopened.get(hashes[4]!)), blobs[4]);
  });

  test('loose and packed copies of the same blob: deleted only when no copy is left', async () => {
    const { dir, store, blobs, hashes } = await oldPacks(1, 4, 'both');
    // put would only refresh the pack: plant a young loose copy of blob 1 by hand
    await writeFile(loosePath(dir, hashes[1]!), zstdCompressSync(blobs[1]!));
    const fresh = new Date();
    await utimes(loosePath(dir, hashes[1]!), fresh, fresh);
    const report = await store.gc(() => false);
    assert.deepEqual(report.deleted, [hashes[0]!, hashes[2]!, hashes[3]!].sort());
    assert.equal(report.keptInGrace, 1);
    assert.deepEqual(new Uint8Array(await store.get(hashes[1]!)), blobs[1]);
  });
});
