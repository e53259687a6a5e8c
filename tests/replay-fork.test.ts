// Issue 6 acceptance: a fork at a tool step with a replacement output runs the downstream model
// calls (cached where the request is unchanged, live where it changed), records forkOf, and
// labels every step right. Also: request edits by JSON pointer, a replacement error, `then: live`.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type ForkOptions, Recorder, ReplayError, replay } from '@rewind/sdk';
import { openStore, type Store } from '@rewind/store';
import {
  FIXTURE_RULES,
  type FixtureEnv,
  fixtureAgent,
  type ScriptedProvider,
  startScriptedProvider,
} from '@rewind/testkit';

const dir = mkdtempSync(join(tmpdir(), 'rewind-replay-fork-'));
let store: Store;
let provider: ScriptedProvider;
let env: FixtureEnv;
let runId: string;
const loop = fixtureAgent('tool-loop');

interface StepView {
  seq: number;
  callKey: string;
  label: string | null;
}

async function steps(id: string): Promise<StepView[]> {
  const page = await store.readTimeline(id);
  return page.items.map((s) => ({ seq: s.seq, callKey: s.callKey, label: s.label }));
}

before(async () => {
  store = await openStore(join(dir, 'store'));
  provider = await startScriptedProvider({ rules: FIXTURE_RULES });
  env = { openaiBaseURL: provider.openaiBaseURL, anthropicBaseURL: provider.anthropicBaseURL };
  const recorder = new Recorder({ store });
  await loop.make(recorder, env)(loop.input as never);
  await recorder.flush();
  runId = (await store.listRuns({ agent: 'tool-loop', limit: 1 })).items[0]!.id;
});

after(async () => {
  await provider.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

function agent() {
  return loop.make(new Recorder({ store, enabled: false }), env);
}

describe('fork', () => {
  it('a replacement tool output: overridden there, changed model calls live, unchanged calls cached, forkOf recorded', async () => {
    const before = provider.requests.length;
    const result = await replay(agent(), runId, {
      store,
      fork: { atSeq: 2, response: { city: 'Paris', sky: 'stormy', units: 'C' } },
    });
    assert.deepEqual(await steps(result.runId), [
      { seq: 1, callKey: 'model:openai.chat.completions#0', label: 'replayed' },
      { seq: 2, callKey: 'tool:get_weather#0', label: 'overridden' },
      { seq: 3, callKey: 'model:openai.chat.completions#1', label: 'live' },
      { seq: 4, callKey: 'tool:get_time#0', label: 'cached' },
      { seq: 5, callKey: 'model:openai.chat.completions#2', label: 'live' },
    ]);
    assert.equal(provider.requests.length - before, 2, 'only the two changed model calls reach the provider');
    assert.deepEqual(result.labels, {
      replayed: 1,
      cached: 1,
      live: 2,
      overridden: 1,
      diverged: 0,
      redacted: 0,
    });
    assert.equal(result.mode, 'fork');
    const run = await store.getRun(result.runId);
    assert.deepEqual(run?.forkOf, {
      runId,
      atSeq: 2,
      edit: { response: { output: { city: 'Paris', sky: 'stormy', units: 'C' } }, then: 'cached' },
    });
    assert.equal(run?.replayOf, undefined);
    // The model saw the replacement output.
    const last = provider.requests.at(-2)!.conversation!;
    assert.match(last.messages.at(-1)!.text, /stormy/);
    // The original run is untouched.
    assert.deepEqual((await store.getRun(runId))?.labels, { recorded: 5 });
  });

  it('a request edit by JSON pointer runs the tool live with the edited arguments', async () => {
    const result = await replay(agent(), runId, {
      store,
      fork: { atSeq: 2, set: [{ pointer: '/arguments/city', value: 'Oslo' }] },
    });
    const timeline = await store.readTimeline(result.runId);
    const tool = timeline.items[1]!;
    assert.equal(tool.label, 'live');
    const response = JSON.parse(new TextDecoder().decode(await store.blobs.get(tool.response!.hash)));
    assert.deepEqual(response, { output: { city: 'Oslo', sky: 'sunny', units: 'C' } });
    assert.deepEqual(result.forkOf?.edit, {
      set: [{ pointer: '/arguments/city', value: 'Oslo' }],
      then: 'cached',
    });
  });

  it('a model request edit reaches the provider; a replacement error is thrown with its message', async () => {
    const before = provider.requests.length;
    const edited = await replay(agent(), runId, {
      store,
      fork: {
        atSeq: 1,
        set: [{ pointer: '/messages/0/content', value: 'Kindly use the tools.' }],
        then: 'live',
      },
    });
    assert.equal(edited.labels.live, 5);
    assert.equal(provider.requests[before]!.conversation!.system, 'Kindly use the tools.');

    const failed = await replay(agent(), runId, { store, fork: { atSeq: 2, error: 'weather service down' } });
    assert.equal(failed.status, 'error');
    assert.deepEqual(failed.error, { type: 'Error', message: 'weather service down' });
    assert.equal(failed.labels.overridden, 1);
  });

  it('bad fork edits are refused before anything runs', async () => {
    const refuses = (fork: ForkOptions, pattern: RegExp) =>
      assert.rejects(
        replay(agent(), runId, { store, fork }),
        (error: unknown) => ReplayError.isInstance(error) && pattern.test((error as Error).message),
      );
    await refuses({ atSeq: 99, response: 1 }, /has no step 99/);
    await refuses({ atSeq: 2 }, /needs an edit/);
    await refuses({ atSeq: 2, set: [{ pointer: 'arguments/city', value: 1 }] }, /not a JSON pointer/);
    await refuses({ atSeq: 2, set: [{ pointer: '/nope/city', value: 1 }] }, /does not fit the request/);
  });
});
