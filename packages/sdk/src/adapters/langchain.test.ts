// Unit tests of the LangChain adapter: normalizers against real LangChain objects (messages from
// ChatOpenAI / ChatAnthropic talking to the scripted provider, LLMResults, Documents,
// ToolMessages), the handler's nesting by parentRunId, chains, deduplication, and the
// `fromRecorded` direction.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ChatAnthropic } from '@langchain/anthropic';
import { BaseCallbackHandler } from '@langchain/core/callbacks/base';
import { Document } from '@langchain/core/documents';
import { AIMessage, HumanMessage, SystemMessage, ToolMessage } from '@langchain/core/messages';
import { ChatPromptTemplate } from '@langchain/core/prompts';
import { BaseRetriever } from '@langchain/core/retrievers';
import { type StructuredToolInterface, tool } from '@langchain/core/tools';
import { ChatOpenAI } from '@langchain/openai';
import { validateRequestPayload, validateResponsePayload } from '@rewind/schema';
import { type ScriptedProvider, startScriptedProvider } from '@rewind/testkit';
import { ConformanceRecorder } from './conformance/harness.ts';
import {
  aiMessageFromRecorded,
  chatResultFromRecorded,
  chunksFromRecorded,
  normalizeChatModelEnd,
  normalizeChatModelStart,
  normalizeLangChainMessage,
  normalizeRetrieverEnd,
  normalizeToolEnd,
  RewindCallbackHandler,
  rewindHandler,
  wrapChatModel,
  wrapRetriever,
  wrapTool,
} from './langchain.ts';
import { chunkRecord } from './langchain-normalize.ts';
import type { Json } from './shared/json.ts';

let provider: ScriptedProvider;
let conformance: ConformanceRecorder;

before(async () => {
  provider = await startScriptedProvider({
    rules: [
      {
        when: { lastUserText: /weather/, hasToolResult: false },
        reply: { text: 'Checking.', toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] },
      },
      { reply: { text: 'Hello there friend' } },
    ],
  });
  conformance = await ConformanceRecorder.open();
});

after(async () => {
  await conformance?.close();
  await provider?.close();
});

function openaiModel(): ChatOpenAI {
  return new ChatOpenAI({
    model: 'gpt-test',
    apiKey: 'test',
    configuration: { baseURL: provider.openaiBaseURL },
    maxRetries: 0,
  });
}

/** A handler that keeps the raw callback arguments (what LangChain really passes). */
class Probe extends BaseCallbackHandler {
  name = 'probe';
  starts: {
    messages: unknown[][];
    extra: Record<string, unknown> | undefined;
    metadata: unknown;
    className: string;
  }[] = [];
  ends: unknown[] = [];
  tokens: { token: string; chunk: unknown }[] = [];
  constructor() {
    super({ _awaitHandler: true });
  }
  override handleChatModelStart(
    llm: { id: string[] },
    messages: unknown[][],
    _runId: string,
    _parent?: string,
    extra?: Record<string, unknown>,
    _tags?: string[],
    metadata?: unknown,
  ) {
    this.starts.push({ messages, extra, metadata, className: llm.id.at(-1) ?? '' });
  }
  override handleLLMEnd(output: unknown) {
    this.ends.push(output);
  }
  override handleLLMNewToken(
    token: string,
    _idx: unknown,
    _runId: string,
    _p?: string,
    _t?: string[],
    fields?: { chunk?: unknown },
  ) {
    this.tokens.push({ token, chunk: fields?.chunk });
  }
}

