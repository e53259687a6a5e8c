import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { zstdCompressSync } from 'node:zlib';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { type BlobHash, blobHashOf } from '@rewind/schema';
import pg from 'pg';
import { InvalidBlobLocationError } from './blob-errors.ts';
import { resolveStoreConfig } from './config.ts';
import { jsonishBlob, runBlobStoreContract } from './contract/blob-contract.ts';
import { openStore } from './open.ts';
import { PostgresStore } from './postgres/postgres-store.ts';
import { isS3Location, openS3BlobStore, parseS3Location, S3BlobStore } from './s3-blob-store.ts';
import { SqliteStore } from './sqlite/sqlite-store.ts';
import { StoreUnavailableError } from './store-errors.ts';
import { startTestS3Server, type TestS3Server } from './testing/s3-server.ts';

// The S3 blob store against a real S3-compatible server (s3rver) on loopback.

const server: TestS3Server = await startTestS3Server();
const scratch = await mkdtemp(join(tmpdir(), 'rewind-s3-store-'));
after(async () => {
  await server.close();
  await rm(scratch, { recursive: true, force: true });
});
await server.createBucket('rewind-contract');
let stores = 0;

const keyOf = (store: S3BlobStore, hash: BlobHash): string =>
  `${store.prefix === '' ? '' : `${store.prefix}/`}sha256/${hash.slice('sha256:'.length)}`;

async function readObject(bucket: string, key: string): Promise<Uint8Array> {
  const answer = await server.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return answer.Body!.transformToByteArray();
}

runBlobStoreContract('S3 (s3rver), under a prefix', {
  open: () => openS3BlobStore(`s3://rewind-contract/run-${stores++}/blobs`, { env: server.env }),
  async damage(store, hash, damage) {
    const s3 = store as S3BlobStore;
    const stored = await readObject(s3.bucket, keyOf(s3, hash));
    await server.client.send(
      new PutObjectCommand({ Bucket: s3.bucket, Key: keyOf(s3, hash), Body: damage(stored) }),
    );
  },
});

describe('S3 layout', () => {
  test('a blob is one zstd frame at <prefix>/sha256/<64 hex>, carrying its size as metadata', async () => {
    await server.createBucket('rewind-layout');
    const store = await openS3BlobStore('s3://rewind-layout/team/a/', { env: server.env });
    try {
      assert.equal(store.prefix, 'team/a');
      const bytes = jsonishBlob('layout', 5000);
      const hash = await store.put(bytes);
      const stored = await readObject('rewind-layout', `team/a/sha256/${hash.slice(7)}`);
      assert.equal(Buffer.from(stored).readUInt32LE(0), 0xfd2fb528, 'zstd magic number');
      assert.ok(stored.length < bytes.length / 2, 'compressed');
      // The bucket root works too, and objects that are not blobs are ignored by list and gc.
      const root = await openS3BlobStore('s3://rewind-layout', { env: server.env });
      await server.client.send(
        new PutObjectCommand({ Bucket: 'rewind-layout', Key: 'sha256/README', Body: 'not a blob' }),
      );
      const rootHash = await root.put(bytes);
      const listed: BlobHash[] = [];
      for await (const listedHash of root.list()) listed.push(listedHash);
      assert.deepEqual(listed, [rootHash]);
      assert.equal((await root.gc(() => false, { now: Date.now() + 3e9 })).scanned, 1);
      await root.close();
    } finally {
      await store.close();
    }
  });

  test('stat of an object written by another tool (no size metadata) reads it to learn its size', async () => {
    await server.createBucket('rewind-foreign');
    const store = await openS3BlobStore('s3://rewind-foreign/x', { env: server.env });
    try {
      const bytes = jsonishBlob('foreign', 3000);
      const hash = blobHashOf(bytes);
      await server.client.send(
        new PutObjectCommand({
          Bucket: 'rewind-foreign',
          Key: keyOf(store, hash),
          Body: zstdCompressSync(bytes),
        }),
      );
      assert.equal((await store.stat(hash))?.size, 3000);
      assert.deepEqual(new Uint8Array(await store.get(hash)), bytes);
    } finally {
      await store.close();
    }
  });
});

describe('S3 gc and concurrent puts', () => {
  test('a blob re-put after gc listed it as old, before gc deletes it, survives', async () => {
    await server.createBucket('rewind-gc-race');
    const writer = await openS3BlobStore('s3://rewind-gc-race/p', { env: server.env });
    const blobs = Array.from({ length: 5 }, (_, i) => jsonishBlob(`race-${i}`, 700));
    const hashes = await writer.putMany(blobs);
    const target = 2;
    // Wait past LastModified's one-second resolution, then judge with a grace of one second.
    await new Promise((resolve) => setTimeout(resolve, 2100));
    const gcStore = await openS3BlobStore('s3://rewind-gc-race/p', {
      env: server.env,
      hooks: {
        beforeRecheck: async (hash) => {
          if (hash === hashes[target]) await writer.put(blobs[target]!);
        },
      },
    });
    try {
      const report = await gcStore.gc(() => false, { graceMs: 1000 });
      assert.deepEqual(report.deleted, hashes.filter((_, i) => i !== target).sort());
      assert.equal(report.keptInGrace, 1);
      assert.deepEqual(new Uint8Array(await gcStore.get(hashes[target]!)), blobs[target]);
    } finally {
      await writer.close();
      await gcStore.close();
    }
  });
});

