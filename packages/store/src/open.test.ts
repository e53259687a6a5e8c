import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pg from 'pg';
import { FsBlobStore } from './fs-blob-store.ts';
import { openStore } from './open.ts';
import { PostgresStore } from './postgres/postgres-store.ts';
import { SqliteStore } from './sqlite/sqlite-store.ts';
import { StoreUnavailableError } from './store-errors.ts';

const POSTGRES_URL = process.env.REWIND_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const root = await mkdtemp(join(tmpdir(), 'rewind-open-store-'));
const schema = `rewind_test_open_${randomBytes(4).toString('hex')}`;

after(async () => {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).finally(() => client.end());
  await rm(root, { recursive: true, force: true });
});

test('a directory opens the SQLite store, creating <dir>/rewind.db and <dir>/blobs', async () => {
  const dir = join(root, 'nested', 'store');
  const store = await openStore(dir);
  try {
    assert.ok(store instanceof SqliteStore);
    assert.equal(store.location, dir);
    assert.ok(store.blobs instanceof FsBlobStore);
    assert.ok(existsSync(join(dir, 'rewind.db')));
    assert.ok(existsSync(join(dir, 'blobs')));
    const hash = await store.blobs.put(new TextEncoder().encode('{"hello":1}'));
    assert.equal(await store.blobs.has(hash), true);
  } finally {
    await store.close();
  }
});

test('a directory that cannot be created fails with a clear error', async () => {
  const file = join(root, 'a-file');
  await writeFile(file, 'not a directory');
  await assert.rejects(openStore(join(file, 'store')), (error: unknown) => {
    assert.ok(StoreUnavailableError.isInstance(error));
    assert.match(error.message, /cannot use .*a-file\/store as the Rewind store directory/);
    assert.match(error.message, /choose a writable directory/);
    return true;
  });
});

test('a postgres:// or postgresql:// URL opens the PostgreSQL store with blobs in options.blobs', async () => {
  for (const url of [POSTGRES_URL, POSTGRES_URL.replace(/^postgres:/, 'postgresql:')]) {
    const blobs = join(root, 'pg-blobs');
    const store = await openStore(url, { blobs, schema });
    try {
      assert.ok(store instanceof PostgresStore);
      assert.equal(store.schema, schema);
      assert.equal(store.blobs.location, blobs);
      assert.deepEqual((await store.listRuns()).items, []);
    } finally {
      await store.close();
    }
  }
});

test('an unreachable database fails with a clear error, and opens no blob directory', async () => {
  const blobs = join(root, 'never-created');
  await assert.rejects(
    openStore('postgresql://rewind:pw@127.0.0.1:1/rewind', { blobs }),
    (error: unknown) => {
      assert.ok(StoreUnavailableError.isInstance(error));
      assert.match(
        error.message,
        /cannot connect to PostgreSQL at postgresql:\/\/rewind:\*\*\*@127\.0\.0\.1:1\/rewind/,
      );
      assert.match(error.message, /check that the server is running/);
      return true;
    },
  );
  assert.equal(existsSync(blobs), false);
});

test('a postgres URL with ?schema= opens that schema (not the default), and conflicts with a different schema option', async () => {
  const url = `${POSTGRES_URL}?schema=${schema}`;
  const store = await openStore(url, { blobs: join(root, 'pg-url-blobs') });
  try {
    assert.ok(store instanceof PostgresStore);
  } finally {
    await store.close();
  }
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    const { rows } = await client.query(
      "SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'runs'",
      [schema],
    );
    assert.equal(rows[0].n, 1, 'the tables are in the schema the URL names');
  } finally {
    await client.end();
  }
  await assert.rejects(openStore(url, { schema: 'another_schema' }), (error: unknown) => {
    assert.ok(error instanceof StoreUnavailableError);
    assert.match(error.message, /names schema .* but the schema option says 'another_schema'/);
    return true;
  });
});