describe('langchain normalizers', () => {
  it('normalizes live messages and their serialized form alike', () => {
    const messages = [
      new SystemMessage('Be brief.'),
      new HumanMessage({ content: [{ type: 'text', text: 'weather?' }] }),
      new AIMessage({
        content: [
          { type: 'text', text: 'Checking.' },
          { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } },
        ],
        tool_calls: [{ id: 'toolu_1', name: 'get_weather', args: { city: 'Paris' }, type: 'tool_call' }],
      }),
      new ToolMessage({ content: 'sunny', tool_call_id: 'toolu_1', name: 'get_weather' }),
    ];
    const expected = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'weather?' },
      {
        role: 'assistant',
        content: 'Checking.',
        toolCalls: [{ id: 'toolu_1', name: 'get_weather', arguments: { city: 'Paris' } }],
      },
      { role: 'tool', content: 'sunny', toolCallId: 'toolu_1', name: 'get_weather' },
    ];
    assert.deepEqual(messages.map(normalizeLangChainMessage), expected);
    const serialized = JSON.parse(JSON.stringify(messages)) as unknown[];
    assert.deepEqual(serialized.map(normalizeLangChainMessage), expected);
  });

  for (const kind of ['openai', 'anthropic'] as const) {
    it(`normalizes what ${kind === 'openai' ? 'ChatOpenAI' : 'ChatAnthropic'} reports, whole and streamed`, async () => {
      const weather = tool(async () => 'sunny', {
        name: 'get_weather',
        description: 'Weather',
        schema: { type: 'object', properties: { city: { type: 'string' } } },
      });
      const model =
        kind === 'openai'
          ? openaiModel()
          : new ChatAnthropic({
              model: 'claude-test',
              apiKey: 'test',
              anthropicApiUrl: provider.anthropicBaseURL,
              maxRetries: 0,
            });
      const probe = new Probe();
      const bound = model.bindTools([weather]);
      provider.reset();
      const message = await bound.invoke([new HumanMessage('weather?')], {
        callbacks: [probe],
        temperature: 0.1,
      } as never);
      provider.reset();
      for await (const _chunk of await bound.stream([new HumanMessage('weather?')], { callbacks: [probe] })) {
        // drain
      }
      const start = probe.starts[0]!;
      const request = normalizeChatModelStart({
        className: start.className,
        messages: start.messages,
        invocationParams: start.extra?.invocation_params,
        metadata: start.metadata,
      });
      assert.deepEqual(validateRequestPayload('model', request), []);
      assert.equal(request.provider, kind);
      assert.equal(request.model, kind === 'openai' ? 'gpt-test' : 'claude-test');
      assert.deepEqual(request.messages, [{ role: 'user', content: 'weather?' }]);
      assert.deepEqual(
        request.tools?.map((t) => t.name),
        ['get_weather'],
      );

      const whole = normalizeChatModelEnd(probe.ends[0], request.model);
      assert.deepEqual(validateResponsePayload('model', whole), []);
      assert.equal(whole.finishReason, 'tool_calls');
      assert.equal(whole.message.content, 'Checking.');
      assert.deepEqual(
        whole.message.toolCalls?.map((c) => [c.name, c.arguments]),
        [['get_weather', { city: 'Paris' }]],
      );
      assert.equal(whole.message.toolCalls?.[0]?.id, message.tool_calls?.[0]?.id);

      const chunks = probe.tokens.map(({ token, chunk }) => chunkRecord(token, chunk));
      const streamed = normalizeChatModelEnd(probe.ends[1], request.model, { chunks: chunks as Json[] });
      assert.deepEqual(validateResponsePayload('model', streamed), []);
      assert.deepEqual(
        { ...streamed, raw: undefined, usage: undefined },
        { ...whole, raw: undefined, usage: undefined },
        'streamed = unstreamed',
      );
      // fromRecorded: the ChatResult and the streamed chunks come back as LangChain objects.
      const rebuilt = chatResultFromRecorded(whole.raw).generations[0]?.message;
      assert.ok(rebuilt instanceof AIMessage);
      assert.deepStrictEqual(JSON.parse(JSON.stringify(rebuilt)), JSON.parse(JSON.stringify(message)));
      const replayed = chunksFromRecorded(streamed.raw);
      assert.equal(replayed.length, probe.tokens.length);
      assert.deepStrictEqual(
        JSON.parse(JSON.stringify(replayed)),
        JSON.parse(JSON.stringify(probe.tokens.map(({ chunk }) => (chunk as { message: unknown }).message))),
      );
    });
  }

  it('normalizes documents and tool outputs', () => {
    assert.deepEqual(
      normalizeRetrieverEnd([
        new Document({ pageContent: 'Paris is sunny', metadata: { score: 0.9, source: 'wiki' }, id: 'd1' }),
        new Document({ pageContent: 'Lyon is rainy', metadata: {} }),
      ]),
      {
        documents: [
          { id: 'd1', content: 'Paris is sunny', score: 0.9, metadata: { score: 0.9, source: 'wiki' } },
          { id: '1', content: 'Lyon is rainy', metadata: {} },
        ],
      },
    );
    assert.deepEqual(normalizeToolEnd(new ToolMessage({ content: 'sunny', tool_call_id: 'c1' })), {
      output: 'sunny',
    });
    assert.deepEqual(normalizeToolEnd({ temperature: 21 }), { output: { temperature: 21 } });
    const message = aiMessageFromRecorded(JSON.parse(JSON.stringify(new AIMessage('hi'))));
    assert.ok(message instanceof AIMessage);
    assert.equal(message.content, 'hi');
  });
});

