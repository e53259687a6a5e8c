export {
  type ChangeName,
  type ExpectedDivergence,
  FIXTURE_AGENTS,
  type FixtureAgent,
  type FixtureChange,
  type FixtureEnv,
  fixtureAgent,
} from './fixtures/agents.ts';
export { FIXTURE_RULES } from './fixtures/rules.ts';
export { describeConversation, explainNoMatch, mismatch, scriptedReplies } from './match.ts';
export { countInputTokens, countWords, type NormalizeOptions, normalizeRequest } from './normalize.ts';
export {
  DEFAULT_CREATED,
  type ScriptedProvider,
  type ScriptedProviderOptions,
  startScriptedProvider,
} from './provider.ts';
export * from './types.ts';
export { splitFixed, splitText } from './wire/answer.ts';
