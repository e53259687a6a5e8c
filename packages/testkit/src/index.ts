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