describe('S3 locations and errors', () => {
  test('parses s3://bucket/prefix and names what is wrong with a malformed one', () => {
    assert.deepEqual(parseS3Location('s3://my-bucket'), { bucket: 'my-bucket', prefix: '' });
    assert.deepEqual(parseS3Location('s3://my.bucket/a/b/'), { bucket: 'my.bucket', prefix: 'a/b' });
    assert.equal(isS3Location('S3://x'), true);
    assert.equal(isS3Location('./s3'), false);
    const cases: [string, RegExp][] = [
      ['s3://', /names no bucket/],
      ['s3:///prefix', /names no bucket/],
      ['s3:/bucket/prefix', /does not start with s3:\/\//],
      ['s3:bucket', /does not start with s3:\/\//],
      ['s3://ab/x', /"ab" is not a valid bucket name/],
      ['s3://My_Bucket/x', /"My_Bucket" is not a valid bucket name/],
      ['s3://bucket-/x', /is not a valid bucket name/],
      ['s3://bucket/a//b', /not a usable key prefix/],
      ['s3://bucket/a/../b', /not a usable key prefix/],
      ['s3://bucket/a?versionId=1', /not a usable key prefix/],
    ];
    for (const [location, reason] of cases) {
      assert.throws(
        () => parseS3Location(location),
        (error) => {
          assert.ok(InvalidBlobLocationError.isInstance(error), location);
          assert.equal(error.code, 'invalid_blob_location');
          assert.match(error.message, reason);
          assert.match(error.message, /use a directory or s3:\/\/<bucket>\/<prefix>/);
          return true;
        },
        location,
      );
    }
  });

  test('a missing bucket is StoreUnavailableError saying how to create it', async () => {
    await assert.rejects(openS3BlobStore('s3://no-such-bucket/p', { env: server.env }), (error) => {
      assert.ok(StoreUnavailableError.isInstance(error), String(error));
      assert.match(
        error.message,
        /the S3 bucket "no-such-bucket" does not exist at http:\/\/127\.0\.0\.1:\d+/,
      );
      assert.match(error.message, /aws s3 mb s3:\/\/no-such-bucket/);
      return true;
    });
  });

  test('an unreachable endpoint is StoreUnavailableError naming the endpoint and the variables to check', async () => {
    const env = { ...server.env, AWS_ENDPOINT_URL_S3: '', AWS_ENDPOINT_URL: 'http://127.0.0.1:1' };
    await assert.rejects(openS3BlobStore('s3://rewind-contract/p', { env }), (error) => {
      assert.ok(StoreUnavailableError.isInstance(error), String(error));
      assert.match(error.message, /cannot reach the S3 bucket "rewind-contract" at http:\/\/127\.0\.0\.1:1/);
      assert.match(error.message, /ECONNREFUSED/);
      assert.match(error.message, /AWS_ENDPOINT_URL_S3/);
      return true;
    });
  });
});

describe('openStore and the store configuration with s3:// blobs', () => {
  let dir: string;
  before(async () => {
    dir = join(scratch, 'sqlite-with-s3');
    await server.createBucket('rewind-open');
  });

  test('openStore(dir, {blobs: "s3://…"}) keeps metadata in SQLite and blobs in the bucket', async () => {
    const store = await openStore(dir, { blobs: 's3://rewind-open/blobs', env: server.env });
    try {
      assert.ok(store instanceof SqliteStore);
      assert.ok(store.blobs instanceof S3BlobStore);
      assert.equal(store.blobs.location, 's3://rewind-open/blobs');
      const hash = await store.blobs.put(jsonishBlob('open', 900));
      assert.ok((await readObject('rewind-open', `blobs/sha256/${hash.slice(7)}`)).length > 0);
    } finally {
      await store.close();
    }
  });

  test('openStore(postgres://…, {blobs: "s3://…"}) keeps metadata in PostgreSQL and blobs in the bucket', async () => {
    const url = process.env.REWIND_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
    const schema = `rewind_test_s3_${randomBytes(4).toString('hex')}`;
    try {
      const store = await openStore(url, { blobs: 's3://rewind-open/scale-out', schema, env: server.env });
      try {
        assert.ok(store instanceof PostgresStore);
        assert.ok(store.blobs instanceof S3BlobStore);
        const hash = await store.blobs.put(jsonishBlob('postgres', 900));
        assert.ok((await readObject('rewind-open', `scale-out/sha256/${hash.slice(7)}`)).length > 0);
      } finally {
        await store.close();
      }
    } finally {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).finally(() => client.end());
    }
  });

  test('openStore fails clearly on a malformed s3 URL and on a missing bucket', async () => {
    await assert.rejects(openStore(dir, { blobs: 's3://x/p', env: server.env }), (error) =>
      InvalidBlobLocationError.isInstance(error),
    );
    await assert.rejects(openStore(dir, { blobs: 's3://rewind-absent/p', env: server.env }), (error) =>
      StoreUnavailableError.isInstance(error),
    );
  });

  test('--blobs and REWIND_BLOBS take an s3:// location as written, never as a relative directory', () => {
    const cwd = scratch;
    const fromEnv = resolveStoreConfig({ env: { REWIND_BLOBS: 's3://rewind-open/e' }, cwd });
    assert.equal(fromEnv.blobs, 's3://rewind-open/e');
    assert.equal(fromEnv.blobsSource, 'env');
    const fromFlag = resolveStoreConfig({ blobs: 's3://rewind-open/f', env: {}, cwd });
    assert.equal(fromFlag.blobs, 's3://rewind-open/f');
    // A typo is not silently a directory called "s3:": openStore reports it.
    assert.equal(resolveStoreConfig({ blobs: 's3:/rewind-open', env: {}, cwd }).blobs, 's3:/rewind-open');
  });

  test('a SQLite store with filesystem blobs never loads the AWS SDK', () => {
    const child = fileURLToPath(new URL('./testing/aws-sdk-loaded-child.ts', import.meta.url));
    const result = spawnSync(process.execPath, [child, join(scratch, 'no-aws')], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), { sqlite: [], s3: true });
  });
});
