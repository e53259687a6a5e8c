import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, test } from 'node:test';
import { buildStream, newNamespace, runStoreContract, simpleRunPlan } from '../contract/index.ts';
import { openFsBlobStore } from '../fs-blob-store.ts';
import { StoreTooNewError, StoreUnavailableError } from '../store-errors.ts';
import { SQLITE_MIGRATIONS, type SqliteMigration } from './migrations.ts';
import { SqliteStore } from './sqlite-store.ts';

const root = await mkdtemp(join(tmpdir(), 'rewind-sqlite-store-'));
after(() => rm(root, { recursive: true, force: true }));
let n = 0;

async function openFresh(): Promise<SqliteStore> {
  const dir = join(root, `store-${++n}`);
  return SqliteStore.open(dir, { blobs: await openFsBlobStore(join(dir, 'blobs')) });
}

runStoreContract('sqlite', openFresh);

describe('SqliteStore migrations and file', () => {
  const extra = {
    version: SQLITE_MIGRATIONS.length + 1,
    name: 'extra table',
    sql: 'CREATE TABLE extra (x INTEGER);',
  };

  async function openWith(dir: string, migrations?: readonly SqliteMigration[]): Promise<SqliteStore> {
    return SqliteStore.open(dir, {
      blobs: await openFsBlobStore(join(dir, 'blobs')),
      ...(migrations === undefined ? {} : { migrations }),
    });
  }

  function migrationsOf(dir: string): { version: number; name: string; applied_at: string }[] {
    const db = new DatabaseSync(join(dir, 'rewind.db'), { readOnly: true });
    try {
      return db
        .prepare('SELECT version, name, applied_at FROM schema_migrations ORDER BY version')
        .all() as never;
    } finally {
      db.close();
    }
  }

  test('a new store is one WAL-mode file, rewind.db, with its migrations recorded', async () => {
    const dir = join(root, 'fresh');
    const store = await openWith(dir);
    await store.append(buildStream([simpleRunPlan(3)], newNamespace()).events);
    await store.close();
    assert.equal(existsSync(join(dir, 'rewind.db-wal')), false, 'the log is checkpointed on close');
    const rows = migrationsOf(dir);
    assert.deepEqual(
      rows.map((r) => [r.version, r.name]),
      SQLITE_MIGRATIONS.map((m) => [m.version, m.name]),
    );
    assert.ok(!Number.isNaN(Date.parse(rows[0]!.applied_at)));
    const db = new DatabaseSync(join(dir, 'rewind.db'));
    try {
      assert.equal(db.prepare('PRAGMA journal_mode').get()?.journal_mode, 'wal');
      assert.equal(db.prepare('PRAGMA page_size').get()?.page_size, 8192);
    } finally {
      db.close();
    }
  });

  test('opening an existing store applies only the newer migrations, once', async () => {
    const dir = join(root, 'upgrade');
    const v1 = await openWith(dir, SQLITE_MIGRATIONS);
    await v1.append(buildStream([simpleRunPlan(1)], newNamespace()).events);
    await v1.close();
    const before = migrationsOf(dir);
    await new Promise((done) => setTimeout(done, 5));

    const v2 = await openWith(dir, [...SQLITE_MIGRATIONS, extra]);
    await v2.close();
    const after = migrationsOf(dir);
    assert.deepEqual(after.slice(0, before.length), before, 'older migrations are not re-applied');
    assert.deepEqual(
      after.map((r) => r.version),
      [...SQLITE_MIGRATIONS.map((m) => m.version), extra.version],
    );
    // A second open finds nothing to do (re-running `extra` would fail: its table exists).
    const again = await openWith(dir, [...SQLITE_MIGRATIONS, extra]);
    assert.equal((await again.listRuns()).items.length, 1);
    await again.close();
    assert.deepEqual(migrationsOf(dir), after);
  });

  test('a store written by a newer Rewind fails to open with a clear error', async () => {
    const dir = join(root, 'newer');
    await (await openWith(dir, [...SQLITE_MIGRATIONS, extra])).close();
    await assert.rejects(openWith(dir), (error: unknown) => {
      assert.ok(StoreTooNewError.isInstance(error));
      assert.equal(error.code, 'store_too_new');
      assert.equal(error.found, extra.version);
      assert.equal(error.supported, SQLITE_MIGRATIONS.length);
      assert.match(error.message, /this store .* was written by a newer Rewind.*upgrade Rewind/);
      return true;
    });
  });

  test('checkpoints run in the background; closing leaves no log behind and loses nothing', async () => {
    const dir = join(root, 'checkpoints');
    const store = await openWith(dir);
    const plan = simpleRunPlan(2000);
    for (const step of plan.steps) step.stream = true;
    const built = buildStream([plan], newNamespace());
    // ~9 MB of events: more than one background checkpoint's worth.
    const padded = built.events.map((e) =>
      e.type === 'step.started' ? { ...e, attributes: { note: 'x'.repeat(2000) } } : e,
    );
    for (let i = 0; i < padded.length; i += 500) await store.append(padded.slice(i, i + 500));
    await store.close();
    assert.equal(existsSync(join(dir, 'rewind.db-wal')), false);
    const again = await openWith(dir);
    try {
      assert.equal((await again.getRun(built.runIds[0]!))?.stepCount, 2000);
      assert.equal((await again.readEvents(built.runIds[0]!)).length, padded.length);
    } finally {
      await again.close();
    }
  });

  test('a store that is never closed does not keep the process alive', async () => {
    const script = join(root, 'unclosed.ts');
    await writeFile(
      script,
      `import { SqliteStore } from ${JSON.stringify(new URL('./sqlite-store.ts', import.meta.url).pathname)};
import { openFsBlobStore } from ${JSON.stringify(new URL('../fs-blob-store.ts', import.meta.url).pathname)};
const dir = ${JSON.stringify(join(root, 'unclosed'))};
const store = await SqliteStore.open(dir, { blobs: await openFsBlobStore(dir + '/blobs') });
const events = ${JSON.stringify(buildStream([simpleRunPlan(3000)], newNamespace()).events)}
  .map((e) => (e.type === 'step.started' ? { ...e, attributes: { note: 'x'.repeat(3000) } } : e));
for (let i = 0; i < events.length; i += 500) await store.append(events.slice(i, i + 500));
console.log('appended');
`,
    );
    const child = spawnSync(process.execPath, [script], { timeout: 30_000, encoding: 'utf8' });
    assert.equal(child.error, undefined, 'the process exits by itself');
    assert.equal(child.stdout.trim(), 'appended', child.stderr);
    assert.equal(child.status, 0);
  });

  test('a file that is not a store fails with a clear error', async () => {
    const dir = join(root, 'garbage');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'rewind.db'), 'this is not a database, just text '.repeat(200));
    await assert.rejects(openWith(dir), (error: unknown) => {
      assert.ok(StoreUnavailableError.isInstance(error));
      assert.match(error.message, /cannot open the SQLite store .*rewind\.db/);
      return true;
    });
  });
});
