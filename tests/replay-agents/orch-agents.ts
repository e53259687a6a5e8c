// Agent entrypoints for the replay orchestrator tests (tests/replay-orchestrator.test.ts), named
// in the test's rewind.config.json. The testkit's fixture agents replay their golden runs; with
// $ORCH_DIVERGE_TOOL_LOOP set, tool-loop's prompt says "Kindly" instead of "Please", so its exact
// replay diverges at seq 1. `slowAgent` (agent "orch-slow") makes one tool call, then, when
// $ORCH_HANG is set (in the workers, not while recording), waits for ever before its second.
import { Recorder } from '@rewind/sdk';
import { fixtureAgent } from '@rewind/testkit';

const dead = { openaiBaseURL: 'http://127.0.0.1:9/v1', anthropicBaseURL: 'http://127.0.0.1:9' };
const recorder = new Recorder({ enabled: false });

export const singleModelCall = fixtureAgent('single-model-call').make(recorder, dead);
export const parallelTools = fixtureAgent('parallel-tools').make(recorder, dead);
export const clockAndRandom = fixtureAgent('clock-and-random').make(recorder, dead);
export const toolLoop = fixtureAgent('tool-loop').make(
  recorder,
  dead,
  process.env.ORCH_DIVERGE_TOOL_LOOP === undefined ? undefined : { word: 'Kindly' },
);

export function makeSlowAgent(own: Recorder) {
  const first = own.tool('first', async (x: string) => `first(${x})`);
  const second = own.tool('second', async (x: string) => `second(${x})`);
  return own.agent('orch-slow', async (input: string) => {
    const a = await first(input);
    if (process.env.ORCH_HANG !== undefined) {
      process.stderr.write('orch-slow: waiting before the second call\n');
      await new Promise(() => setInterval(() => {}, 60_000));
    }
    return second(a);
  });
}

export const slowAgent = makeSlowAgent(recorder);
