// Issue 6 acceptance: every fixture agent is recorded against the scripted provider over real
// HTTP through its real client library; then the provider is stopped and each run is replayed
// exactly — it must reproduce with every step `replayed` and a byte-identical output — and
// replayed again with each deliberate code change, which must diverge at the right seq for the
// right reason.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Recorder, replay } from '@rewind/sdk';
import { openStore, type Store } from '@rewind/store';
import {
  type ChangeName,
  FIXTURE_AGENTS,
  FIXTURE_RULES,
  type FixtureEnv,
  fixtureAgent,
  startScriptedProvider,
} from '@rewind/testkit';

const dir = mkdtempSync(join(tmpdir(), 'rewind-replay-fixtures-'));
let store: Store;
const recorded = new Map<string, { runId: string; output: string }>();
let deadEnv: FixtureEnv;

before(async () => {
  store = await openStore(join(dir, 'store'));
  const provider = await startScriptedProvider({ rules: FIXTURE_RULES });
  const env = { openaiBaseURL: provider.openaiBaseURL, anthropicBaseURL: provider.anthropicBaseURL };
  for (const fixture of FIXTURE_AGENTS) {
    provider.reset();
    const recorder = new Recorder({ store, onError: (error) => assert.fail(error) });
    const output = await fixture.make(recorder, env)(fixture.input as never);
    await recorder.flush();
    const runId = (await store.listRuns({ agent: fixture.name, limit: 1 })).items[0]!.id;
    recorded.set(fixture.name, { runId, output: JSON.stringify(output) });
  }
  await provider.close();
  // Nothing listens there any more: a call that is not served fails.
  deadEnv = env;
});

after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('fixture agents', () => {
  it('there are at least 12, and every recording has the steps it should', async () => {
    assert.ok(FIXTURE_AGENTS.length >= 12);
    for (const fixture of FIXTURE_AGENTS) {
      const run = await store.getRun(recorded.get(fixture.name)!.runId);
      assert.equal(run?.status, 'ok', fixture.name);
      assert.equal(run?.stepCount, fixture.steps, fixture.name);
    }
  });

  for (const fixture of FIXTURE_AGENTS) {
    it(`${fixture.name}: exact replay with the provider stopped reproduces, every step replayed, byte-identical output`, async () => {
      const { runId, output } = recorded.get(fixture.name)!;
      const agent = fixture.make(new Recorder({ store, enabled: false }), deadEnv);
      const result = await replay(agent, runId, { store });
      assert.equal(result.verdict, 'reproduced', JSON.stringify(result.divergences, null, 1));
      assert.equal(result.labels.replayed, fixture.steps);
      assert.equal(result.labels.live + result.labels.diverged + result.labels.cached, 0);
      assert.equal(JSON.stringify(result.output), output);
      const [run, original] = await Promise.all([store.getRun(result.runId), store.getRun(runId)]);
      assert.deepEqual(run?.replayOf, { runId, mode: 'exact' });
      assert.deepEqual(run?.labels, { replayed: fixture.steps });
      // Byte-identical: the new run's output is the very same blob.
      assert.equal(run?.output?.hash, original?.output?.hash);
    });

    for (const [change, expected] of Object.entries(fixture.changes)) {
      it(`${fixture.name}: a changed ${change} diverges at seq ${expected.seq} (${expected.reason})`, async () => {
        const { runId } = recorded.get(fixture.name)!;
        const variant = change === 'word' ? { word: 'Kindly' } : { [change as ChangeName]: true };
        const agent = fixture.make(new Recorder({ store, enabled: false }), deadEnv, variant);
        const result = await replay(agent, runId, { store, stallMs: 300 });
        assert.equal(result.verdict, 'diverged');
        const { reason, seq, callKey } = result.divergence!;
        assert.deepEqual({ reason, seq, callKey }, expected, JSON.stringify(result.divergences, null, 1));
        if (reason === 'request') assert.ok(result.divergence!.diff.length > 0);
      });
    }
  }

  it('100 consecutive exact replays of the race fixture give the same output', async () => {
    const fixture = fixtureAgent('parallel-tools');
    const { runId, output } = recorded.get(fixture.name)!;
    const outputs = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const result = await replay(fixture.make(new Recorder({ store, enabled: false }), deadEnv), runId, {
        store,
      });
      assert.equal(result.verdict, 'reproduced');
      outputs.add(JSON.stringify(result.output));
    }
    assert.deepEqual([...outputs], [output]);
  });
});