describe('RewindCallbackHandler', () => {
  it('nests a model run under the tool run that started it (parentRunId)', async () => {
    const model = wrapChatModel(openaiModel());
    const consult: StructuredToolInterface = wrapTool(
      tool(
        async ({ question }: { question: string }, config) => (await model.invoke(question, config)).content,
        {
          name: 'consult',
          description: 'Ask the model',
          schema: { type: 'object', properties: { question: { type: 'string' } } },
        },
      ),
    );
    const { result, recorded } = await conformance.record('langchain-nesting', async () =>
      consult.invoke({ question: 'hi' }),
    );
    assert.equal(result, 'Hello there friend');
    assert.deepEqual(
      recorded.steps.map((step) => [step.kind, step.name, step.callKey]),
      [
        ['tool', 'consult', 'tool:consult#0'],
        ['model', 'langchain.ChatOpenAI', 'tool:consult#0/model:langchain.ChatOpenAI#0'],
      ],
    );
    assert.equal(recorded.steps[1]?.parentStepId, recorded.steps[0]?.stepId);
    assert.deepEqual(recorded.steps[0]?.requestPayload, { name: 'consult', arguments: { question: 'hi' } });
    assert.deepEqual(recorded.steps[0]?.responsePayload, { output: 'Hello there friend' });
  });

  it('records chains when asked, with their children under them; retrievers too', async () => {
    const handler = new RewindCallbackHandler({ chains: true });
    class Docs extends BaseRetriever {
      override lc_namespace = ['rewind', 'test'];
      override async _getRelevantDocuments(query: string) {
        return [new Document({ pageContent: `about ${query}`, id: 'doc-1' })];
      }
    }
    const retriever = wrapRetriever(new Docs(), handler);
    const chain = ChatPromptTemplate.fromMessages([['human', '{question}']]).pipe(openaiModel());
    const { recorded } = await conformance.record('langchain-chains', async () => {
      const docs = await retriever.invoke('paris');
      return (await chain.invoke({ question: docs[0]?.pageContent ?? '' }, { callbacks: [handler] })).content;
    });
    assert.deepEqual(
      recorded.steps.map((step) => [step.kind, step.name, step.callKey]),
      [
        ['retriever', 'Docs', 'retriever:Docs#0'],
        ['chain', 'RunnableSequence', 'chain:RunnableSequence#0'],
        ['chain', 'ChatPromptTemplate', 'chain:RunnableSequence#0/chain:ChatPromptTemplate#0'],
        ['model', 'langchain.ChatOpenAI', 'chain:RunnableSequence#0/model:langchain.ChatOpenAI#0'],
      ],
    );
    assert.deepEqual(recorded.steps[0]?.requestPayload, { query: 'paris' });
    assert.deepEqual(recorded.steps[0]?.responsePayload, {
      documents: [{ id: 'doc-1', content: 'about paris', metadata: {} }],
    });
    const model = recorded.steps[3]!;
    assert.deepEqual((model.requestPayload as { messages: unknown }).messages, [
      { role: 'user', content: 'about paris' },
    ]);
  });

  it('records a run once when the handler is attached twice', async () => {
    const model = wrapChatModel(openaiModel());
    const { recorded } = await conformance.record('langchain-dedupe', async () => {
      for await (const _chunk of await model.stream('hi', { callbacks: [rewindHandler()] })) {
        // drain
      }
    });
    assert.equal(recorded.steps.length, 1);
    const step = recorded.steps[0]!;
    const raw = (step.responsePayload as { raw: { chunks: unknown[] } }).raw;
    assert.equal(raw.chunks.length, step.stream?.chunks);
    assert.equal(
      (step.responsePayload as { message: { content: string } }).message.content,
      'Hello there friend',
    );
  });

  it('is a no-op outside a run', async () => {
    const before = conformance.recorder.stats().produced;
    const message = await wrapChatModel(openaiModel()).invoke('hi');
    assert.equal(message.content, 'Hello there friend');
    assert.equal(conformance.recorder.stats().produced, before);
  });
});
