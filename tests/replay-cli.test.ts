// `rewind replay` and `rewind fork` through the real binary: the agent found through
// rewind.config.json, --json shapes, exit codes (0 reproduced, 1 diverged, 2 usage, 3 failed to
// run), and the errors for an unknown agent, a missing module or export, a bad pointer, a file.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Recorder } from '@rewind/sdk';
import { openStore } from '@rewind/store';
import { FIXTURE_RULES, fixtureAgent, type ScriptedProvider, startScriptedProvider } from '@rewind/testkit';
import { REPLAY_GOLDEN_DIR } from '../fixtures/traces/replay/load.ts';
import { runRewind } from './rewind-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'rewind-replay-cli-'));
const storeDir = join(dir, '.rewind');
const agentsModule = fileURLToPath(new URL('./replay-agents/agents.ts', import.meta.url));
let provider: ScriptedProvider;
let runId: string;

function config(agents: Record<string, string>): void {
  writeFileSync(join(dir, 'rewind.config.json'), JSON.stringify({ agents }));
}

const rewind = (args: string[], env: Record<string, string> = {}) => runRewind(args, { cwd: dir, env });

before(async () => {
  provider = await startScriptedProvider({ rules: FIXTURE_RULES });
  const store = await openStore(storeDir);
  const recorder = new Recorder({ store });
  const loop = fixtureAgent('tool-loop');
  await loop.make(recorder, {
    openaiBaseURL: provider.openaiBaseURL,
    anthropicBaseURL: provider.anthropicBaseURL,
  })(loop.input as never);
  await recorder.flush();
  runId = (await store.listRuns({ limit: 1 })).items[0]!.id;
  await store.close();
  config({ 'tool-loop': `./${relative(dir, agentsModule)}#toolLoop` });
});

after(async () => {
  await provider.close();
  rmSync(dir, { recursive: true, force: true });
});

const LABELS = ['replayed', 'cached', 'live', 'overridden', 'diverged', 'redacted'];

