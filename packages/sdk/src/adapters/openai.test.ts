// Unit tests of the openai adapter: the pure normalizers against real objects the official client
// returned from the scripted provider, `fromRecorded` round trips, and the wrapper's promise to
// return exactly what the client returns (APIPromise helpers, Stream helpers, helpers built on
// create, passthrough outside a run).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { validateRequestPayload, validateResponsePayload } from '@rewind/schema';
import { type ScriptedProvider, startScriptedProvider } from '@rewind/testkit';
import OpenAI from 'openai';
import { ConformanceRecorder } from './conformance/harness.ts';
import { openaiFromRecorded, wrapOpenAI } from './openai.ts';
import {
  chatChunksFromRecorded,
  chatCompletionFromRecorded,
  normalizeChatRequest,
  normalizeChatResponse,
  normalizeChatStream,
  normalizeResponsesRequest,
  normalizeResponsesResponse,
  normalizeResponsesStream,
  openaiErrorBody,
  responseFromRecorded,
  responseRaw,
} from './openai-normalize.ts';
import { type Json, toJsonSafe } from './shared/json.ts';

let provider: ScriptedProvider;
let client: OpenAI;
let conformance: ConformanceRecorder;

const tools: OpenAI.Chat.ChatCompletionTool[] = [
  {
    type: 'function',
    function: { name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: {} } },
  },
];

before(async () => {
  provider = await startScriptedProvider({
    rules: [
      {
        when: { lastUserText: /weather/, hasToolResult: false },
        reply: { text: 'Checking.', toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] },
      },
      { when: { hasToolResult: 'get_weather' }, reply: { text: 'Sunny.' } },
      { when: { lastUserText: 'bad' }, reply: { error: { status: 400, message: 'no good' } } },
      { when: { lastUserText: 'long' }, reply: { text: 'cut short', finish: 'length' } },
      {
        when: { lastUserText: 'interrupted' },
        reply: {
          text: 'one two three four five',
          interrupt: { afterEvents: 3, with: 'error', message: 'overloaded' },
        },
      },
      {
        when: { lastUserText: 'dropped' },
        reply: { text: 'one two three four five', interrupt: { afterEvents: 3, with: 'drop' } },
      },
      { reply: { text: 'Hello there friend' } },
    ],
  });
  client = new OpenAI({ baseURL: provider.openaiBaseURL, apiKey: 'test', maxRetries: 0 });
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

describe('chat completions normalizers', () => {
  it('normalizes a whole conversation and the params', () => {
    const request = normalizeChatRequest({
      model: 'gpt-test',
      messages: [
        { role: 'developer', content: 'Be brief.' },
        { role: 'user', content: [{ type: 'text', text: 'weather?' }], name: 'ann' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            {
              id: 'call_1',
              type: 'function',
              function: { name: 'get_weather', arguments: '{"city":"Paris"}' },
            },
          ],
        },
        { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
      ],
      tools,
      temperature: 0.3,
      top_p: 0.9,
      max_completion_tokens: 50,
      seed: 7,
      stop: 'END',
      tool_choice: 'auto',
      stream: false,
    });
    assert.deepEqual(validateRequestPayload('model', request), []);
    assert.deepEqual(request.messages, [
      { role: 'developer', content: 'Be brief.' },
      { role: 'user', content: 'weather?', name: 'ann' },
      {
        role: 'assistant',
        content: null,
        toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: { city: 'Paris' } }],
      },
      { role: 'tool', content: 'sunny', toolCallId: 'call_1', name: 'get_weather' },
    ]);
    assert.deepEqual(request.params, {
      temperature: 0.3,
      topP: 0.9,
      maxTokens: 50,
      seed: 7,
      stop: ['END'],
      toolChoice: 'auto',
    });
    assert.deepEqual(request.tools, [
      { name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: {} } },
    ]);
    assert.equal(request.stream, false);
  });

  it('normalizes a real completion with a tool call, and the same reply streamed', async () => {
    provider.reset();
    const body = { model: 'gpt-test', messages: [{ role: 'user' as const, content: 'weather?' }], tools };
    const completion = await client.chat.completions.create(body);
    provider.reset();
    const chunks = await collect(
      await client.chat.completions.create({
        ...body,
        stream: true,
        stream_options: { include_usage: true },
      }),
    );
    const whole = normalizeChatResponse(completion);
    assert.deepEqual(validateResponsePayload('model', whole), []);
    assert.deepEqual(whole.message, {
      role: 'assistant',
      content: 'Checking.',
      toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: { city: 'Paris' } }],
    });
    assert.equal(whole.finishReason, 'tool_calls');
    assert.deepEqual(whole.usage, { inputTokens: 1, outputTokens: 3, totalTokens: 4 });
    const streamed = normalizeChatStream(toJsonSafe(chunks) as Json[]);
    assert.deepEqual(validateResponsePayload('model', streamed), []);
    assert.deepEqual({ ...streamed, raw: undefined }, { ...whole, raw: undefined }, 'streamed = unstreamed');
  });

  it('maps a length cut-off and a partial stream', async () => {
    const cut = await client.chat.completions.create({
      model: 'gpt-test',
      messages: [{ role: 'user', content: 'long' }],
    });
    assert.equal(normalizeChatResponse(cut).finishReason, 'length');
    const chunks = await collect(
      await client.chat.completions.create({
        model: 'gpt-test',
        messages: [{ role: 'user', content: 'hi' }],
        stream: true,
      }),
    );
    const partial = normalizeChatStream(toJsonSafe(chunks.slice(0, 2)) as Json[], { stopped: true });
    assert.equal(partial.finishReason, 'incomplete');
    assert.equal(partial.message.content, 'Hello');
    assert.equal((partial.raw as { stopped?: boolean }).stopped, true);
  });

  it('rebuilds what the client returned from the recorded raw response', async () => {
    const completion = await client.chat.completions.create({
      model: 'gpt-test',
      messages: [{ role: 'user', content: 'hi' }],
    });
    const raw = normalizeChatResponse(completion).raw;
    assert.deepStrictEqual(chatCompletionFromRecorded(raw), completion);
    const chunks = await collect(
      await client.chat.completions.create({
        model: 'gpt-test',
        messages: [{ role: 'user', content: 'hi' }],
        stream: true,
      }),
    );
    const streamedRaw = normalizeChatStream(toJsonSafe(chunks) as Json[]).raw;
    assert.deepStrictEqual(chatChunksFromRecorded(streamedRaw), chunks);
    const rebuilt = openaiFromRecorded('chat.completions', streamedRaw) as AsyncIterable<unknown> & {
      tee(): [AsyncIterable<unknown>, AsyncIterable<unknown>];
    };
    const [left, right] = rebuilt.tee();
    assert.deepStrictEqual(await collect(left), chunks);
    assert.deepStrictEqual(await collect(right), chunks);
  });
});

