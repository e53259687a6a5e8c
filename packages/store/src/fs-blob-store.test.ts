import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { link, mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { zstdCompress, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { type BlobHash, blobHashOf } from '@rewind/schema';
import { BlobHashMismatchError, InvalidBlobHashError } from './blob-errors.ts';
import { frameContentSize, openFsBlobStore } from './fs-blob-store.ts';

const scratch = await mkdtemp(join(tmpdir(), 'rewind-blobs-'));
after(() => rm(scratch, { recursive: true, force: true }));
let dirs = 0;
const freshDir = (): string => join(scratch, `store-${dirs++}`);

const DAY = 24 * 60 * 60 * 1000;
const text = (value: string): Uint8Array => new TextEncoder().encode(value);
const hexOf = (hash: BlobHash): string => hash.slice('sha256:'.length);
const blobPath = (dir: string, hash: BlobHash): string =>
  join(dir, 'sha256', hexOf(hash).slice(0, 2), hexOf(hash).slice(2));

/** JSON-ish text that compresses like real payloads and is unique per `seed`. */
function jsonish(seed: string, size: number): Uint8Array {
  const words = [
    'the',
    'model',
    'tool_call',
    'assistant',
    'content',
    'weather',
    'Paris',
    'result',
    '{"a":1}',
  ];
  let out = `{"seed":${JSON.stringify(seed)},"messages":[`;
  for (let i = 0; out.length < size; i++) out += `{"role":"user","text":"${words[i % words.length]} ${i}"},`;
  return text(`${out.slice(0, Math.max(0, size - 2))}]}`.slice(0, size));
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
}

async function flipByte(path: string, at: (length: number) => number): Promise<void> {
  const file = await readFile(path);
  const index = at(file.length);
  file[index] = file[index]! ^ 0x5a;
  await writeFile(path, file);
}

/** A zstd frame whose header does not record the content size (streaming, no pledged size). */
const unsizedFrame = promisify(zstdCompress);

function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', '']);
  assert.ok(child.pid);
  return child.pid;
}

describe('layout and writes', () => {
  test('a blob lives at sha256/<2 hex>/<62 hex> as one zstd frame of its bytes, nothing left in tmp/', async () => {
    const dir = freshDir();
    const store = await openFsBlobStore(dir);
    const bytes = jsonish('layout', 5000);
    const hash = await store.put(bytes);
    assert.equal(hash, blobHashOf(bytes));
    const files = await filesUnder(join(dir, 'sha256'));
    assert.deepEqual(files, [blobPath(dir, hash)]);
    assert.match(files[0]!, /sha256\/[0-9a-f]{2}\/[0-9a-f]{62}$/);
    const stored = await readFile(files[0]!);
    assert.equal(stored.readUInt32LE(0), 0xfd2fb528, 'zstd magic number');
    assert.ok(stored.length < bytes.length / 2, 'compressed');
    assert.deepEqual(new Uint8Array(zstdDecompressSync(stored)), bytes);
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
  });

  test('put of a stored blob does not rewrite it, it only refreshes its mtime', async () => {
    const dir = freshDir();
    const store = await openFsBlobStore(dir);
    const bytes = jsonish('again', 3000);
    const hash = await store.put(bytes);
    const path = blobPath(dir, hash);
    const old = new Date(Date.now() - 3 * DAY);
    await utimes(path, old, old);
    const before = await stat(path);
    const started = Date.now();
    assert.equal(await store.put(bytes), hash);
    const afterPut = await stat(path);
    assert.equal(afterPut.ino, before.ino, 'same file');
    assert.ok(afterPut.mtimeMs >= started - 1000, 'mtime refreshed');
    assert.ok((await store.stat(hash))!.writtenAt >= started - 1000);
  });

  test('putVerified stores matching bytes and rejects others without writing anything', async () => {
    const dir = freshDir();
    const store = await openFsBlobStore(dir);
    const bytes = jsonish('verified', 1000);
    const wrongHash = blobHashOf(text('something else'));
    await assert.rejects(store.putVerified(wrongHash, bytes), (error) => {
      assert.ok(BlobHashMismatchError.isInstance(error));
      assert.equal(error.code, 'blob_hash_mismatch');
      assert.equal(error.hash, wrongHash);
      assert.equal(error.actual, blobHashOf(bytes));
      return true;
    });
    assert.deepEqual(await filesUnder(join(dir, 'sha256')), []);
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
    await store.putVerified(blobHashOf(bytes), bytes);
    assert.deepEqual(new Uint8Array(await store.get(blobHashOf(bytes))), bytes);
  });
});

// Round trips, verified reads of damaged copies, verify, has/missing/list and gc basics: the
// BlobStore contract (contract/blob-contract.ts, run by blob-contract-fs.test.ts).

describe('has, missing, stat, list', () => {
  test('answer from the filesystem', async () => {
    const store = await openFsBlobStore(freshDir());
    const stored = await Promise.all(
      Array.from({ length: 200 }, (_, i) => store.put(jsonish(`present-${i}`, 500))),
    );
    const absent = Array.from({ length: 100 }, (_, i) => blobHashOf(text(`absent-${i}`)));
    const mixed = [...stored, ...absent].sort();
    assert.deepEqual(
      await store.missing(mixed),
      mixed.filter((hash) => absent.includes(hash)),
    );
    assert.deepEqual(await store.missing([]), []);
    assert.equal(await store.has(stored[0]!), true);
    assert.equal(await store.has(absent[0]!), false);
    assert.equal(await store.stat(absent[0]!), undefined);
    const listed: BlobHash[] = [];
    for await (const hash of store.list()) listed.push(hash);
    assert.deepEqual(listed, [...stored].sort());
  });

  test('stat gives the uncompressed size and the write time', async () => {
    const store = await openFsBlobStore(freshDir());
    const before = Date.now();
    const bytes = jsonish('stat', 70_000);
    const hash = await store.put(bytes);
    const info = await store.stat(hash);
    assert.equal(info?.hash, hash);
    assert.equal(info?.size, 70_000);
    assert.ok(info.writtenAt >= before - 1000 && info.writtenAt <= Date.now() + 1000);
  });

  test('stat reads the size from the frame header, and decompresses only a frame that lacks it', async () => {
    const dir = freshDir();
    const store = await openFsBlobStore(dir);
    const damaged = await store.put(jsonish('header-only', 9000));
    await flipByte(blobPath(dir, damaged), (length) => Math.floor(length / 2));
    assert.equal((await store.stat(damaged))?.size, 9000, 'no decompression needed');
    // A frame written by another zstd writer without the size in its header.
    const bytes = jsonish('unsized', 5000);
    const hash = blobHashOf(bytes);
    await writeFile(blobPath(dir, hash), await unsizedFrame(bytes));
    assert.equal((await store.stat(hash))?.size, 5000);
    assert.deepEqual(new Uint8Array(await store.get(hash)), bytes);
  });

  test('frameContentSize reads every size encoding of the zstd frame header', async () => {
    for (const size of [0, 1, 255, 256, 257, 65_791, 65_792, 65_793, 200_000]) {
      const frame = zstdCompressSync(Buffer.alloc(size, 'a'), { pledgedSrcSize: size });
      assert.equal(frameContentSize(frame.subarray(0, 18)), size, `size ${size}`);
    }
    assert.equal(frameContentSize(await unsizedFrame(Buffer.alloc(10, 'a'))), 'unknown');
    assert.equal(frameContentSize(new Uint8Array([1, 2, 3, 4, 5, 6])), 'invalid');
    assert.equal(frameContentSize(new Uint8Array([])), 'invalid');
  });
});

describe('hostile input', () => {
  const bad: unknown[] = [
    '../../../../etc/passwd',
    'sha256:../../../../etc/passwd',
    `sha256:${'a'.repeat(62)}/..`,
    `sha256:${'A'.repeat(64)}`,
    `sha256:${'a'.repeat(63)}`,
    `sha256:${'a'.repeat(65)}`,
    `sha256:${'a'.repeat(64)}\n`,
    `sha256:${'a'.repeat(64)}\0`,
    `md5:${'a'.repeat(64)}`,
    '',
    undefined,
    42,
  ];
  test('every method refuses a malformed hash with InvalidBlobHashError before touching the filesystem', async () => {
    const dir = freshDir();
    const store = await openFsBlobStore(dir);
    // Gone: any filesystem access would now fail differently (ENOENT / not found).
    await rm(dir, { recursive: true });
    for (const value of bad) {
      const hash = value as BlobHash;
      const calls: [string, () => Promise<unknown>][] = [
        ['get', () => store.get(hash)],
        ['has', () => store.has(hash)],
        ['stat', () => store.stat(hash)],
        ['missing', () => store.missing([blobHashOf(text('fine')), hash])],
        ['putVerified', () => store.putVerified(hash, text('x'))],
      ];
      for (const [name, call] of calls) {
        await assert.rejects(call(), (error) => {
          assert.ok(InvalidBlobHashError.isInstance(error), `${name}(${JSON.stringify(value)}): ${error}`);
          assert.equal(error.code, 'invalid_blob_hash');
          return true;
        });
      }
    }
  });
});

describe('crash safety', () => {
  const child = fileURLToPath(new URL('./testing/blob-writer-child.ts', import.meta.url));

  async function assertEveryBlobIsWhole(dir: string): Promise<number> {
    const files = await filesUnder(join(dir, 'sha256'));
    for (const file of files) {
      const name = file.split('/').slice(-2).join('');
      let content: Buffer;
      try {
        content = zstdDecompressSync(await readFile(file));
      } catch (error) {
        assert.fail(`${file} is not a whole zstd frame: ${error}`);
      }
      assert.equal(blobHashOf(content), `sha256:${name}`, `${file} holds exactly the bytes its name says`);
    }
    return files.length;
  }

  test('a writer SIGKILLed mid-way leaves only whole blobs; reopening removes the temp files of dead writers', async () => {
    const dir = freshDir();
    await (await openFsBlobStore(dir)).close();
    const acknowledged = new Set<BlobHash>();
    for (let round = 0; round < 4; round++) {
      const killAfter = 100 + Math.floor(Math.random() * 1000);
      const writer = spawn(process.execPath, [child, dir, '10000'], { stdio: ['ignore', 'pipe', 'inherit'] });
      const exited = new Promise<NodeJS.Signals | null>((resolve) =>
        writer.on('exit', (_, signal) => resolve(signal)),
      );
      let acks = 0;
      for await (const line of createInterface({ input: writer.stdout })) {
        const match = /^ok (sha256:[0-9a-f]{64})$/.exec(line);
        if (match === null) continue;
        acknowledged.add(match[1] as BlobHash);
        // A little later than the ack, so the kill lands at a random point of the writes in flight.
        if (++acks === killAfter) setTimeout(() => writer.kill('SIGKILL'), Math.random() * 4);
      }
      assert.equal(await exited, 'SIGKILL', 'the writer was killed before it finished');
      assert.ok(acks >= killAfter && acks < 10_000);

      const stored = await assertEveryBlobIsWhole(dir);
      assert.ok(stored >= acknowledged.size);

      // Temp files: the killed writer's own leftovers (if the kill landed mid-write), plus some
      // planted ones so every rule is exercised whatever the timing.
      const temp = join(dir, 'tmp');
      const twoHoursAgo = new Date(Date.now() - 2 * 60 * 60 * 1000);
      await writeFile(join(temp, `${writer.pid}-0badc0de.tmp`), 'partial'); // dead writer
      await writeFile(join(temp, `${deadPid()}-0badc0df.tmp`), 'partial'); // dead writer
      await writeFile(join(temp, `${process.pid}-00001111.tmp`), 'in progress'); // live writer: keep
      await writeFile(join(temp, `${process.pid}-00002222.tmp`), 'stuck'); // live but over an hour old
      await utimes(join(temp, `${process.pid}-00002222.tmp`), twoHoursAgo, twoHoursAgo);

      const reopened = await openFsBlobStore(dir);
      assert.deepEqual(await readdir(temp), [`${process.pid}-00001111.tmp`]);
      await rm(join(temp, `${process.pid}-00001111.tmp`));
      for (const hash of acknowledged) assert.ok(await reopened.has(hash), `acknowledged ${hash} is stored`);
      await reopened.close();
    }
    const store = await openFsBlobStore(dir);
    assert.deepEqual((await store.verify()).corrupt, []);
  });
});

describe('gc', () => {
  async function oldStore(count: number, prefix: string) {
    const dir = freshDir();
    const store = await openFsBlobStore(dir);
    const blobs = Array.from({ length: count }, (_, i) => jsonish(`${prefix}-${i}`, 300 + (i % 7) * 200));
    const hashes = await Promise.all(blobs.map((bytes) => store.put(bytes)));
    const old = new Date(Date.now() - 2 * DAY);
    for (const hash of hashes) await utimes(blobPath(dir, hash), old, old);
    return { dir, store, blobs, hashes };
  }

  test('deletes unreferenced blobs past the grace period, keeps referenced and young ones', async () => {
    const { dir, store, hashes } = await oldStore(10, 'basic');
    const young = await store.put(jsonish('young', 500));
    const referenced = new Set(hashes.slice(0, 4));
    const report = await store.gc(async (hash) => referenced.has(hash));
    assert.equal(report.scanned, 11);
    assert.equal(report.keptInGrace, 1);
    assert.deepEqual(report.deleted, hashes.slice(4).sort());
    assert.deepEqual((await store.missing([...hashes, young])).sort(), hashes.slice(4).sort());
    assert.deepEqual(await readdir(join(dir, 'trash')), []);
    // graceMs and now: a 1 h grace, evaluated 2 h from now, makes the young blob old.
    const later = await store.gc((hash) => referenced.has(hash), {
      graceMs: 60 * 60 * 1000,
      now: Date.now() + 2 * 60 * 60 * 1000,
    });
    assert.deepEqual(later.deleted, [young]);
  });

  test('a blob re-put after gc judged it old, but before gc moves it, survives', async () => {
    const { store, blobs, hashes } = await oldStore(5, 'before-trash');
    const target = 2;
    const gcStore = await openFsBlobStore(store.location, {
      hooks: {
        beforeTrash: async (hash) => void (hash === hashes[target] && (await store.put(blobs[target]!))),
      },
    });
    const report = await gcStore.gc(() => false);
    assert.equal(report.deleted.length, 4);
    assert.ok(!report.deleted.includes(hashes[target]!));
    assert.deepEqual(new Uint8Array(await store.get(hashes[target]!)), blobs[target]);
  });

  test('a blob re-put while gc holds it in trash/ is written anew and survives; get finds it meanwhile', async () => {
    const { store, blobs, hashes } = await oldStore(5, 'after-trash');
    const target = 3;
    let readMeanwhile: Uint8Array | undefined;
    const gcStore = await openFsBlobStore(store.location, {
      hooks: {
        afterTrash: async (hash) => {
          if (hash !== hashes[target]) return;
          readMeanwhile = await store.get(hash);
          await store.put(blobs[target]!);
        },
      },
    });
    await gcStore.gc(() => false);
    assert.deepEqual(readMeanwhile && new Uint8Array(readMeanwhile), blobs[target]);
    assert.deepEqual(new Uint8Array(await store.get(hashes[target]!)), blobs[target]);
    assert.deepEqual(
      await store.missing(hashes),
      hashes.filter((_, i) => i !== target),
    );
  });

  test('gc running while uploads arrive deletes no blob put during it', async () => {
    for (let round = 0; round < 3; round++) {
      const { dir, blobs, hashes } = await oldStore(1000, `race-${round}`);
      const byHash = new Map(hashes.map((hash, i) => [hash, blobs[i]!]));
      // Uploads aim at the blobs gc is looking at right now as well as at random old and new
      // ones; gc pauses for a moment after each decision (as on a busy disk), so many re-puts
      // land between gc's decision and its removal.
      const store = await openFsBlobStore(dir, {
        hooks: {
          beforeTrash: () => new Promise((resolve) => setTimeout(resolve, Math.random() * 3)),
          afterTrash: () => new Promise((resolve) => setTimeout(resolve, Math.random() * 3)),
        },
      });
      const asked: BlobHash[] = [];
      let gcDone = false;
      const gcRun = store
        .gc((hash) => {
          asked.push(hash);
          return false;
        })
        .finally(() => {
          gcDone = true;
        });
      const putDuringGc: Uint8Array[] = [];
      const reput = new Set<BlobHash>();
      let fresh = 0;
      const uploader = async (): Promise<void> => {
        while (!gcDone) {
          // Each old blob is re-put at most once, so a later put cannot heal a wrong deletion.
          const dice = Math.random();
          const current = asked[asked.length - 1 - Math.floor(Math.random() * Math.min(asked.length, 16))];
          const candidate =
            dice < 0.5 && current !== undefined
              ? current
              : dice < 0.85
                ? hashes[Math.floor(Math.random() * hashes.length)]!
                : undefined;
          const old = candidate !== undefined && !reput.has(candidate) ? byHash.get(candidate) : undefined;
          if (old !== undefined) reput.add(candidate!);
          const bytes = old ?? jsonish(`new-${round}-${fresh++}`, 800);
          putDuringGc.push(bytes);
          await store.put(bytes);
        }
      };
      const [report] = await Promise.all([gcRun, uploader(), uploader(), uploader(), uploader()]);
      assert.ok(report.deleted.length > 0, 'gc deleted something');
      assert.ok(putDuringGc.length > 20, 'uploads overlapped the gc');
      const reader = await openFsBlobStore(dir);
      for (const bytes of putDuringGc) {
        assert.deepEqual(new Uint8Array(await reader.get(blobHashOf(bytes))), bytes);
      }
      assert.deepEqual(await readdir(join(dir, 'trash')), []);
    }
  });

  test('reopening puts back blobs a crashed gc left in trash/, without clobbering a newer copy', async () => {
    const { dir, store, blobs, hashes } = await oldStore(2, 'crashed-gc');
    const trash = join(dir, 'trash');
    // Blob 0: moved to trash and nothing else. Blob 1: in trash and also re-written meanwhile.
    await link(blobPath(dir, hashes[0]!), join(trash, `${hexOf(hashes[0]!)}.${deadPid()}-00aa`));
    await rm(blobPath(dir, hashes[0]!));
    await link(blobPath(dir, hashes[1]!), join(trash, `${hexOf(hashes[1]!)}.${deadPid()}-00bb`));
    await rm(blobPath(dir, hashes[1]!));
    await store.put(blobs[1]!);
    const newer = await stat(blobPath(dir, hashes[1]!));
    const reopened = await openFsBlobStore(dir);
    assert.deepEqual(await readdir(trash), []);
    assert.deepEqual(new Uint8Array(await reopened.get(hashes[0]!)), blobs[0]);
    assert.equal((await stat(blobPath(dir, hashes[1]!))).ino, newer.ino, 'the newer copy stays');
  });
});

test('opening creates the directories', async () => {
  const dir = freshDir();
  await mkdir(dir);
  await openFsBlobStore(dir);
  assert.deepEqual((await readdir(dir)).sort(), ['packs', 'sha256', 'tmp', 'trash']);
});
