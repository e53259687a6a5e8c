// End to end through the real `rewind` binary: spawns `process.execPath` (Node 24) with
// packages/cli/src/bin.ts in a temporary working directory, exactly as `npx rewind` runs it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { main, TraceBuilder } from '@rewind/cli';
import { blobHashHex } from '@rewind/schema';
import { openStore } from '@rewind/store';
import pg from 'pg';
import { runRewind as rewind } from './rewind-cli.ts';

const POSTGRES_URL = process.env.REWIND_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const scratch: string[] = [];
after(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rewind-cli-'));
  scratch.push(dir);
  return dir;
}

function oneLine(stderr: string): void {
  assert.equal(stderr.trimEnd().split('\n').length, 1, `expected a one-line message, got:\n${stderr}`);
}

const RUN_KEYS = ['id', 'agent', 'status', 'startedAt', 'endedAt', 'stepCount'];
const SHOW_RUN_KEYS = ['id', 'agent', 'status', 'input', 'output'];
const SHOW_STEP_KEYS = [
  'seq',
  'stepId',
  'parentStepId',
  'kind',
  'name',
  'callKey',
  'status',
  'label',
  'request',
  'response',
  'startedAt',
  'endedAt',
];
const sorted = (keys: string[]): string[] => [...keys].sort();

describe('rewind help and version', () => {
  it('--help lists the commands, the store rules and the exit codes', async () => {
    const result = await rewind(['--help'], { cwd: tempDir() });
    assert.equal(result.code, 0);
    for (const text of [
      'Usage: rewind <command>',
      'demo',
      'runs',
      'show <runId>',
      'REWIND_STORE',
      'rewind.config.json',
      'Exit codes',
    ]) {
      assert.ok(result.stdout.includes(text), `--help lacks ${text}`);
    }
  });

  it('<command> --help describes the command', async () => {
    const cwd = tempDir();
    const runs = await rewind(['runs', '--help'], { cwd });
    assert.equal(runs.code, 0);
    assert.match(runs.stdout, /--status <status>/);
    const show = await rewind(['show', '--help'], { cwd });
    assert.equal(show.code, 0);
    assert.match(show.stdout, /shown as null|printed as null/);
    assert.equal((await rewind(['help', 'demo'], { cwd })).code, 0);
  });

  it('--version prints the package version', async () => {
    const result = await rewind(['--version'], { cwd: tempDir() });
    assert.equal(result.code, 0);
    assert.equal(result.stdout, '0.1.0\n');
  });
});

