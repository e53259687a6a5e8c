// Records the golden runs of the testkit's fixture agents into fixtures/traces/replay/<name>/
// (see fixtures/traces/replay/load.ts for the layout): each agent runs once against the scripted
// provider over real HTTP, into a temporary store, and its events and blobs are written out.
//
//   npx node scripts/make-replay-fixtures.ts           record the fixtures that have no golden run yet
//   npx node scripts/make-replay-fixtures.ts --force   record them all again (after changing a fixture agent)
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type BlobHash, blobHashHex } from '@rewind/schema';
import { Recorder } from '@rewind/sdk';
import { openStore } from '@rewind/store';
import { FIXTURE_AGENTS, FIXTURE_RULES, startScriptedProvider } from '@rewind/testkit';
import { REPLAY_GOLDEN_DIR } from '../fixtures/traces/replay/load.ts';

const { values } = parseArgs({ options: { force: { type: 'boolean' } } });
const work = mkdtempSync(join(tmpdir(), 'rewind-replay-golden-'));
const store = await openStore(join(work, 'store'));
const provider = await startScriptedProvider({ rules: FIXTURE_RULES });
const env = { openaiBaseURL: provider.openaiBaseURL, anthropicBaseURL: provider.anthropicBaseURL };
try {
  for (const fixture of FIXTURE_AGENTS) {
    const folder = join(REPLAY_GOLDEN_DIR, fixture.name);
    if (existsSync(folder) && values.force !== true) continue;
    provider.reset();
    const recorder = new Recorder({ store, env: {}, attributes: { 'rewind.fixture': fixture.name } });
    await fixture.make(recorder, env)(fixture.input as never);
    await recorder.flush();
    const runId = (await store.listRuns({ agent: fixture.name, limit: 1 })).items[0]!.id;
    const events = await store.readEvents(runId);
    const hashes = new Set<BlobHash>();
    const add = (ref: { hash: BlobHash; parts?: string[] } | undefined | null) => {
      if (ref === undefined || ref === null) return;
      hashes.add(ref.hash);
      for (const part of ref.parts ?? []) hashes.add(part as BlobHash);
    };
    for (const event of events) {
      if (event.type === 'run.started') add(event.input);
      else if (event.type === 'step.started') add(event.request);
      else if (event.type === 'step.finished') add(event.response);
      else {
        if (event.status === 'ok') add(event.output);
        add(event.tape);
      }
    }
    rmSync(folder, { recursive: true, force: true });
    await mkdir(join(folder, 'blobs', 'sha256'), { recursive: true });
    await writeFile(join(folder, 'events.jsonl'), `${events.map((e) => JSON.stringify(e)).join('\n')}\n`);
    for (const hash of [...hashes].sort())
      await writeFile(join(folder, 'blobs', 'sha256', blobHashHex(hash)!), await store.blobs.get(hash));
    console.log(`${fixture.name}: run ${runId}, ${events.length} events, ${hashes.size} blobs`);
  }
} finally {
  await provider.close();
  await store.close();
  rmSync(work, { recursive: true, force: true });
}