describe('rewind replay', () => {
  it('exact: exit 0, --json with the verdict, labels and output', async () => {
    const result = await rewind(['replay', runId, '--mode', 'exact', '--json']);
    assert.equal(result.code, 0, result.stderr);
    const out = JSON.parse(result.stdout);
    assert.deepEqual(Object.keys(out), [
      'runId',
      'replayOf',
      'mode',
      'verdict',
      'divergence',
      'labels',
      'output',
    ]);
    assert.equal(out.replayOf, runId);
    assert.equal(out.mode, 'exact');
    assert.equal(out.verdict, 'reproduced');
    assert.equal(out.divergence, null);
    assert.deepEqual(Object.keys(out.labels), LABELS);
    assert.equal(out.labels.replayed, 5);
    assert.equal(out.output, 'Sunny in Paris, and it is noon.');
    const shown = await rewind(['show', out.runId, '--json']);
    assert.equal(JSON.parse(shown.stdout).run.replayOf.runId, runId);
  });

  it('text output; a code change diverges with exit 1 and names seq, call key and the diff', async () => {
    const text = await rewind(['replay', runId]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /exact replay of run .* reproduced/);
    const diverged = await rewind(['replay', runId, '--mode', 'exact', '--json'], {
      FIXTURE_CHANGE_WORD: 'Kindly',
    });
    assert.equal(diverged.code, 1, diverged.stderr);
    const out = JSON.parse(diverged.stdout);
    assert.equal(out.verdict, 'diverged');
    assert.equal(out.divergence.seq, 1);
    assert.equal(out.divergence.callKey, 'model:openai.chat.completions#0');
    assert.deepEqual(out.divergence.diff[0], {
      path: '/messages/0/content',
      recorded: 'Please use the tools.',
      replayed: 'Kindly use the tools.',
    });
    const asText = await rewind(['replay', runId], { FIXTURE_CHANGE_WORD: 'Kindly' });
    assert.equal(asText.code, 1);
    assert.match(asText.stdout, /diverged at seq 1 \(model:openai.chat.completions#0\)/);
    assert.match(
      asText.stdout,
      /\/messages\/0\/content: recorded "Please use the tools.", replayed "Kindly use the tools."/,
    );
  });

  it('cached mode runs changed calls live against the provider', async () => {
    const result = await rewind(['replay', runId, '--mode', 'cached', '--json'], {
      FIXTURE_CHANGE_WORD: 'Kindly',
      FIXTURE_PROVIDER_URL: provider.url,
    });
    const out = JSON.parse(result.stdout);
    assert.equal(out.mode, 'cached');
    assert.equal(out.labels.live, 3, result.stderr);
    assert.equal(out.labels.cached, 2);
  });

  it('usage errors exit 2; failures to run exit 3, each with a clear message', async () => {
    const cases: Array<[string[], number, RegExp]> = [
      [['replay'], 2, /missing <runId>/],
      [['replay', runId, '--mode', 'fast'], 2, /--mode must be exact or cached/],
      [['replay', 'run.rewind.tgz'], 2, /bundle file is not supported yet/],
      [['replay', 'no-such-run'], 3, /no run no-such-run/],
      [['fork', runId], 2, /missing --at/],
      [['fork', runId, '--at', '2', '--set', 'arguments/city="Oslo"'], 2, /not a JSON pointer/],
      [['fork', runId, '--at', '2', '--set', '/nope/x=1'], 2, /does not fit the request/],
      [['fork', runId, '--at', '2', '--set', '/arguments/city=Oslo'], 2, /--set needs JSON/],
      [['fork', runId, '--at', '9', '--error', 'x'], 2, /has no step 9/],
    ];
    for (const [args, code, pattern] of cases) {
      const result = await rewind(args);
      assert.equal(result.code, code, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, pattern, args.join(' '));
    }
  });

  it('agent code errors: an unknown agent name (2), a missing module or export (3)', async () => {
    try {
      config({ other: './x.ts#y' });
      let result = await rewind(['replay', runId]);
      assert.equal(result.code, 2);
      assert.match(result.stderr, /has no agent "tool-loop".*it maps: other/);
      config({ 'tool-loop': './missing.ts#toolLoop' });
      result = await rewind(['replay', runId]);
      assert.equal(result.code, 3);
      assert.match(result.stderr, /module .*missing.ts does not exist/);
      config({ 'tool-loop': `./${relative(dir, agentsModule)}#nope` });
      result = await rewind(['replay', runId]);
      assert.equal(result.code, 3);
      assert.match(result.stderr, /has no exported function "nope" \(it exports: toolLoop\)/);
    } finally {
      config({ 'tool-loop': `./${relative(dir, agentsModule)}#toolLoop` });
    }
  });
});

describe('a run with missing blobs', () => {
  it('is refused with exit 3, every missing blob listed', async () => {
    // The golden run of tool-loop, loaded without its input blob.
    const folder = join(REPLAY_GOLDEN_DIR, 'tool-loop');
    const events = readFileSync(join(folder, 'events.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    const started = events.find((event) => event.type === 'run.started');
    const storeDir = join(dir, 'partial');
    const store = await openStore(storeDir);
    for (const hex of readdirSync(join(folder, 'blobs', 'sha256')))
      if (`sha256:${hex}` !== started.input.hash)
        await store.blobs.putVerified(`sha256:${hex}`, readFileSync(join(folder, 'blobs', 'sha256', hex)));
    await store.append(events);
    await store.close();
    const result = await rewind(['replay', started.runId, '--store', storeDir]);
    assert.equal(result.code, 3, result.stderr);
    assert.match(result.stderr, /cannot be replayed: 1 blob\(s\) it references are missing/);
    assert.ok(result.stderr.includes(`missing blob ${started.input.hash}`));
  });
});

describe('rewind fork', () => {
  it('--response at a tool step: --json with forkOf and labels; the same final answer, so exit 0', async () => {
    const result = await rewind(
      ['fork', runId, '--at', '2', '--response', '{"city":"Paris","sky":"stormy","units":"C"}', '--json'],
      { FIXTURE_PROVIDER_URL: provider.url },
    );
    assert.equal(result.code, 0, result.stderr);
    const out = JSON.parse(result.stdout);
    assert.deepEqual(Object.keys(out), [
      'runId',
      'replayOf',
      'forkOf',
      'mode',
      'verdict',
      'divergence',
      'labels',
      'output',
    ]);
    assert.deepEqual(out.forkOf, {
      runId,
      atSeq: 2,
      edit: { response: { output: { city: 'Paris', sky: 'stormy', units: 'C' } }, then: 'cached' },
    });
    assert.equal(out.mode, 'fork');
    assert.deepEqual(out.labels, {
      replayed: 1,
      cached: 1,
      live: 2,
      overridden: 1,
      diverged: 0,
      redacted: 0,
    });
  });

  it('--set, --then live and --response @file', async () => {
    const set = await rewind(
      ['fork', runId, '--at', '2', '--set', '/arguments/city="Oslo"', '--then', 'live', '--json'],
      {
        FIXTURE_PROVIDER_URL: provider.url,
      },
    );
    assert.equal(set.code, 0, set.stderr);
    assert.equal(JSON.parse(set.stdout).labels.live, 4);
    writeFileSync(join(dir, 'weather.json'), '{"city":"Paris","sky":"foggy"}');
    const file = await rewind(['fork', runId, '--at', '2', '--response', '@weather.json', '--json'], {
      FIXTURE_PROVIDER_URL: provider.url,
    });
    assert.deepEqual(JSON.parse(file.stdout).forkOf.edit.response, {
      output: { city: 'Paris', sky: 'foggy' },
    });
  });
});
