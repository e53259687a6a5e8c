// Unit tests of the AI SDK adapter: normalizers against the real call options, generate results
// and stream parts the AI SDK's providers produce against the scripted provider (captured by a
// probe middleware), `fromRecorded` round trips, and the middleware's passthrough.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import { validateRequestPayload, validateResponsePayload } from '@rewind/schema';
import { type ScriptedProvider, startScriptedProvider } from '@rewind/testkit';
import {
  generateText,
  jsonSchema,
  type LanguageModelMiddleware,
  stepCountIs,
  streamText,
  tool,
  wrapLanguageModel,
} from 'ai';
import {
  generateResultFromRecorded,
  normalizeCallOptions,
  normalizeGenerateResult,
  normalizeStreamParts,
  rewindMiddleware,
  streamResultFromRecorded,
  wrapModel,
} from './ai-sdk.ts';
import { aiSdkErrorBody } from './ai-sdk-normalize.ts';
import { ConformanceRecorder } from './conformance/harness.ts';
import { type Json, toJsonSafe } from './shared/json.ts';

let provider: ScriptedProvider;
let conformance: ConformanceRecorder;

before(async () => {
  provider = await startScriptedProvider({
    rules: [
      {
        when: { lastUserText: /weather/, hasToolResult: false },
        reply: { text: 'Checking.', toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] },
      },
      { when: { hasToolResult: 'get_weather' }, reply: { text: 'Sunny.' } },
      { when: { lastUserText: 'bad' }, reply: { error: { status: 400, message: 'no good' } } },
      { reply: { text: 'Hello there friend' } },
    ],
  });
  conformance = await ConformanceRecorder.open();
});

after(async () => {
  await conformance?.close();
  await provider?.close();
});

interface Probe {
  calls: {
    params: unknown;
    model: { provider: string; modelId: string };
    result?: unknown;
    parts?: unknown[];
  }[];
  middleware: LanguageModelMiddleware;
}

/** A middleware that keeps what the model layer saw, unchanged. */
function probe(): Probe {
  const calls: Probe['calls'] = [];
  return {
    calls,
    middleware: {
      specificationVersion: 'v4',
      async wrapGenerate({ doGenerate, params, model }) {
        const call: Probe['calls'][number] = {
          params,
          model: { provider: model.provider, modelId: model.modelId },
        };
        calls.push(call);
        call.result = await doGenerate();
        return call.result as Awaited<ReturnType<typeof doGenerate>>;
      },
      async wrapStream({ doStream, params, model }) {
        const call: Probe['calls'][number] = {
          params,
          model: { provider: model.provider, modelId: model.modelId },
          parts: [],
        };
        calls.push(call);
        const result = await doStream();
        const [mine, theirs] = result.stream.tee();
        void (async () => {
          for await (const part of mine) call.parts?.push(part);
        })();
        return { ...result, stream: theirs };
      },
    },
  };
}

const weather = tool({
  description: 'Weather',
  inputSchema: jsonSchema<{ city: string }>({ type: 'object', properties: { city: { type: 'string' } } }),
  execute: async () => 'sunny',
});

const LABELS = ['openai chat', 'openai responses', 'anthropic'] as const;

function baseModel(label: (typeof LABELS)[number]): Parameters<typeof wrapLanguageModel>[0]['model'] {
  switch (label) {
    case 'openai chat':
      return createOpenAI({ baseURL: provider.openaiBaseURL, apiKey: 'test' }).chat('gpt-test');
    case 'openai responses':
      return createOpenAI({ baseURL: provider.openaiBaseURL, apiKey: 'test' }).responses('gpt-test');
    case 'anthropic':
      return createAnthropic({ baseURL: provider.openaiBaseURL, apiKey: 'test' })('claude-test');
  }
}

/** Deep equality that, like JSON, does not tell a missing key from one set to undefined. */
function assertSameData(actual: unknown, expected: unknown, message?: string) {
  const strip = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(strip);
    if (value instanceof Date || value instanceof Uint8Array || value === null || typeof value !== 'object')
      return value;
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, item]) => item !== undefined)
        .map(([key, item]) => [key, strip(item)]),
    );
  };
  assert.deepStrictEqual(strip(actual), strip(expected), message);
}

