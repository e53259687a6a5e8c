import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import { buildStream, newNamespace, runStoreContract, simpleRunPlan } from '../contract/index.ts';
import { openFsBlobStore } from '../fs-blob-store.ts';
import { StoreTooNewError, StoreUnavailableError } from '../store-errors.ts';
import { POSTGRES_MIGRATIONS, type PostgresMigration } from './migrations.ts';
import { PostgresStore } from './postgres-store.ts';

// Every store this file opens lives in its own fresh schema, dropped at the end.
const POSTGRES_URL = process.env.REWIND_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const root = await mkdtemp(join(tmpdir(), 'rewind-postgres-store-'));
const prefix = `rewind_test_${randomBytes(4).toString('hex')}`;
const schemas: string[] = [];

after(async () => {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
  await rm(root, { recursive: true, force: true });
});

async function openFresh(): Promise<PostgresStore> {
  const schema = `${prefix}_${schemas.length + 1}`;
  schemas.push(schema);
  return PostgresStore.open(POSTGRES_URL, { schema, blobs: await openFsBlobStore(join(root, schema)) });
}

runStoreContract('postgres', openFresh);

describe('PostgresStore migrations', () => {
  const extra = {
    version: POSTGRES_MIGRATIONS.length + 1,
    name: 'extra table',
    sql: 'CREATE TABLE {schema}.extra (x integer);',
  };

  async function openWith(schema: string, migrations?: readonly PostgresMigration[]): Promise<PostgresStore> {
    return PostgresStore.open(POSTGRES_URL, {
      schema,
      blobs: await openFsBlobStore(join(root, schema)),
      maxConnections: 2,
      ...(migrations === undefined ? {} : { migrations }),
    });
  }

  function freshSchema(): string {
    const schema = `${prefix}_m${schemas.length + 1}`;
    schemas.push(schema);
    return schema;
  }

  async function migrationsOf(
    schema: string,
  ): Promise<{ version: number; name: string; applied_at: Date }[]> {
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      const { rows } = await client.query(
        `SELECT version, name, applied_at FROM "${schema}".schema_migrations ORDER BY version`,
      );
      return rows;
    } finally {
      await client.end();
    }
  }

  test('servers starting at once on a new schema migrate it exactly once', async () => {
    const schema = freshSchema();
    const stores = await Promise.all(Array.from({ length: 6 }, () => openWith(schema)));
    await stores[0]!.append(buildStream([simpleRunPlan(1)], newNamespace()).events);
    for (const store of stores) assert.equal((await store.listRuns()).items.length, 1);
    await Promise.all(stores.map((store) => store.close()));
    assert.deepEqual(
      (await migrationsOf(schema)).map((r) => [r.version, r.name]),
      POSTGRES_MIGRATIONS.map((m) => [m.version, m.name]),
    );
  });

  test('opening an existing store applies only the newer migrations, once', async () => {
    const schema = freshSchema();
    await (await openWith(schema, POSTGRES_MIGRATIONS)).close();
    const before = await migrationsOf(schema);
    await (await openWith(schema, [...POSTGRES_MIGRATIONS, extra])).close();
    const after = await migrationsOf(schema);
    assert.deepEqual(after.slice(0, before.length), before, 'older migrations are not re-applied');
    assert.deepEqual(
      after.map((r) => r.version),
      [...POSTGRES_MIGRATIONS.map((m) => m.version), extra.version],
    );
    await (await openWith(schema, [...POSTGRES_MIGRATIONS, extra])).close();
    assert.deepEqual(await migrationsOf(schema), after);
  });

  test('a store written by a newer Rewind fails to open with a clear error', async () => {
    const schema = freshSchema();
    await (await openWith(schema, [...POSTGRES_MIGRATIONS, extra])).close();
    await assert.rejects(openWith(schema), (error: unknown) => {
      assert.ok(StoreTooNewError.isInstance(error));
      assert.equal(error.found, extra.version);
      assert.match(error.message, /was written by a newer Rewind.*upgrade Rewind/);
      return true;
    });
  });

  test('an unreachable server fails with a clear error that hides the password', async () => {
    await assert.rejects(
      PostgresStore.open('postgres://rewind:s3cret@127.0.0.1:1/test', {
        blobs: () => Promise.reject(new Error('blobs must not be opened')),
        connectTimeoutMs: 2000,
      }),
      (error: unknown) => {
        assert.ok(StoreUnavailableError.isInstance(error));
        assert.match(
          error.message,
          /cannot connect to PostgreSQL at postgres:\/\/rewind:\*\*\*@127\.0\.0\.1:1\/test/,
        );
        assert.match(error.message, /check that the server is running/);
        assert.doesNotMatch(error.message, /s3cret/);
        return true;
      },
    );
  });
});
