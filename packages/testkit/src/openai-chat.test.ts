// The provider's chat completions API, driven through the real `openai` client over HTTP.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import { DEFAULT_CREATED, type ScriptedProvider, startScriptedProvider } from './index.ts';

describe('openai chat completions', () => {
  let provider: ScriptedProvider;
  let client: OpenAI;

  before(async () => {
    provider = await startScriptedProvider();
    client = new OpenAI({ baseURL: provider.openaiBaseURL, apiKey: 'test', maxRetries: 0 });
  });
  after(() => provider.close());
  beforeEach(() => provider.reset());

  const weatherRules = () =>
    provider.script([
      {
        name: 'ask weather',
        when: { lastUserText: /weather/i, hasToolResult: false },
        reply: {
          text: 'Checking both.',
          toolCalls: [
            { name: 'get_weather', arguments: { city: 'Paris', unit: 'celsius' } },
            { name: 'get_time', arguments: { timezone: 'Europe/Paris' } },
          ],
        },
      },
      { name: 'answer', when: { hasToolResult: 'get_weather' }, reply: { text: 'Sunny, 21 degrees.' } },
      { name: 'single tool', when: { lastUserText: 'lookup' }, reply: { toolCalls: [{ name: 'lookup' }] } },
      { name: 'cut off', when: { lastUserText: 'long' }, reply: { text: 'This is cut', finish: 'length' } },
      { name: 'default', reply: { text: 'Hello there, how can I help?' } },
    ]);

  it('answers a plain call with a deterministic chat.completion', async () => {
    weatherRules();
    const completion = await client.chat.completions.create({
      model: 'gpt-test',
      messages: [
        { role: 'system', content: 'Be nice.' },
        { role: 'user', content: 'Say hi' },
      ],
    });
    assert.equal(completion.id, 'chatcmpl-1');
    assert.equal(completion.object, 'chat.completion');
    assert.equal(completion.created, DEFAULT_CREATED);
    assert.equal(completion.model, 'gpt-test');
    const choice = completion.choices[0]!;
    assert.equal(choice.message.content, 'Hello there, how can I help?');
    assert.equal(choice.message.role, 'assistant');
    assert.equal(choice.finish_reason, 'stop');
    assert.equal(completion.usage?.prompt_tokens, 4);
    assert.equal(completion.usage?.completion_tokens, 6);
    assert.equal(completion.usage?.total_tokens, 10);

    const [request] = provider.requests;
    assert.equal(request?.api, 'openai.chat');
    assert.equal(request?.path, '/v1/chat/completions');
    assert.equal(request?.headers.authorization, 'Bearer test');
    assert.equal(request?.ruleName, 'default');
    assert.equal(request?.outcome, 'ok');
    assert.equal(request?.conversation?.lastUserText, 'Say hi');
  });

  it('returns a single tool call', async () => {
    weatherRules();
    const completion = await client.chat.completions.create({
      model: 'gpt-test',
      messages: [{ role: 'user', content: 'lookup something' }],
      tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object' } } }],
    });
    const choice = completion.choices[0]!;
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.message.content, null);
    assert.deepEqual(choice.message.tool_calls, [
      { id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{}' } },
    ]);
  });

  it('returns parallel tool calls with text, then answers the tool results', async () => {
    weatherRules();
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'What is the weather?' }];
    const first = await client.chat.completions.create({ model: 'gpt-test', messages });
    const message = first.choices[0]!.message;
    assert.equal(message.content, 'Checking both.');
    const calls = message.tool_calls ?? [];
    assert.deepEqual(
      calls.map((c) =>
        c.type === 'function' ? [c.id, c.function.name, JSON.parse(c.function.arguments)] : [],
      ),
      [
        ['call_1', 'get_weather', { city: 'Paris', unit: 'celsius' }],
        ['call_2', 'get_time', { timezone: 'Europe/Paris' }],
      ],
    );
    messages.push(message);
    messages.push({ role: 'tool', tool_call_id: 'call_1', content: '21C sunny' });
    messages.push({ role: 'tool', tool_call_id: 'call_2', content: '14:00' });
    const second = await client.chat.completions.create({ model: 'gpt-test', messages });
    assert.equal(second.choices[0]!.message.content, 'Sunny, 21 degrees.');
    assert.equal(provider.requests[1]?.conversation?.turn, 1);
    assert.deepEqual(
      provider.requests[1]?.conversation?.trailingToolResults.map((r) => r.name),
      ['get_weather', 'get_time'],
    );
  });

  it('streams text as several chunks and ends with a usage chunk (stream helper)', async () => {
    weatherRules();
    const stream = client.chat.completions.stream({
      model: 'gpt-test',
      messages: [{ role: 'user', content: 'Say hi' }],
      stream_options: { include_usage: true },
    });
    const chunks: ChatCompletionChunk[] = [];
    const deltas: string[] = [];
    stream.on('chunk', (chunk) => chunks.push(chunk));
    stream.on('content', (delta) => deltas.push(delta));
    const final = await stream.finalChatCompletion();
    assert.deepEqual(deltas, ['Hello', ' there,', ' how', ' can', ' I', ' help?']);
    assert.equal(final.choices[0]!.message.content, 'Hello there, how can I help?');
    assert.equal(final.choices[0]!.finish_reason, 'stop');
    assert.equal(final.id, 'chatcmpl-1');
    assert.equal(final.usage?.completion_tokens, 6);
    const last = chunks.at(-1)!;
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage?.total_tokens, 8);
    assert.ok(chunks.slice(0, -1).every((c) => c.usage === null));
    assert.equal(provider.requests[0]?.stream, true);
    assert.equal(provider.requests[0]?.eventsSent, chunks.length + 1); // + [DONE]
  });

  it('streams parallel tool calls with arguments in pieces (create stream: true)', async () => {
    weatherRules();
    const stream = await client.chat.completions.create({
      model: 'gpt-test',
      messages: [{ role: 'user', content: 'weather please' }],
      stream: true,
    });
    const argPieces = new Map<number, string[]>();
    let finish: string | null = null;
    for await (const chunk of stream) {
      assert.equal(chunk.usage, undefined); // no include_usage: no usage field at all
      for (const choice of chunk.choices) {
        for (const call of choice.delta.tool_calls ?? []) {
          const list = argPieces.get(call.index) ?? [];
          if (call.function?.arguments) list.push(call.function.arguments);
          argPieces.set(call.index, list);
        }
        finish = choice.finish_reason ?? finish;
      }
    }
    assert.equal(finish, 'tool_calls');
    assert.ok((argPieces.get(0)?.length ?? 0) > 1, 'arguments arrive in several pieces');
    assert.deepEqual(JSON.parse(argPieces.get(0)!.join('')), { city: 'Paris', unit: 'celsius' });
    assert.deepEqual(JSON.parse(argPieces.get(1)!.join('')), { timezone: 'Europe/Paris' });

    provider.reset();
    const final = await client.chat.completions
      .stream({ model: 'gpt-test', messages: [{ role: 'user', content: 'weather please' }] })
      .finalChatCompletion();
    const message = final.choices[0]!.message;
    assert.equal(message.content, 'Checking both.');
    assert.deepEqual(
      message.tool_calls?.map((c) =>
        c.type === 'function' ? [c.id, c.function.name, c.function.arguments] : [],
      ),
      [
        ['call_1', 'get_weather', '{"city":"Paris","unit":"celsius"}'],
        ['call_2', 'get_time', '{"timezone":"Europe/Paris"}'],
      ],
    );
  });

  it('reports a cut-off answer as finish_reason length', async () => {
    weatherRules();
    const completion = await client.chat.completions.create({
      model: 'gpt-test',
      messages: [{ role: 'user', content: 'a long story' }],
    });
    assert.equal(completion.choices[0]!.finish_reason, 'length');
  });

  it('is byte-for-byte reproducible after reset()', async () => {
    weatherRules();
    const run = async () => {
      const params = { model: 'gpt-test', messages: [{ role: 'user' as const, content: 'weather?' }] };
      const plain = await (await client.chat.completions.create(params).asResponse()).text();
      const streamed = await (
        await client.chat.completions.create({ ...params, stream: true }).asResponse()
      ).text();
      return [plain, streamed];
    };
    const first = await run();
    provider.reset();
    const second = await run();
    assert.deepEqual(second, first);
    assert.match(first[1]!, /^data: \{"id":"chatcmpl-2"/);
    assert.match(first[1]!, /data: \[DONE\]\n\n$/);
  });
});
