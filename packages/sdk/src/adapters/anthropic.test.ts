// Unit tests of the anthropic adapter: normalizers against real objects `@anthropic-ai/sdk`
// returned from the scripted provider, `fromRecorded` round trips, and the wrapped client's
// MessageStream behaving as the client's own.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { MessageStream } from '@anthropic-ai/sdk/lib/MessageStream';
import { validateRequestPayload, validateResponsePayload } from '@rewind/schema';
import { type ScriptedProvider, startScriptedProvider } from '@rewind/testkit';
import { anthropicFromRecorded, wrapAnthropic } from './anthropic.ts';
import {
  accumulateMessage,
  anthropicErrorBody,
  messageEventsFromRecorded,
  messageFromRecorded,
  normalizeMessage,
  normalizeMessagesRequest,
  normalizeMessagesStream,
} from './anthropic-normalize.ts';
import { ConformanceRecorder } from './conformance/harness.ts';
import { type Json, toJsonSafe } from './shared/json.ts';

let provider: ScriptedProvider;
let client: Anthropic;
let conformance: ConformanceRecorder;

const tools: Anthropic.Tool[] = [
  { name: 'get_weather', description: 'Weather', input_schema: { type: 'object', properties: {} } },
];

before(async () => {
  provider = await startScriptedProvider({
    rules: [
      {
        when: { lastUserText: /weather/, hasToolResult: false },
        reply: { text: 'Checking.', toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] },
      },
      { when: { lastUserText: 'overloaded' }, reply: { error: { status: 529, message: 'busy' } } },
      { when: { lastUserText: 'long' }, reply: { text: 'cut short', finish: 'length' } },
      { reply: { text: 'Hello there friend' } },
    ],
  });
  client = new Anthropic({ baseURL: provider.anthropicBaseURL, apiKey: 'test', maxRetries: 0 });
  conformance = await ConformanceRecorder.open();
});

after(async () => {
  await conformance?.close();
  await provider?.close();
});

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