describe('ai-sdk normalizers', () => {
  for (const label of LABELS) {
    it(`${label}: call options, generate result and stream parts of a tool loop`, async () => {
      const { calls, middleware } = probe();
      const model = wrapLanguageModel({ model: baseModel(label), middleware });
      provider.reset();
      await generateText({
        model,
        system: 'Be brief.',
        prompt: 'weather?',
        tools: { get_weather: weather },
        stopWhen: stepCountIs(2),
        temperature: 0.2,
        maxOutputTokens: 64,
        maxRetries: 0,
      });
      provider.reset();
      const streamed = streamText({
        model,
        system: 'Be brief.',
        prompt: 'weather?',
        tools: { get_weather: weather },
        maxOutputTokens: 64,
        maxRetries: 0,
      });
      await streamed.consumeStream();
      await new Promise((resolve) => setTimeout(resolve, 10));
      const [first, second, stream] = calls as [
        Probe['calls'][number],
        Probe['calls'][number],
        Probe['calls'][number],
      ];

      const request = normalizeCallOptions(first.params, first.model, false);
      assert.deepEqual(validateRequestPayload('model', request), []);
      assert.equal(request.provider, label.startsWith('openai') ? 'openai' : 'anthropic');
      assert.deepEqual(request.messages, [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'weather?' },
      ]);
      assert.deepEqual(request.params.temperature, 0.2);
      assert.deepEqual(request.params.maxTokens, 64);
      assert.deepEqual(
        request.tools?.map((t) => t.name),
        ['get_weather'],
      );
      const history = normalizeCallOptions(second.params, second.model, false).messages;
      assert.deepEqual(history.slice(2), [
        {
          role: 'assistant',
          content: 'Checking.',
          toolCalls: [
            { id: history[2]?.toolCalls?.[0]?.id ?? '', name: 'get_weather', arguments: { city: 'Paris' } },
          ],
        },
        {
          role: 'tool',
          content: 'sunny',
          toolCallId: history[2]?.toolCalls?.[0]?.id ?? '',
          name: 'get_weather',
        },
      ]);

      const whole = normalizeGenerateResult(first.result, first.model);
      assert.deepEqual(validateResponsePayload('model', whole), []);
      assert.equal(whole.finishReason, 'tool_calls');
      assert.equal(whole.message.content, 'Checking.');
      assert.deepEqual(
        whole.message.toolCalls?.map((c) => [c.name, c.arguments]),
        [['get_weather', { city: 'Paris' }]],
      );
      assert.deepEqual(whole.usage, { inputTokens: 3, outputTokens: 3, totalTokens: 6 });

      const parts = normalizeStreamParts(toJsonSafe(stream.parts) as Json[], stream.model);
      assert.deepEqual(validateResponsePayload('model', parts), []);
      assert.deepEqual({ ...parts, raw: undefined }, { ...whole, raw: undefined }, 'streamed = generated');
    });
  }

  it('rebuilds the generate result and the stream from the recorded raw', async () => {
    const { calls, middleware } = probe();
    const model = wrapLanguageModel({ model: baseModel('openai chat'), middleware });
    await generateText({ model, prompt: 'hi', maxRetries: 0 });
    const streamed = streamText({ model, prompt: 'hi', maxRetries: 0 });
    await streamed.consumeStream();
    await new Promise((resolve) => setTimeout(resolve, 10));
    const [generated, stream] = calls as [Probe['calls'][number], Probe['calls'][number]];
    const raw = normalizeGenerateResult(generated.result, generated.model).raw;
    const rebuilt = generateResultFromRecorded(raw) as { response: { timestamp: Date } };
    assert.ok(rebuilt.response.timestamp instanceof Date);
    assertSameData(rebuilt, generated.result);
    const streamRaw = normalizeStreamParts(toJsonSafe(stream.parts) as Json[], stream.model).raw;
    const replay = streamResultFromRecorded(streamRaw);
    const replayed: unknown[] = [];
    for await (const part of replay.stream as unknown as AsyncIterable<unknown>) replayed.push(part);
    assertSameData(replayed, stream.parts);
  });

  it('keeps the parsed body of an APICallError', async () => {
    const error = await generateText({ model: baseModel('openai chat'), prompt: 'bad', maxRetries: 0 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.deepEqual(aiSdkErrorBody(error), {
      error: { message: 'no good', type: 'invalid_request_error', param: null, code: null },
    });
  });
});

describe('rewindMiddleware', () => {
  it('outside a run it passes through and records nothing', async () => {
    const before = conformance.recorder.stats().produced;
    const result = await generateText({
      model: wrapModel(baseModel('openai chat')),
      prompt: 'hi',
      maxRetries: 0,
    });
    assert.equal(result.text, 'Hello there friend');
    assert.equal(conformance.recorder.stats().produced, before);
  });

  it('takes a step name, and nests under the current step', async () => {
    const model = wrapLanguageModel({
      model: baseModel('anthropic'),
      middleware: rewindMiddleware({ name: 'planner' }),
    });
    const plan = conformance.recorder.chain(
      'plan',
      async () => (await generateText({ model, prompt: 'hi', maxRetries: 0 })).text,
    );
    const { result, recorded } = await conformance.record('ai-sdk-named', plan);
    assert.equal(result, 'Hello there friend');
    assert.deepEqual(
      recorded.steps.map((step) => [step.kind, step.name, step.callKey]),
      [
        ['chain', 'plan', 'chain:plan#0'],
        ['model', 'planner', 'chain:plan#0/model:planner#0'],
      ],
    );
    assert.equal(recorded.steps[1]?.parentStepId, recorded.steps[0]?.stepId);
    assert.deepEqual(recorded.steps[1]?.attributes, {
      'rewind.adapter': 'ai-sdk',
      'rewind.api': 'anthropic.messages',
      'rewind.mode': 'generate',
    });
  });
});
