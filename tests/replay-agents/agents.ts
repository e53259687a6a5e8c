// Agent entrypoints for the CLI replay tests, named in a rewind.config.json the way a project
// would: the testkit's fixture agents, pointed at the scripted provider whose URL the test
// passes in $FIXTURE_PROVIDER_URL (nothing listens at the default: replayed calls need none).
import { Recorder } from '@rewind/sdk';
import { fixtureAgent } from '@rewind/testkit';

const url = process.env.FIXTURE_PROVIDER_URL ?? 'http://127.0.0.1:9';
const env = { openaiBaseURL: `${url}/v1`, anthropicBaseURL: url };
// Replay records with its own recorder; this one only matters outside a replay.
const recorder = new Recorder({ enabled: false });
const change =
  process.env.FIXTURE_CHANGE_WORD === undefined ? undefined : { word: process.env.FIXTURE_CHANGE_WORD };

export const toolLoop = fixtureAgent('tool-loop').make(recorder, env, change);
export const notAFunction = 42;
