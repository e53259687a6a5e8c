// Golden traces (fixtures/traces/v<N>/<trace>/) must keep loading in every later release.
// Each one is loaded into a fresh SQLite store and a fresh PostgreSQL store (its own schema),
// and `rewind show <runId> --json` must print exactly its expected-show.json. Trace folders are
// discovered, not listed: a new one is tested by being there. See fixtures/traces/README.md.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { main, openStoreOptions, resolveStoreConfig, type ShowJson } from '@rewind/cli';
import { type BlobHash, blobHashOf, isBlobHash } from '@rewind/schema';
import { openStore } from '@rewind/store';
import pg from 'pg';

const POSTGRES_URL = process.env.REWIND_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const ROOT = fileURLToPath(new URL('../fixtures/traces/', import.meta.url));

interface Trace {
  /** `v1/support-run` */
  id: string;
  lines: string[];
  events: Array<Record<string, unknown>>;
  blobs: Map<BlobHash, Uint8Array>;
  expected: ShowJson;
  /** Blobs the events refer to that the trace leaves out on purpose. */
  missing: BlobHash[];
}

/** Every blob hash an event refers to (payload refs and their parts). */
function referencedHashes(event: Record<string, unknown>): BlobHash[] {
  const out: BlobHash[] = [];
  for (const key of ['input', 'output', 'request', 'response', 'tape']) {
    const ref = event[key] as { hash?: unknown; parts?: unknown[] } | undefined;
    if (ref === undefined) continue;
    if (isBlobHash(ref.hash)) out.push(ref.hash);
    for (const part of ref.parts ?? []) if (isBlobHash(part)) out.push(part);
  }
  return out;
}

function discover(): Trace[] {
  const traces: Trace[] = [];
  for (const version of readdirSync(ROOT)
    .filter((name) => /^v\d+$/.test(name))
    .sort()) {
    for (const name of readdirSync(join(ROOT, version)).sort()) {
      const dir = join(ROOT, version, name);
      if (!existsSync(join(dir, 'events.jsonl'))) continue;
      const lines = readFileSync(join(dir, 'events.jsonl'), 'utf8')
        .split('\n')
        .filter((line) => line.trim() !== '');
      const events = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
      const blobs = new Map<BlobHash, Uint8Array>();
      const blobDir = join(dir, 'blobs', 'sha256');
      for (const hex of existsSync(blobDir) ? readdirSync(blobDir) : []) {
        blobs.set(`sha256:${hex}`, readFileSync(join(blobDir, hex)));
      }
      const referenced = new Set(events.flatMap(referencedHashes));
      traces.push({
        id: `${version}/${name}`,
        lines,
        events,
        blobs,
        expected: JSON.parse(readFileSync(join(dir, 'expected-show.json'), 'utf8')) as ShowJson,
        missing: [...referenced].filter((hash) => !blobs.has(hash)),
      });
    }
  }
  return traces;
}

/** Where a trace is loaded: a store location as the CLI takes it (`--store`) and a blob directory (`--blobs`). */
interface Target {
  store: string;
  blobs: string;
}

const scratch: string[] = [];
const schemas: string[] = [];
after(async () => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
  if (schemas.length === 0) return;
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rewind-golden-'));
  scratch.push(dir);
  return dir;
}

function freshSqlite(): Target {
  const dir = tempDir();
  return { store: join(dir, 'store'), blobs: join(dir, 'store', 'blobs') };
}

/** A fresh PostgreSQL store: its own schema, named with the URL's `?schema=` as the CLI takes it. */
function freshPostgres(): Target {
  const schema = `rewind_golden_${randomBytes(5).toString('hex')}`;
  schemas.push(schema);
  const url = new URL(POSTGRES_URL);
  url.searchParams.set('schema', schema);
  return { store: url.toString(), blobs: join(tempDir(), 'blobs') };
}

/** Loads a trace as a store receives it: the blobs, then the events in the file's order, in one batch. */
async function load(target: Target, trace: Trace, events: readonly unknown[] = trace.events): Promise<void> {
  const config = resolveStoreConfig({ store: target.store, blobs: target.blobs, env: {} });
  const store = await openStore(config.store, openStoreOptions(config));
  try {
    for (const [hash, bytes] of trace.blobs) await store.blobs.putVerified(hash, bytes);
    const result = await store.append(events);
    const rejected = result.outcomes.filter((outcome) => outcome.status === 'rejected');
    assert.deepEqual(rejected, [], `${trace.id}: events rejected`);
    assert.equal(result.accepted, new Set(trace.events.map((event) => event.eventId)).size);
    assert.equal(result.accepted + result.duplicates, events.length);
  } finally {
    await store.close();
  }
}

async function show(
  target: Target,
  runId: string,
  json: boolean,
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main({
    argv: ['show', runId, ...(json ? ['--json'] : []), '--store', target.store, '--blobs', target.blobs],
    env: {},
    cwd: tmpdir(),
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
    isTTY: false,
  });
  return { code, stdout, stderr };
}

async function checkShow(target: Target, trace: Trace): Promise<void> {
  const result = await show(target, trace.expected.run.id, true);
  assert.deepEqual(
    JSON.parse(result.stdout),
    trace.expected,
    `${trace.id}: show --json differs from expected-show.json`,
  );
  if (trace.missing.length === 0) {
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
  } else {
    assert.equal(result.code, 3, 'missing blobs exit with 3');
    for (const hash of trace.missing)
      assert.ok(result.stderr.includes(hash), `stderr does not name ${hash}:\n${result.stderr}`);
  }
}

const traces = discover();

it('there are golden traces of v1, including the four required kinds', () => {
  const ids = traces.map((trace) => trace.id);
  for (const id of ['v1/support-run', 'v1/error-run', 'v1/incomplete-run', 'v1/parallel-out-of-order']) {
    assert.ok(ids.includes(id), `${id} is missing from fixtures/traces`);
  }
});

for (const trace of traces) {
  describe(`golden trace ${trace.id}`, () => {
    it('every blob file is named by the sha256 of its bytes', () => {
      for (const [hash, bytes] of trace.blobs) assert.equal(blobHashOf(bytes), hash);
    });

    it('loads into a fresh SQLite store and shows as expected', async () => {
      const target = freshSqlite();
      await load(target, trace);
      await checkShow(target, trace);
      // The human timeline renders every step.
      const human = await show(target, trace.expected.run.id, false);
      assert.equal(human.code, trace.missing.length === 0 ? 0 : 3);
      for (const step of trace.expected.steps) {
        assert.match(
          human.stdout,
          new RegExp(`^ +${step.seq} {2}.*${step.kind} ${step.name.replace(/[.]/g, '\\.')}`, 'm'),
        );
      }
    });

    it('loads the same whatever the arrival order: reversed, every event twice', async () => {
      const target = freshSqlite();
      const reversed = [...trace.events].reverse();
      await load(target, trace, [...reversed, ...trace.events]);
      await checkShow(target, trace);
    });

    it('loads into a fresh PostgreSQL store and shows as expected', async () => {
      const target = freshPostgres();
      await load(target, trace);
      await checkShow(target, trace);
    });
  });
}