describe('responses normalizers', () => {
  const responseTools: OpenAI.Responses.Tool[] = [
    { type: 'function', name: 'get_weather', parameters: { type: 'object', properties: {} }, strict: false },
  ];

  it('normalizes instructions, input items and function calls', () => {
    const request = normalizeResponsesRequest({
      model: 'gpt-test',
      instructions: 'Be brief.',
      input: [
        { role: 'user', content: [{ type: 'input_text', text: 'weather?' }] },
        {
          type: 'message',
          role: 'assistant',
          id: 'msg_1',
          status: 'completed',
          content: [{ type: 'output_text', text: 'Checking.', annotations: [] }],
        },
        {
          type: 'function_call',
          id: 'fc_1',
          call_id: 'call_1',
          name: 'get_weather',
          arguments: '{"city":"Paris"}',
        },
        { type: 'function_call_output', call_id: 'call_1', output: 'sunny' },
      ],
      tools: responseTools,
      max_output_tokens: 100,
      previous_response_id: 'resp_0',
    });
    assert.deepEqual(validateRequestPayload('model', request), []);
    assert.deepEqual(request.messages, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'weather?' },
      {
        role: 'assistant',
        content: 'Checking.',
        toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: { city: 'Paris' } }],
      },
      { role: 'tool', content: 'sunny', toolCallId: 'call_1', name: 'get_weather' },
    ]);
    assert.deepEqual(request.params, { maxTokens: 100, previousResponseId: 'resp_0' });
  });

  it('normalizes a real response, and the same reply streamed', async () => {
    provider.reset();
    const body = { model: 'gpt-test', input: 'weather?', tools: responseTools };
    const response = await client.responses.create(body);
    provider.reset();
    const events = await collect(await client.responses.create({ ...body, stream: true }));
    const whole = normalizeResponsesResponse(response);
    assert.deepEqual(validateResponsePayload('model', whole), []);
    assert.deepEqual(whole.message, {
      role: 'assistant',
      content: 'Checking.',
      toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: { city: 'Paris' } }],
    });
    assert.equal(whole.finishReason, 'tool_calls');
    assert.ok(
      !('output_text' in (whole.raw as object)),
      'raw is the wire object, without the client-added output_text',
    );
    const streamed = normalizeResponsesStream(toJsonSafe(events) as Json[]);
    assert.deepEqual({ ...streamed, raw: undefined }, { ...whole, raw: undefined });
    // Without its terminal event (an aborted stream), the deltas still add up.
    const partial = normalizeResponsesStream(toJsonSafe(events.slice(0, -1)) as Json[]);
    assert.equal(partial.finishReason, 'incomplete');
    assert.deepEqual(partial.message, whole.message);
  });

  it('rebuilds what the client returned (output_text included)', async () => {
    const response = await client.responses.create({ model: 'gpt-test', input: 'hi' });
    assert.deepStrictEqual(responseFromRecorded(responseRaw(response)), response);
    const events = await collect(
      await client.responses.create({ model: 'gpt-test', input: 'hi', stream: true }),
    );
    const raw = normalizeResponsesStream(toJsonSafe(events) as Json[]).raw;
    assert.deepStrictEqual(
      await collect(openaiFromRecorded('responses', raw) as AsyncIterable<unknown>),
      events,
    );
  });
});