describe('anthropic normalizers', () => {
  it('splits tool results out of user messages and tool calls out of assistant messages', () => {
    const request = normalizeMessagesRequest({
      model: 'claude-test',
      max_tokens: 100,
      system: [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }],
      messages: [
        { role: 'user', content: 'weather?' },
        {
          role: 'assistant',
          content: [
            { type: 'text', text: 'Checking.' },
            { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: 'sunny' }] },
            { type: 'text', text: 'and tomorrow?' },
          ],
        },
      ],
      tools,
      temperature: 0.5,
      top_k: 3,
      stop_sequences: ['END'],
    });
    assert.deepEqual(validateRequestPayload('model', request), []);
    assert.deepEqual(request.messages, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'weather?' },
      {
        role: 'assistant',
        content: 'Checking.',
        toolCalls: [{ id: 'toolu_1', name: 'get_weather', arguments: { city: 'Paris' } }],
      },
      { role: 'tool', content: 'sunny', toolCallId: 'toolu_1', name: 'get_weather' },
      { role: 'user', content: 'and tomorrow?' },
    ]);
    assert.deepEqual(request.params, { maxTokens: 100, temperature: 0.5, topK: 3, stop: ['END'] });
    assert.deepEqual(request.tools, [
      { name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: {} } },
    ]);
  });

  it('normalizes a real message, and the same reply streamed', async () => {
    provider.reset();
    const body = {
      model: 'claude-test',
      max_tokens: 100,
      messages: [{ role: 'user' as const, content: 'weather?' }],
      tools,
    };
    const message = await client.messages.create(body);
    provider.reset();
    const events = await collect(await client.messages.create({ ...body, stream: true }));
    const whole = normalizeMessage(message);
    assert.deepEqual(validateResponsePayload('model', whole), []);
    assert.deepEqual(whole.message, {
      role: 'assistant',
      content: 'Checking.',
      toolCalls: [{ id: 'toolu_1', name: 'get_weather', arguments: { city: 'Paris' } }],
    });
    assert.equal(whole.finishReason, 'tool_calls');
    assert.deepEqual(whole.usage, { inputTokens: 1, outputTokens: 3, totalTokens: 4 });
    const json = toJsonSafe(events) as Json[];
    assert.deepEqual(accumulateMessage(json), toJsonSafe(message), 'the events add up to the message');
    const streamed = normalizeMessagesStream(json);
    assert.deepEqual({ ...streamed, raw: undefined }, { ...whole, raw: undefined });
    const cut = normalizeMessagesStream(json.slice(0, 4));
    assert.equal(cut.finishReason, 'incomplete');
    assert.equal(cut.message.content, 'Checking.');
  });

  it('maps max_tokens to length', async () => {
    const message = await client.messages.create({
      model: 'claude-test',
      max_tokens: 5,
      messages: [{ role: 'user', content: 'long' }],
    });
    assert.equal(normalizeMessage(message).finishReason, 'length');
  });

  it('rebuilds what the client returned from the recorded raw response', async () => {
    const body = {
      model: 'claude-test',
      max_tokens: 100,
      messages: [{ role: 'user' as const, content: 'hi' }],
    };
    const message = await client.messages.create(body);
    assert.deepStrictEqual(messageFromRecorded(normalizeMessage(message).raw), message);
    const events = await collect(await client.messages.create({ ...body, stream: true }));
    const raw = normalizeMessagesStream(toJsonSafe(events) as Json[]).raw;
    assert.deepStrictEqual(messageEventsFromRecorded(raw), events);
    const stream = anthropicFromRecorded(raw) as { toReadableStream(): ReadableStream };
    const rebuilt = MessageStream.fromReadableStream(stream.toReadableStream());
    const final = await rebuilt.finalMessage();
    assert.equal(final.content[0]?.type === 'text' ? final.content[0].text : '', 'Hello there friend');
  });

  it('keeps the error body', async () => {
    const error = await client.messages
      .create({ model: 'claude-test', max_tokens: 5, messages: [{ role: 'user', content: 'overloaded' }] })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    assert.ok(error instanceof Anthropic.APIError);
    const body = anthropicErrorBody(error) as { type: string; error: unknown; request_id: string };
    assert.equal(body.type, 'error');
    assert.deepEqual(body.error, { type: 'overloaded_error', message: 'busy' });
    assert.match(body.request_id, /^req_/);
  });
});

describe('wrapAnthropic', () => {
  it('returns the same client, once, and wraps derived clients', () => {
    const raw = new Anthropic({ baseURL: provider.anthropicBaseURL, apiKey: 'test' });
    assert.equal(wrapAnthropic(raw), raw);
    const create = raw.messages.create;
    assert.equal(wrapAnthropic(raw).messages.create, create);
    assert.ok(Object.hasOwn(raw.withOptions({ timeout: 1000 }).messages, 'create'));
  });

  it('messages.stream keeps its events, helpers and final message', async () => {
    const wrapped = wrapAnthropic(
      new Anthropic({ baseURL: provider.anthropicBaseURL, apiKey: 'test', maxRetries: 0 }),
    );
    const { result, recorded } = await conformance.record('anthropic-stream-helpers', async () => {
      const texts: string[] = [];
      const stream = wrapped.messages.stream({
        model: 'claude-test',
        max_tokens: 100,
        messages: [{ role: 'user', content: 'hi' }],
      });
      stream.on('text', (delta) => texts.push(delta));
      const final = await stream.finalMessage();
      const { data, response } = await wrapped.messages
        .create({ model: 'claude-test', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] })
        .withResponse();
      return { texts, final, status: response.status, type: data.type };
    });
    assert.deepEqual(result.texts, ['Hello', ' there', ' friend']);
    assert.equal(result.final.stop_reason, 'end_turn');
    assert.equal(result.status, 200);
    assert.equal(result.type, 'message');
    assert.deepEqual(
      recorded.steps.map((step) => [step.name, step.status, step.stream?.chunks ?? 0]),
      [
        ['anthropic.messages', 'ok', 8],
        ['anthropic.messages', 'ok', 0],
      ],
    );
    const response = recorded.steps[0]!.responsePayload as { message: { content: string }; usage: unknown };
    assert.equal(response.message.content, 'Hello there friend');
  });
});
