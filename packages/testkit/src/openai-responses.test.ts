// The provider's Responses API, driven through the real `openai` client over HTTP.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { ResponseInputItem, ResponseStreamEvent } from 'openai/resources/responses/responses';
import { DEFAULT_CREATED, type ScriptedProvider, startScriptedProvider } from './index.ts';

describe('openai responses', () => {
  let provider: ScriptedProvider;
  let client: OpenAI;

  before(async () => {
    provider = await startScriptedProvider({
      rules: [
        {
          when: { lastUserText: 'weather', hasToolResult: false },
          reply: {
            text: 'Checking.',
            toolCalls: [
              { name: 'get_weather', arguments: { city: 'Paris' } },
              { name: 'get_time', arguments: { timezone: 'Europe/Paris' } },
            ],
          },
        },
        { when: { hasToolResult: true }, reply: { text: 'Sunny in Paris at two.' } },
        {
          when: { lastUserText: 'tool only' },
          reply: { toolCalls: [{ name: 'lookup', arguments: '{"q":1}' }] },
        },
        { when: { lastUserText: 'long' }, reply: { text: 'This is cut', finish: 'length' } },
        { reply: { text: 'Hello from the Responses API.' } },
      ],
    });
    client = new OpenAI({ baseURL: provider.openaiBaseURL, apiKey: 'test', maxRetries: 0 });
  });
  after(() => provider.close());
  beforeEach(() => provider.reset());

  it('answers a plain call with a completed response', async () => {
    const response = await client.responses.create({
      model: 'gpt-test',
      input: 'Say hi',
      instructions: 'Be brief.',
    });
    assert.equal(response.id, 'resp_1');
    assert.equal(response.object, 'response');
    assert.equal(response.status, 'completed');
    assert.equal(response.created_at, DEFAULT_CREATED);
    assert.equal(response.output_text, 'Hello from the Responses API.');
    assert.equal(response.instructions, 'Be brief.');
    assert.equal(response.output[0]?.type, 'message');
    assert.equal(response.usage?.input_tokens, 4);
    assert.equal(response.usage?.output_tokens, 5);
    assert.equal(provider.requests[0]?.api, 'openai.responses');
    assert.equal(provider.requests[0]?.conversation?.system, 'Be brief.');
  });

  it('returns function calls, then answers their outputs', async () => {
    const input: ResponseInputItem[] = [{ role: 'user', content: 'weather in Paris?' }];
    const first = await client.responses.create({ model: 'gpt-test', input });
    assert.equal(first.output_text, 'Checking.');
    const calls = first.output.filter((item) => item.type === 'function_call');
    assert.deepEqual(
      calls.map((c) => [c.id, c.call_id, c.name, JSON.parse(c.arguments)]),
      [
        ['fc_1', 'call_1', 'get_weather', { city: 'Paris' }],
        ['fc_2', 'call_2', 'get_time', { timezone: 'Europe/Paris' }],
      ],
    );
    input.push(...calls);
    input.push({ type: 'function_call_output', call_id: 'call_1', output: 'sunny' });
    input.push({ type: 'function_call_output', call_id: 'call_2', output: '14:00' });
    const second = await client.responses.create({ model: 'gpt-test', input });
    assert.equal(second.output_text, 'Sunny in Paris at two.');
    assert.equal(provider.requests[1]?.conversation?.turn, 1);
  });

  it('streams text and function-call arguments as several events (stream helper)', async () => {
    const stream = client.responses.stream({ model: 'gpt-test', input: 'weather please' });
    const events: ResponseStreamEvent[] = [];
    const textDeltas: string[] = [];
    stream.on('event', (e) => events.push(e));
    stream.on('response.output_text.delta', (e) => textDeltas.push(e.delta));
    const final = await stream.finalResponse();
    assert.equal(final.status, 'completed');
    assert.equal(final.output_text, 'Checking.');
    assert.deepEqual(textDeltas, ['Checking.']);
    const argDeltas = events.filter((e) => e.type === 'response.function_call_arguments.delta');
    assert.ok(argDeltas.length > 2, 'arguments arrive in several pieces');
    assert.equal(events[0]?.type, 'response.created');
    assert.equal(events.at(-1)?.type, 'response.completed');
    assert.deepEqual(
      events.map((e) => e.sequence_number),
      events.map((_, i) => i),
    );
    const calls = final.output.filter((item) => item.type === 'function_call');
    assert.deepEqual(
      calls.map((c) => [c.name, c.arguments]),
      [
        ['get_weather', '{"city":"Paris"}'],
        ['get_time', '{"timezone":"Europe/Paris"}'],
      ],
    );
  });

  it('streams raw events with create({ stream: true })', async () => {
    const stream = await client.responses.create({ model: 'gpt-test', input: 'Say hi', stream: true });
    const types: string[] = [];
    let text = '';
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'response.output_text.delta') text += event.delta;
    }
    assert.equal(text, 'Hello from the Responses API.');
    assert.deepEqual(types, [
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      ...Array(5).fill('response.output_text.delta'),
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
  });

  it('streams a tool-call-only answer', async () => {
    const final = await client.responses.stream({ model: 'gpt-test', input: 'tool only' }).finalResponse();
    assert.equal(final.output_text, '');
    assert.equal(final.output.length, 1);
    assert.deepEqual(final.output[0], {
      id: 'fc_1',
      type: 'function_call',
      status: 'completed',
      arguments: '{"q":1}',
      call_id: 'call_1',
      name: 'lookup',
      parsed_arguments: null,
    });
  });

  it('remembers history for previous_response_id and item references', async () => {
    const first = await client.responses
      .stream({ model: 'gpt-test', input: 'weather in Paris?' })
      .finalResponse();
    const [weatherCall, timeCall] = first.output.filter((item) => item.type === 'function_call');
    // Continue from the stored response: only the tool outputs are sent.
    const second = await client.responses.create({
      model: 'gpt-test',
      previous_response_id: first.id,
      input: [
        { type: 'function_call_output', call_id: weatherCall!.call_id, output: 'sunny' },
        { type: 'function_call_output', call_id: timeCall!.call_id, output: '14:00' },
      ],
    });
    assert.equal(second.output_text, 'Sunny in Paris at two.');
    assert.equal(second.previous_response_id, first.id);
    const continued = provider.requests[1]!.conversation!;
    assert.equal(continued.turn, 1);
    assert.equal(continued.lastUserText, 'weather in Paris?');
    assert.deepEqual(
      continued.trailingToolResults.map((r) => [r.name, r.content]),
      [
        ['get_weather', 'sunny'],
        ['get_time', '14:00'],
      ],
    );

    // The same turn with the assistant items sent as item references (as stateful clients do).
    const third = await client.responses.create({
      model: 'gpt-test',
      input: [
        { role: 'user', content: 'weather in Paris?' },
        ...first.output.map((item) => ({ type: 'item_reference' as const, id: item.id! })),
        { type: 'function_call_output', call_id: weatherCall!.call_id, output: 'sunny' },
      ],
    });
    assert.equal(third.output_text, 'Sunny in Paris at two.');
    assert.deepEqual(
      provider.requests[2]!.conversation!.messages[1]!.toolCalls.map((c) => c.name),
      ['get_weather', 'get_time'],
    );

    await assert.rejects(
      client.responses.create({ model: 'gpt-test', previous_response_id: 'resp_404', input: 'hi' }),
      (err: unknown) => err instanceof OpenAI.BadRequestError && /resp_404.*not found/.test(err.message),
    );
  });

  it('reports a cut-off answer as incomplete, streaming or not', async () => {
    const plain = await client.responses.create({ model: 'gpt-test', input: 'a long story' });
    assert.equal(plain.status, 'incomplete');
    assert.deepEqual(plain.incomplete_details, { reason: 'max_output_tokens' });
    const streamed = await client.responses
      .stream({ model: 'gpt-test', input: 'a long story' })
      .finalResponse();
    assert.equal(streamed.status, 'incomplete');
    assert.equal(streamed.output_text, 'This is cut');
  });
});
