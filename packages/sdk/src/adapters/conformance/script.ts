// The scripted provider's rules for the conformance suite: the same script answers every
// adapter (OpenAI chat, Responses, Anthropic messages), so every case means the same thing
// whatever the client library.
import type { Conversation, Reply, Rule } from '@rewind/testkit';

export const PLAIN_PROMPT = 'hello';
export const PLAIN_REPLY = 'Hello there friend';
export const WEATHER_PROMPT = 'What is the weather in Paris?';
export const WEATHER_CALL_TEXT = 'Checking.';
export const WEATHER_ANSWER = 'Sunny in Paris.';
export const TOOL_OUTPUT = 'Sunny, 21 degrees in Paris';
export const SLOW_CALL_PROMPT = 'slow call';
export const SLOW_STREAM_PROMPT = 'slow stream';
export const SLOW_STREAM_REPLY = 'one two three four five six seven eight nine ten eleven twelve';
export const ECHO_PROMPTS = ['echo alpha', 'echo beta', 'echo gamma'] as const;
export const ERROR_STATUSES = [400, 429, 500] as const;
export const ERROR_MESSAGE = 'scripted failure';

export function errorPrompt(status: number): string {
  return `fail with ${status}`;
}

/** Echo replies finish in reverse order (alpha is slowest), so completion order ≠ start order. */
const ECHO_LATENCY: Record<string, number> = { alpha: 60, beta: 30, gamma: 0 };

export const rules: Rule[] = [
  {
    name: 'weather-call',
    when: { lastUserText: /weather/, hasToolResult: false },
    reply: { text: WEATHER_CALL_TEXT, toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] },
  },
  { name: 'weather-answer', when: { hasToolResult: 'get_weather' }, reply: { text: WEATHER_ANSWER } },
  {
    name: 'error',
    when: { lastUserText: /^fail with \d+$/ },
    reply: (c: Conversation): Reply => ({
      error: {
        status: Number(c.lastUserText?.split(' ').at(-1)),
        message: ERROR_MESSAGE,
        shouldRetry: false,
      },
    }),
  },
  {
    name: 'slow-call',
    when: { lastUserText: SLOW_CALL_PROMPT },
    reply: { text: PLAIN_REPLY, latencyMs: 2_000 },
  },
  {
    name: 'slow-stream',
    when: { lastUserText: SLOW_STREAM_PROMPT },
    reply: { text: SLOW_STREAM_REPLY, chunkDelayMs: 25 },
  },
  {
    name: 'echo',
    when: { lastUserText: /^echo / },
    reply: (c: Conversation): Reply => {
      const word = c.lastUserText?.slice('echo '.length) ?? '';
      return { text: `echo:${word}`, latencyMs: ECHO_LATENCY[word] ?? 0 };
    },
  },
  { name: 'plain', reply: { text: PLAIN_REPLY, chunkDelayMs: 5 } },
];
