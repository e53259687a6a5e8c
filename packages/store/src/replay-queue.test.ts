import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import pg from 'pg';
import { runReplayQueueContract } from './contract/index.ts';
import { openFsBlobStore } from './fs-blob-store.ts';
import { PostgresStore } from './postgres/postgres-store.ts';
import { SqliteStore } from './sqlite/sqlite-store.ts';

// The one replay queue contract, on SQLite (a fresh directory each) and on the real PostgreSQL
// (a fresh schema each, dropped at the end).
const POSTGRES_URL = process.env.REWIND_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const root = await mkdtemp(join(tmpdir(), 'rewind-replay-queue-'));
const prefix = `rewind_queue_test_${randomBytes(4).toString('hex')}`;
const schemas: string[] = [];
let dirs = 0;

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

runReplayQueueContract('sqlite', async () => {
  const dir = join(root, `sqlite-${++dirs}`);
  return SqliteStore.open(dir, { blobs: await openFsBlobStore(join(dir, 'blobs')) });
});

runReplayQueueContract('postgres', async () => {
  const schema = `${prefix}_${schemas.length + 1}`;
  schemas.push(schema);
  return PostgresStore.open(POSTGRES_URL, { schema, blobs: await openFsBlobStore(join(root, schema)) });
});
