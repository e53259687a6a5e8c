// The golden runs of the fixture agents (fixtures/traces/replay/) replay exactly in CI: each is
// loaded into a fresh SQLite store and replayed with its fixture agent, no provider running.
// They reproduce — every step `replayed`, the new run's output byte-identical (the same blob)
// — and a code change still diverges against them. Recording them again:
// `npx node scripts/make-replay-fixtures.ts --force` (after changing a fixture agent).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Recorder, replay } from '@rewind/sdk';
import { openStore } from '@rewind/store';
import { FIXTURE_AGENTS, fixtureAgent } from '@rewind/testkit';
import { goldenRunNames, loadGoldenRun } from '../fixtures/traces/replay/load.ts';

const dir = mkdtempSync(join(tmpdir(), 'rewind-replay-golden-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// Nothing listens here: any call the replay does not serve fails.
const DEAD = { openaiBaseURL: 'http://127.0.0.1:9/v1', anthropicBaseURL: 'http://127.0.0.1:9' };

describe('golden runs of the fixture agents', () => {
  it('there is one for every fixture agent', () => {
    assert.deepEqual(goldenRunNames(), FIXTURE_AGENTS.map((agent) => agent.name).sort());
  });

  for (const name of goldenRunNames()) {
    it(`${name} replays exactly: reproduced, every step replayed, the same output blob`, async () => {
      const store = await openStore(join(dir, name));
      try {
        const golden = await loadGoldenRun(store, name);
        const fixture = fixtureAgent(name);
        const agent = fixture.make(new Recorder({ store, enabled: false }), DEAD);
        const result = await replay(agent, golden.runId, { store });
        assert.equal(result.verdict, 'reproduced', JSON.stringify(result.divergences, null, 1));
        assert.equal(result.labels.replayed, fixture.steps);
        const [original, replayed] = await Promise.all([
          store.getRun(golden.runId),
          store.getRun(result.runId),
        ]);
        assert.ok(original?.output !== null);
        assert.equal(replayed?.output?.hash, original?.output?.hash);

        const changed = fixture.make(new Recorder({ store, enabled: false }), DEAD, { word: 'Kindly' });
        const diverged = await replay(changed, golden.runId, { store });
        assert.equal(diverged.divergence?.seq, fixture.changes.word?.seq);
      } finally {
        await store.close();
      }
    });
  }
});