describe('errors', () => {
  it('keeps the body an APIError came with', async () => {
    const error = await client.chat.completions
      .create({ model: 'gpt-test', messages: [{ role: 'user', content: 'bad' }] })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    assert.ok(error instanceof OpenAI.APIError);
    assert.deepEqual(openaiErrorBody(error), {
      error: { message: 'no good', type: 'invalid_request_error', param: null, code: null },
    });
    assert.equal(openaiErrorBody(new Error('plain')), undefined);
  });
});

describe('wrapOpenAI', () => {
  it('returns the same client, once', () => {
    const raw = new OpenAI({ baseURL: provider.openaiBaseURL, apiKey: 'test' });
    const wrapped = wrapOpenAI(raw);
    assert.equal(wrapped, raw);
    const create = wrapped.chat.completions.create;
    assert.equal(wrapOpenAI(wrapped).chat.completions.create, create, 'wrapping twice is a no-op');
    assert.ok(wrapped instanceof OpenAI);
    const derived = wrapped.withOptions({ timeout: 1000 });
    assert.notEqual(
      derived.chat.completions.create,
      OpenAI.prototype.constructor,
      'derived clients are wrapped',
    );
    assert.ok(Object.hasOwn(derived.chat.completions, 'create'));
  });

  it('outside a run it calls straight through and records nothing', async () => {
    const wrapped = wrapOpenAI(
      new OpenAI({ baseURL: provider.openaiBaseURL, apiKey: 'test', maxRetries: 0 }),
    );
    const before = conformance.recorder.stats().produced;
    const completion = await wrapped.chat.completions.create({
      model: 'gpt-test',
      messages: [{ role: 'user', content: 'hi' }],
    });
    assert.equal(completion.choices[0]?.message.content, 'Hello there friend');
    assert.equal(conformance.recorder.stats().produced, before);
  });

  it('keeps the APIPromise helpers and the Stream helpers', async () => {
    const wrapped = wrapOpenAI(
      new OpenAI({ baseURL: provider.openaiBaseURL, apiKey: 'test', maxRetries: 0 }),
    );
    const body = { model: 'gpt-test', messages: [{ role: 'user' as const, content: 'hi' }] };
    const { recorded } = await conformance.record('openai-helpers', async () => {
      const { data, response, request_id } = await wrapped.chat.completions.create(body).withResponse();
      assert.equal(data.choices[0]?.message.content, 'Hello there friend');
      assert.equal(response.status, 200);
      assert.match(String(request_id), /^req_/);
      const raw = await wrapped.chat.completions.create(body).asResponse();
      assert.equal(
        ((await raw.json()) as { object: string }).object,
        'chat.completion',
        'asResponse leaves the body to the user',
      );
      const stream = await wrapped.chat.completions.create({ ...body, stream: true });
      assert.ok(stream.controller instanceof AbortController);
      const [left, right] = stream.tee();
      const leftChunks = await collect(left);
      assert.deepEqual(await collect(right), leftChunks);
      const readable = (await wrapped.chat.completions.create({ ...body, stream: true })).toReadableStream();
      const text = await new Response(readable).text();
      assert.equal(text.trim().split('\n').length, leftChunks.length);
      // Helpers built on create are captured through it.
      const helper = wrapped.chat.completions.stream(body);
      assert.equal(await helper.finalContent(), 'Hello there friend');
      const responses = wrapped.responses.stream({ model: 'gpt-test', input: 'hi' });
      assert.equal((await responses.finalResponse()).output_text, 'Hello there friend');
    });
    assert.deepEqual(
      recorded.steps.map((step) => [step.name, step.status, step.stream === null ? 0 : step.stream.chunks]),
      [
        ['openai.chat.completions', 'ok', 0],
        ['openai.chat.completions', 'ok', 0],
        ['openai.chat.completions', 'ok', 5],
        ['openai.chat.completions', 'ok', 5],
        ['openai.chat.completions', 'ok', 5],
        ['openai.responses', 'ok', 11],
      ],
    );
    const asResponse = recorded.steps[1]!.responsePayload as { message: { content: string } };
    assert.equal(
      asResponse.message.content,
      'Hello there friend',
      'a bare asResponse() is recorded from a clone',
    );
  });

  it('captures helpers that derive promises, errors included, without unhandled rejections', async () => {
    const wrapped = wrapOpenAI(
      new OpenAI({ baseURL: provider.openaiBaseURL, apiKey: 'test', maxRetries: 0 }),
    );
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const { recorded } = await conformance.record('openai-derived', async () => {
        const parsed = await wrapped.chat.completions.parse({
          model: 'gpt-test',
          messages: [{ role: 'user', content: 'hi' }],
        });
        assert.equal(parsed.choices[0]?.message.content, 'Hello there friend');
        await assert.rejects(
          wrapped.chat.completions.parse({ model: 'gpt-test', messages: [{ role: 'user', content: 'bad' }] }),
          (error: unknown) => error instanceof OpenAI.BadRequestError,
        );
        const failing = wrapped.responses.stream({ model: 'gpt-test', input: 'bad' });
        await assert.rejects(
          failing.finalResponse(),
          (error: unknown) => error instanceof OpenAI.BadRequestError,
        );
      });
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.deepEqual(
        recorded.steps.map((step) => [
          step.name,
          step.status,
          step.error?.type ?? null,
          step.error?.status ?? null,
        ]),
        [
          ['openai.chat.completions', 'ok', null, null],
          ['openai.chat.completions', 'error', 'BadRequestError', 400],
          ['openai.responses', 'error', 'BadRequestError', 400],
        ],
      );
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('records a stream that failed midway with the chunks received and the error event', async () => {
    const wrapped = wrapOpenAI(
      new OpenAI({ baseURL: provider.openaiBaseURL, apiKey: 'test', maxRetries: 0 }),
    );
    const { recorded } = await conformance.record('openai-midstream', async () => {
      for (const content of ['interrupted', 'dropped']) {
        const seen: unknown[] = [];
        const stream = await wrapped.chat.completions.create({
          model: 'gpt-test',
          messages: [{ role: 'user', content }],
          stream: true,
        });
        await assert.rejects(async () => {
          for await (const chunk of stream) seen.push(chunk);
        });
        assert.equal(seen.length, 3);
      }
    });
    const [interrupted, dropped] = recorded.steps;
    assert.equal(interrupted?.status, 'error');
    assert.equal(interrupted?.error?.type, 'APIError');
    const body = interrupted?.responsePayload as { chunks: unknown[]; error: unknown };
    assert.equal(body.chunks.length, 3);
    assert.match(JSON.stringify(body.error), /overloaded/);
    assert.equal(dropped?.status, 'error');
    assert.equal((dropped!.responsePayload as { chunks: unknown[] }).chunks.length, 3);
  });

  it('records a stream the agent stopped reading as a partial answer', async () => {
    const wrapped = wrapOpenAI(
      new OpenAI({ baseURL: provider.openaiBaseURL, apiKey: 'test', maxRetries: 0 }),
    );
    const { recorded } = await conformance.record('openai-break', async () => {
      const stream = await wrapped.chat.completions.create({
        model: 'gpt-test',
        messages: [{ role: 'user', content: 'hi' }],
        stream: true,
      });
      for await (const chunk of stream) if (chunk.choices[0]?.delta.content === 'Hello') break;
    });
    const [step] = recorded.steps;
    assert.equal(step?.status, 'ok');
    const response = step?.responsePayload as {
      message: { content: string };
      finishReason: string;
      raw: { stopped: boolean; chunks: unknown[] };
    };
    assert.equal(response.message.content, 'Hello');
    assert.equal(response.finishReason, 'incomplete');
    assert.equal(response.raw.stopped, true);
    assert.equal(response.raw.chunks.length, 2);
    assert.equal(step?.stream?.chunks, 2);
  });
});