describe('rewind demo, runs and show (SQLite in ./.rewind)', () => {
  const cwd = tempDir();
  let runId = '';

  before(async () => {
    const demo = await rewind(['demo'], { cwd });
    assert.equal(demo.code, 0, demo.stderr);
    const listed = JSON.parse((await rewind(['runs', '--json'], { cwd })).stdout) as Array<{ id: string }>;
    runId = listed[0]!.id;
  });

  it('demo records into ./.rewind, shows the run as a tree and says what to try next', async () => {
    assert.ok(existsSync(join(cwd, '.rewind')));
    const again = await rewind(['demo'], { cwd });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stderr, '');
    assert.match(again.stdout, /^support-bot {2}ok {2}run /);
    assert.match(again.stdout, /├─ retriever kb\.search/);
    assert.match(again.stdout, /│ {2}└─ tool issue_refund/);
    assert.match(again.stdout, /npx rewind runs/);
    assert.match(again.stdout, /npx rewind show \S+ --json/);
    assert.doesNotMatch(again.stdout, /\u001b\[/, 'no colour when stdout is not a terminal');
  });

  it('runs --json prints the public shape, newest first', async () => {
    const result = await rewind(['runs', '--json'], { cwd });
    assert.equal(result.code, 0, result.stderr);
    const runs = JSON.parse(result.stdout) as Array<Record<string, unknown>>;
    assert.ok(runs.length >= 2);
    for (const run of runs) {
      assert.deepEqual(sorted(Object.keys(run)), sorted(RUN_KEYS));
      assert.equal(run.agent, 'support-bot');
      assert.equal(run.status, 'ok');
      assert.equal(run.stepCount, 9);
      assert.equal(typeof run.startedAt, 'string');
      assert.equal(typeof run.endedAt, 'string');
    }
    const starts = runs.map((run) => Date.parse(run.startedAt as string));
    assert.deepEqual(
      starts,
      [...starts].sort((a, b) => b - a),
    );
  });

  it('runs prints a table, and honours filters', async () => {
    const table = await rewind(['runs'], { cwd });
    assert.equal(table.code, 0);
    assert.match(table.stdout, /^id\s+agent\s+status\s+started\s+duration\s+steps/);
    assert.match(
      table.stdout,
      new RegExp(
        `${runId}\\s+support-bot\\s+ok\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ\\s+6\\.94s\\s+9 \\(1 err\\)`,
      ),
    );
    const none = await rewind(['runs', '--status', 'error', '--json'], { cwd });
    assert.deepEqual(JSON.parse(none.stdout), []);
    const other = await rewind(['runs', '--agent', 'nobody'], { cwd });
    assert.match(other.stdout, /no runs in \.rewind match these filters/);
    const future = await rewind(['runs', '--since', '2999-01-01', '--json'], { cwd });
    assert.deepEqual(JSON.parse(future.stdout), []);
  });

  it('runs pages with --limit and --cursor', async () => {
    const first = await rewind(['runs', '--limit', '1', '--json'], { cwd });
    assert.equal(first.code, 0);
    assert.equal(JSON.parse(first.stdout).length, 1);
    const cursor = /--cursor (\S+)/.exec(first.stderr)?.[1];
    assert.ok(cursor !== undefined, `expected a next-page hint on stderr, got: ${first.stderr}`);
    const second = await rewind(
      ['runs', '--limit', '1', '--cursor', cursor.replace(/^'|'$/g, ''), '--json'],
      { cwd },
    );
    assert.equal(second.code, 0, second.stderr);
    const [a] = JSON.parse(first.stdout) as Array<{ id: string }>;
    const [b] = JSON.parse(second.stdout) as Array<{ id: string }>;
    assert.notEqual(a!.id, b!.id);
  });

  it('show --json prints the run and every step with payloads resolved, in seq order', async () => {
    const result = await rewind(['show', runId, '--json'], { cwd });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    const show = JSON.parse(result.stdout) as {
      run: Record<string, unknown>;
      steps: Array<Record<string, unknown>>;
    };
    assert.deepEqual(sorted(Object.keys(show.run)), sorted(SHOW_RUN_KEYS));
    assert.equal(show.run.id, runId);
    assert.equal((show.run.input as { customerId: string }).customerId, 'cus_8812');
    assert.match((show.run.output as { reply: string }).reply, /refunded the duplicate charge/);
    assert.deepEqual(
      show.steps.map((step) => step.seq),
      [1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    for (const step of show.steps) {
      const expected = step.status === 'error' ? [...SHOW_STEP_KEYS, 'error'] : SHOW_STEP_KEYS;
      assert.deepEqual(sorted(Object.keys(step)), sorted(expected));
    }
    assert.deepEqual(show.steps[0]!.request, {
      query: 'order not arrived, charged twice',
      topK: 3,
      filters: { locale: 'en' },
    });
    // Parts ({"$blob"}) are inlined: the first message of the model request is the system prompt.
    const modelRequest = show.steps[1]!.request as { messages: Array<{ role: string; content: string }> };
    assert.equal(modelRequest.messages[0]!.role, 'system');
    assert.match(modelRequest.messages[0]!.content, /You are Ada/);
    assert.equal(show.steps[6]!.status, 'error');
    assert.deepEqual(show.steps[6]!.error, {
      type: 'PaymentGatewayError',
      message:
        'gateway timed out after 1000 ms (POST /v1/refunds); safe to retry with the same idempotency key',
      status: 504,
    });
    assert.equal(show.steps[5]!.parentStepId, show.steps[4]!.stepId);
    assert.equal(show.steps[7]!.callKey, 'chain:refund-agent#0/tool:issue_refund#1');
  });

  it('show prints a header and the timeline tree', async () => {
    const result = await rewind(['show', runId], { cwd });
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.split('\n');
    assert.match(lines[0]!, new RegExp(`^support-bot {2}ok {2}run ${runId}$`));
    assert.match(lines[1]!, /^started .* · duration 6\.94s · 9 steps · 1 error · labels: recorded 9$/);
    const steps = lines.filter((line) => /^\s+\d+ {2}[├└│]/.test(line));
    assert.equal(steps.length, 9);
    assert.match(
      steps[0]!,
      /^ {2}1 {2}├─ retriever kb\.search\s+ok\s+recorded\s+176ms {2}"order not arrived, charged twice" → 3 docs$/,
    );
    assert.match(steps[4]!, /^ {2}5 {2}├─ chain refund-agent\s+ok/);
    assert.match(steps[5]!, /^ {2}6 {2}│ {2}├─ model openai\.chat .*→ issue_refund\(/);
    assert.match(
      steps[6]!,
      /^ {2}7 {2}│ {2}├─ tool issue_refund\s+error\s+recorded\s+1\.00s {2}issue_refund\(.*\) ✗ PaymentGatewayError 504: /,
    );
    assert.match(steps[8]!, /^ {2}9 {2}└─ model openai\.chat .*streamed 24 chunks: → "I'm sorry/);
    for (const line of steps) assert.ok(!line.includes('\n'));
  });

  it('show colours only on a terminal without NO_COLOR', async () => {
    const output = async (isTTY: boolean, env: Record<string, string>) => {
      let stdout = '';
      const code = await main({
        argv: ['show', runId],
        env,
        cwd,
        stdout: (text) => (stdout += text),
        stderr: () => {},
        isTTY,
        columns: 120,
      });
      assert.equal(code, 0);
      return stdout;
    };
    assert.match(await output(true, {}), /\u001b\[32mok\u001b\[39m/);
    assert.doesNotMatch(await output(true, { NO_COLOR: '1' }), /\u001b\[/);
    assert.doesNotMatch(await output(false, {}), /\u001b\[/);
    for (const line of (await output(true, { NO_COLOR: '1' })).split('\n')) {
      assert.ok(Array.from(line).length <= 120, `line longer than the terminal: ${line}`);
    }
  });

  it('a missing or corrupt blob: the rest is printed, the payload is null, stderr lists it, exit 3', async () => {
    const copy = tempDir();
    const demo = await rewind(['demo', '--json'], { cwd: copy });
    assert.equal(demo.code, 0, demo.stderr);
    const id = (JSON.parse(demo.stdout) as { run: { id: string } }).run.id;
    // Delete the blob of step 3's response from the blob store (wherever its layout puts it).
    const store = await openStore(join(copy, '.rewind'));
    const step = await store.getStep(id, 3);
    await store.close();
    const hex = blobHashHex(step!.response!.hash)!;
    const files = (dir: string): string[] =>
      readdirSync(dir).flatMap((name) => {
        const path = join(dir, name);
        return statSync(path).isDirectory() ? files(path) : [path];
      });
    const file = files(join(copy, '.rewind')).find((path) => path.replace(/\//g, '').endsWith(hex));
    assert.ok(file !== undefined, 'blob file not found');
    unlinkSync(file);

    const result = await rewind(['show', id, '--json'], { cwd: copy });
    assert.equal(result.code, 3);
    const show = JSON.parse(result.stdout) as { steps: Array<{ request: unknown; response: unknown }> };
    assert.equal(show.steps.length, 9);
    assert.equal(show.steps[2]!.response, null);
    assert.notEqual(show.steps[2]!.request, null);
    assert.notEqual(show.steps[3]!.response, null);
    assert.match(result.stderr, /1 payload of run '.*' could not be read and is shown as null/);
    assert.match(result.stderr, new RegExp(`step 3 response: ${step!.response!.hash} \\(blob missing\\)`));

    const human = await rewind(['show', id], { cwd: copy });
    assert.equal(human.code, 3);
    assert.match(human.stdout, /lookup_order\(\{"orderId":"A-1042"\}\) → \(payload missing\)/);
  });
});

describe('exit codes and messages', () => {
  const cwd = tempDir();
  before(async () => {
    assert.equal((await rewind(['demo'], { cwd })).code, 0);
  });

  const usage: Array<[string[], RegExp]> = [
    [['runs', '--bogus'], /unknown option '--bogus' — see `rewind runs --help`/],
    [['show'], /missing <runId>.*rewind runs/],
    [['show', 'a', 'b'], /takes one run id/],
    [['runs', '--limit', '0'], /--limit must be a whole number from 1 to 1000, got '0'/],
    [['runs', '--limit', 'ten'], /--limit must be a whole number/],
    [['runs', '--limit'], /option '--limit' needs a value/],
    [['runs', '--status', 'done'], /--status must be one of ok, error, cancelled, incomplete/],
    [['runs', '--since', 'yesterday'], /--since must be an ISO time/],
    [['frobnicate'], /unknown command 'frobnicate' — see `rewind --help`/],
    [['--store', 'x', 'runs'], /put options after the command/],
    [['runs', 'extra'], /unexpected argument 'extra'/],
    [['runs', '--cursor', 'not-a-cursor'], /--cursor|cursor/],
  ];
  for (const [args, message] of usage) {
    it(`exit 2: rewind ${args.join(' ')}`, async () => {
      const result = await rewind(args, { cwd });
      assert.equal(result.code, 2, `${result.stdout}\n${result.stderr}`);
      assert.match(result.stderr, /^rewind: /);
      assert.match(result.stderr, message);
      oneLine(result.stderr);
      assert.equal(result.stdout, '');
    });
  }

  it('exit 2: no command prints the help on stderr', async () => {
    const result = await rewind([], { cwd });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /Usage: rewind <command>/);
  });

  it('exit 2: a malformed rewind.config.json, naming the file and the problem', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'rewind.config.json'), '{"store": ".rewind",}');
    const result = await rewind(['runs'], { cwd: dir });
    assert.equal(result.code, 2);
    assert.match(
      result.stderr,
      new RegExp(`${join(dir, 'rewind.config.json').replace(/[.]/g, '\\.')}: is not valid JSON`),
    );
    oneLine(result.stderr);
    writeFileSync(join(dir, 'rewind.config.json'), '{"store": ["a"]}');
    const wrongType = await rewind(['show', 'x'], { cwd: dir });
    assert.equal(wrongType.code, 2);
    assert.match(wrongType.stderr, /"store" must be a non-empty string/);
  });

  it('exit 3: an unknown run id', async () => {
    const result = await rewind(['show', 'no-such-run'], { cwd });
    assert.equal(result.code, 3);
    assert.equal(
      result.stderr,
      "rewind: run 'no-such-run' not found in .rewind — list runs with `rewind runs`\n",
    );
    const json = await rewind(['show', 'no-such-run', '--json'], { cwd });
    assert.equal(json.code, 3);
    assert.equal(json.stdout, '');
  });

  it('exit 3: no store in a fresh directory, and none is created by reading', async () => {
    const dir = tempDir();
    const result = await rewind(['runs'], { cwd: dir });
    assert.equal(result.code, 3);
    assert.match(result.stderr, /no Rewind store at \.rewind .*npx rewind demo/);
    oneLine(result.stderr);
    assert.ok(!existsSync(join(dir, '.rewind')));
  });

  it('exit 3: an unreachable PostgreSQL store', async () => {
    const result = await rewind(['runs', '--store', 'postgres://postgres:hunter2@127.0.0.1:1/test'], { cwd });
    assert.equal(result.code, 3);
    assert.match(
      result.stderr,
      /PostgreSQL at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/test.* \(from --store\)\n$/,
    );
    assert.doesNotMatch(result.stderr, /hunter2/);
    oneLine(result.stderr);
  });
});

describe('store resolution: --store > $REWIND_STORE > rewind.config.json > .rewind', () => {
  const cwd = tempDir();
  const ids: Record<string, string> = {};
  const record = async (name: string, args: string[]): Promise<void> => {
    const result = await rewind(['demo', '--json', ...args], { cwd });
    assert.equal(result.code, 0, result.stderr);
    ids[name] = (JSON.parse(result.stdout) as { run: { id: string } }).run.id;
  };
  const listed = async (env: Record<string, string>, args: string[] = []): Promise<string[]> => {
    const result = await rewind(['runs', '--json', ...args], { cwd, env });
    assert.equal(result.code, 0, result.stderr);
    return (JSON.parse(result.stdout) as Array<{ id: string }>).map((run) => run.id);
  };

  before(async () => {
    await record('flag', ['--store', 'flag-store']);
    await record('env', ['--store', join(cwd, 'env-store')]);
    await record('config', ['--store', 'config-store']);
    await record('default', []);
    writeFileSync(join(cwd, 'rewind.config.json'), JSON.stringify({ store: 'config-store' }));
  });

  it('each store holds its own run', () => {
    assert.equal(new Set(Object.values(ids)).size, 4);
  });

  it('the flag wins over everything', async () => {
    assert.deepEqual(await listed({ REWIND_STORE: 'env-store' }, ['--store', 'flag-store']), [ids.flag]);
  });

  it('then $REWIND_STORE, over the config file', async () => {
    assert.deepEqual(await listed({ REWIND_STORE: 'env-store' }), [ids.env]);
  });

  it('then rewind.config.json, over .rewind', async () => {
    assert.deepEqual(await listed({}), [ids.config]);
  });

  it('then .rewind', async () => {
    rmSync(join(cwd, 'rewind.config.json'));
    assert.deepEqual(await listed({}), [ids.default]);
  });

  it('messages name the store that was used', async () => {
    const result = await rewind(['show', 'nope'], { cwd, env: { REWIND_STORE: 'env-store' } });
    assert.match(result.stderr, /not found in env-store/);
  });
});

describe('--store postgres://…', () => {
  const schema = `rewind_cli_${randomBytes(4).toString('hex')}`;
  const url = new URL(POSTGRES_URL);
  url.searchParams.set('schema', schema);
  const store = url.toString();
  const cwd = tempDir();
  after(async () => {
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).finally(() => client.end());
  });

  it('demo, runs and show work against PostgreSQL', async () => {
    const demo = await rewind(['demo', '--json', '--store', store], { cwd });
    assert.equal(demo.code, 0, demo.stderr);
    const id = (JSON.parse(demo.stdout) as { run: { id: string } }).run.id;
    const runs = await rewind(['runs', '--json', '--store', store], { cwd });
    assert.equal(runs.code, 0, runs.stderr);
    assert.deepEqual(
      (JSON.parse(runs.stdout) as Array<{ id: string }>).map((run) => run.id),
      [id],
    );
    const show = await rewind(['show', id, '--json'], { cwd, env: { REWIND_STORE: store } });
    assert.equal(show.code, 0, show.stderr);
    assert.deepEqual(JSON.parse(show.stdout), JSON.parse(demo.stdout));
    const human = await rewind(['show', id, '--store', store], { cwd });
    // The blobs went to the default for PostgreSQL, ./.rewind/blobs.
    assert.ok(existsSync(join(cwd, '.rewind', 'blobs')));
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /└─ model openai\.chat/);
  });
});

describe('show reads the whole timeline', () => {
  it("past the store's first page (2,500 steps), in seq order", async () => {
    const cwd = tempDir();
    const builder = new TraceBuilder({
      runId: 'long-run',
      start: Date.parse('2026-11-25T10:00:00.000Z'),
      seed: 9,
    });
    builder.startRun({ agent: 'looper', input: { n: 2500 } });
    const parent = builder.startStep({ kind: 'chain', name: 'loop', at: 1, request: { input: null } });
    for (let i = 0; i < 2499; i++) {
      const step = builder.startStep({
        kind: 'tool',
        name: 'tick',
        parent,
        at: 2 + i,
        request: { name: 'tick', arguments: { i: i % 10 } },
      });
      builder.finishStep(step, { at: 3 + i, response: { output: i % 10 } });
    }
    builder.finishStep(parent, { at: 3000, response: { output: 'done' } });
    builder.finishRun({ at: 3001, output: 'done' });
    const store = await openStore(join(cwd, '.rewind'));
    try {
      for (const [hash, bytes] of builder.blobs) await store.blobs.putVerified(hash, bytes);
      const result = await store.append(builder.events);
      assert.equal(result.rejected, 0);
    } finally {
      await store.close();
    }
    const json = await rewind(['show', 'long-run', '--json'], { cwd });
    assert.equal(json.code, 0, json.stderr);
    const show = JSON.parse(json.stdout) as { steps: Array<{ seq: number; callKey: string }> };
    assert.deepEqual(
      show.steps.map((step) => step.seq),
      Array.from({ length: 2500 }, (_, i) => i + 1),
    );
    assert.equal(show.steps.at(-1)!.callKey, 'chain:loop#0/tool:tick#2498');
    const human = await rewind(['show', 'long-run'], { cwd });
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^2500 {5}└─ tool tick/m);
  });
});
