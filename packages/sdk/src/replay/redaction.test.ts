import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { openStore, type Store } from '@rewind/store';
import { Recorder, type RecorderOptions } from '../recorder.ts';
import { replay } from './replay.ts';

// Replay of redacted recordings (docs/redaction.md, "Replay"): live requests are redacted like the
// recorded ones before they are compared, so a request that held a secret still matches; a step
// whose served response is masked is labelled `redacted`; a sealed response is served opened
// where the project key is, and labelled `redacted` where it is not.

const dir = mkdtempSync(join(tmpdir(), 'rewind-replay-redaction-'));
let store: Store;
before(async () => {
  store = await openStore(join(dir, 'store'));
});
after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const SECRET = 'sk-proj-Ab3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dF3hJ5';
const KEY = randomBytes(32).toString('base64');
const SEAL_POLICY = {
  version: 1,
  rules: [{ path: 'tool:vault.read.response.output.pin', action: 'seal' }],
};

function makeAgent(recorder: Recorder) {
  const vault = recorder.tool('vault.read', async () => ({ pin: '4812', note: `key ${SECRET}` }));
  const model = recorder.model('llm', async (prompt: string) => `ok: ${prompt.length}`);
  return recorder.agent('keeper', async () => {
    const secret = await vault();
    // the prompt carries the secret: recorded masked, and replay must still match it
    const answer = await model(`store ${SECRET} under ${secret.pin}`);
    return { answer, pin: secret.pin };
  });
}

async function record(options: RecorderOptions): Promise<string> {
  const recorder = new Recorder({ store, cwd: dir, onError: () => {}, ...options });
  await makeAgent(recorder)();
  await recorder.flush();
  return (await store.listRuns({ limit: 1 })).items[0]!.id;
}

test('exact replay matches a request whose secret was masked, and labels the step served a masked response `redacted`', async () => {
  const runId = await record({ env: {} });
  const recorder = new Recorder({ store, cwd: dir, env: {}, onError: () => {} });
  const result = await replay(makeAgent(recorder), runId, { store, cwd: dir, env: {} });
  // the model step's live request held the secret; redacted the same way it matches
  assert.equal(result.divergences.length, 0, JSON.stringify(result.divergences));
  assert.equal(result.labels.redacted, 1, JSON.stringify(result.labels)); // vault.read: its note was masked
  assert.equal(result.labels.replayed, 1); // llm: its response holds no secret
});

test('a sealed field replays exactly where the key is, and is labelled `redacted` where it is not', async () => {
  const runId = await record({ env: { REWIND_PROJECT_KEY: KEY }, policy: SEAL_POLICY });
  const withKey = await replay(makeAgent(new Recorder({ store, cwd: dir, onError: () => {} })), runId, {
    store,
    cwd: dir,
    env: { REWIND_PROJECT_KEY: KEY },
  });
  // the vault response also holds a masked note, so it is still `redacted`; the pin came back opened
  assert.equal(withKey.divergences.length, 0, JSON.stringify(withKey.divergences));
  assert.equal((withKey.output as { pin: string } | null)?.pin, '4812', JSON.stringify(withKey));
  const without = await replay(makeAgent(new Recorder({ store, cwd: dir, onError: () => {} })), runId, {
    store,
    cwd: dir,
    env: {},
  });
  // without the key the pin is served sealed (labelled `redacted`); the prompt built from it then
  // differs from the recorded one, so the replay diverges there, as it should
  assert.equal(without.labels.redacted, 1, JSON.stringify(without.labels));
  assert.equal(without.verdict, 'diverged');
  assert.equal(without.divergence?.name, 'llm', JSON.stringify(without.divergence));
});
