// The provider's Anthropic messages API, driven through the real `@anthropic-ai/sdk` client over HTTP.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { type ScriptedProvider, startScriptedProvider } from './index.ts';

describe('anthropic messages', () => {
  let provider: ScriptedProvider;
  let client: Anthropic;

  before(async () => {
    provider = await startScriptedProvider({
      rules: [
        {
          when: { lastUserText: 'weather', hasToolResult: false },
          reply: {
            text: 'Let me look that up.',
            toolCalls: [
              { name: 'get_weather', arguments: { city: 'Paris', days: [1, 2] } },
              { name: 'get_time', arguments: { timezone: 'Europe/Paris' } },
            ],
          },
        },
        { when: { hasToolResult: 'get_weather' }, reply: { text: 'Sunny in Paris.' } },
        {
          when: { lastUserText: 'tool only' },
          reply: { toolCalls: [{ name: 'lookup', arguments: { q: 1 } }] },
        },
        { when: { lastUserText: 'long' }, reply: { text: 'This is cut', finish: 'length' } },
        { reply: { text: 'Hello from the messages API.' } },
      ],
    });
    client = new Anthropic({ baseURL: provider.anthropicBaseURL, apiKey: 'test', maxRetries: 0 });
  });
  after(() => provider.close());
  beforeEach(() => provider.reset());

  const model = 'claude-test';

  it('answers a plain call with a message', async () => {
    const message = await client.messages.create({
      model,
      max_tokens: 256,
      system: 'Be brief.',
      messages: [{ role: 'user', content: 'Say hi' }],
    });
    assert.equal(message.id, 'msg_1');
    assert.equal(message.type, 'message');
    assert.equal(message.role, 'assistant');
    assert.equal(message.model, model);
    assert.deepEqual(message.content, [{ type: 'text', text: 'Hello from the messages API.' }]);
    assert.equal(message.stop_reason, 'end_turn');
    assert.equal(message.usage.input_tokens, 4);
    assert.equal(message.usage.output_tokens, 5);
    const [request] = provider.requests;
    assert.equal(request?.api, 'anthropic.messages');
    assert.equal(request?.path, '/v1/messages');
    // @anthropic-ai/sdk 1.x sends the API key as a bearer token, not as x-api-key.
    assert.equal(request?.headers.authorization, 'Bearer test');
    assert.ok(request?.headers['anthropic-version']);
  });

  it('returns parallel tool_use blocks, then answers the tool results', async () => {
    const messages: Anthropic.MessageParam[] = [{ role: 'user', content: 'weather in Paris?' }];
    const first = await client.messages.create({ model, max_tokens: 256, messages });
    assert.equal(first.stop_reason, 'tool_use');
    assert.deepEqual(first.content, [
      { type: 'text', text: 'Let me look that up.' },
      { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris', days: [1, 2] } },
      { type: 'tool_use', id: 'toolu_2', name: 'get_time', input: { timezone: 'Europe/Paris' } },
    ]);
    messages.push({ role: 'assistant', content: first.content });
    messages.push({
      role: 'user',
      content: [
        { type: 'tool_result', tool_use_id: 'toolu_1', content: 'sunny' },
        { type: 'tool_result', tool_use_id: 'toolu_2', content: '14:00' },
      ],
    });
    const second = await client.messages.create({ model, max_tokens: 256, messages });
    assert.deepEqual(second.content, [{ type: 'text', text: 'Sunny in Paris.' }]);
    assert.equal(provider.requests[1]?.conversation?.turn, 1);
  });

  it('streams text and tool input as several events (messages.stream)', async () => {
    const stream = client.messages.stream({
      model,
      max_tokens: 256,
      messages: [{ role: 'user', content: 'weather please' }],
    });
    const texts: string[] = [];
    const jsonPieces: string[] = [];
    const types: string[] = [];
    stream.on('text', (delta) => texts.push(delta));
    stream.on('inputJson', (partial) => jsonPieces.push(partial));
    stream.on('streamEvent', (event) => types.push(event.type));
    const final = await stream.finalMessage();
    assert.deepEqual(texts, ['Let', ' me', ' look', ' that', ' up.']);
    assert.ok(jsonPieces.length > 2, 'tool input arrives in several pieces');
    assert.equal(final.stop_reason, 'tool_use');
    assert.equal(final.id, 'msg_1');
    assert.deepEqual(
      final.content.map((b) => (b.type === 'tool_use' ? [b.id, b.name, b.input] : [b.type])),
      [
        ['text'],
        ['toolu_1', 'get_weather', { city: 'Paris', days: [1, 2] }],
        ['toolu_2', 'get_time', { timezone: 'Europe/Paris' }],
      ],
    );
    assert.equal(final.usage.output_tokens, 9);
    assert.equal(final.usage.input_tokens, 2);
    assert.equal(types[0], 'message_start');
    assert.equal(types.at(-1), 'message_stop');
    assert.ok(!types.includes('ping' as never), 'the client swallows ping events');
  });

  it('streams raw events with create({ stream: true })', async () => {
    const stream = await client.messages.create({
      model,
      max_tokens: 256,
      messages: [{ role: 'user', content: 'Say hi' }],
      stream: true,
    });
    const types: string[] = [];
    let text = '';
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text;
    }
    assert.equal(text, 'Hello from the messages API.');
    assert.deepEqual(types, [
      'message_start',
      'content_block_start',
      ...Array(5).fill('content_block_delta'),
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
  });

  it('streams a tool-only answer', async () => {
    const final = await client.messages
      .stream({ model, max_tokens: 256, messages: [{ role: 'user', content: 'tool only' }] })
      .finalMessage();
    assert.deepEqual(final.content, [{ type: 'tool_use', id: 'toolu_1', name: 'lookup', input: { q: 1 } }]);
  });

  it('reports a cut-off answer as max_tokens, streaming or not', async () => {
    const params = { model, max_tokens: 3, messages: [{ role: 'user' as const, content: 'a long story' }] };
    assert.equal((await client.messages.create(params)).stop_reason, 'max_tokens');
    assert.equal((await client.messages.stream(params).finalMessage()).stop_reason, 'max_tokens');
  });
});
