import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openFsBlobStore, PostgresStore, SqliteStore, type Store } from '@rewind/store';
import pg from 'pg';
import { type RunningServer, type StartServerOptions, startServer } from '../server.ts';

// Test support: every server test runs against both stores — SQLite in a temp directory and the
// real PostgreSQL in a fresh, randomly named schema (dropped afterwards) — over real HTTP on
// 127.0.0.1.

export const POSTGRES_URL = process.env.REWIND_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface Backend {
  name: 'sqlite' | 'postgres';
  /** A fresh, empty store; `location` is what `rewind --store` takes (the postgres URL names the schema). */
  open(): Promise<{ store: Store; location: string; blobs: string; cleanup(): Promise<void> }>;
}

export async function freshDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

export const BACKENDS: Backend[] = [
  {
    name: 'sqlite',
    async open() {
      const dir = await freshDir('rewind-server-sqlite-');
      const blobs = join(dir, 'blobs');
      const store = await SqliteStore.open(dir, { blobs: await openFsBlobStore(blobs) });
      return {
        store,
        location: dir,
        blobs,
        cleanup: async () => {
          await store.close().catch(() => {});
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 'postgres',
    async open() {
      const dir = await freshDir('rewind-server-postgres-');
      const schema = `rewind_server_test_${randomBytes(5).toString('hex')}`;
      const blobs = join(dir, 'blobs');
      const store = await PostgresStore.open(POSTGRES_URL, { schema, blobs: () => openFsBlobStore(blobs) });
      const url = new URL(POSTGRES_URL);
      url.searchParams.set('schema', schema);
      return {
        store,
        location: url.toString(),
        blobs,
        cleanup: async () => {
          await store.close().catch(() => {});
          await dropSchema(schema);
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  },
];

export interface TestServer {
  store: Store;
  server: RunningServer;
  url: string;
  blobs: string;
  close(): Promise<void>;
}

export async function startTestServer(
  backend: Backend,
  options: Omit<StartServerOptions, 'store'> = {},
): Promise<TestServer> {
  const opened = await backend.open();
  const server = await startServer({ port: 0, log: false, ...options, store: opened.store });
  return {
    store: opened.store,
    server,
    url: server.url,
    blobs: opened.blobs,
    async close() {
      await server.close();
      await opened.cleanup();
    },
  };
}

// The invalid-event fixtures (fixtures/events/invalid/cases.json), built as the schema tests do.
const FIXTURES = new URL('../../../../fixtures/events/', import.meta.url);

export interface InvalidCase {
  name: string;
  event: unknown;
  field: string;
}

export function invalidEventCases(): InvalidCase[] {
  const valid = Object.fromEntries(
    readdirSync(new URL('valid/', FIXTURES)).map((file) => [
      file,
      JSON.parse(readFileSync(new URL(`valid/${file}`, FIXTURES), 'utf8')) as Record<string, unknown>,
    ]),
  );
  const cases = JSON.parse(readFileSync(new URL('invalid/cases.json', FIXTURES), 'utf8')) as Array<{
    name: string;
    base?: string;
    raw?: unknown;
    set?: Record<string, unknown>;
    delete?: string[];
    field: string;
  }>;
  return cases.map((c) => {
    if (c.base === undefined) return { name: c.name, event: c.raw, field: c.field };
    const event: Record<string, unknown> = { ...valid[c.base]!, ...c.set };
    for (const key of c.delete ?? []) delete event[key];
    return { name: c.name, event, field: c.field };
  });
}

/** fetch with a JSON body. */
export function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

/** A small seeded PRNG (LCG), so a failing order or position can be reproduced. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}
