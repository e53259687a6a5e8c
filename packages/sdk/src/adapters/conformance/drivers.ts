// One driver per adapter (and per API an adapter covers): the same small agent scenarios
// written in each client library's own idiom, run either through the adapter (`wrapped`) or
// through the bare client, so the suite can check that the agent saw exactly the same thing.
// Everything talks to the scripted provider over real HTTP through the real client packages.

import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import Anthropic from '@anthropic-ai/sdk';
import { ChatAnthropic } from '@langchain/anthropic';
import { BaseCallbackHandler } from '@langchain/core/callbacks/base';
import { type BaseMessage, HumanMessage } from '@langchain/core/messages';
import { tool as langchainTool, type StructuredToolInterface } from '@langchain/core/tools';
import { ChatOpenAI } from '@langchain/openai';
import type { ScriptedProvider } from '@rewind/testkit';
import { tool as aiTool, generateText, jsonSchema, type LanguageModel, stepCountIs, streamText } from 'ai';
import OpenAI from 'openai';
import { wrapModel } from '../ai-sdk.ts';
import { anthropicFromRecorded, wrapAnthropic } from '../anthropic.ts';
import { chatResultFromRecorded, chunksFromRecorded, wrapChatModel, wrapTool } from '../langchain.ts';
import { openaiFromRecorded, wrapOpenAI } from '../openai.ts';
import { errorType, isRecord, type Json } from '../shared/json.ts';
import { httpStatusOf } from '../shared/step.ts';

export type ToolFn = (args: { city: string }) => Promise<string>;

export interface StreamOptions {
  /** Abort the call (through its signal, or `MessageStream.abort()`) once this many chunks were seen. */
  abortAfter?: number;
  /** Offer the get_weather tool. */
  tools?: boolean;
}

export interface StreamObservation {
  chunks: Json[];
  final?: Json;
  error?: Json;
}

/** One agent's view of the model through one client library. */
export interface Session {
  /** One call with a user prompt; resolves to what the agent got (as JSON), rejects like the client. */
  call(prompt: string, signal?: AbortSignal): Promise<Json>;
  /** Call with the get_weather tool, run the tool calls through `runTool`, call again. */
  toolLoop(prompt: string): Promise<Json>;
  /** Stream a reply: the chunks the agent iterated, and how the stream ended. */
  stream(prompt: string, options?: StreamOptions): Promise<StreamObservation>;
}

export interface Driver {
  id: string;
  adapter: 'openai' | 'anthropic' | 'ai-sdk' | 'langchain';
  /** The step name the adapter records. */
  stepName: string;
  /** The normalized request's `provider` and `model`. */
  provider: string;
  model: string;
  /** The recorded `raw.chunks` are exactly the chunks the agent iterated (Stainless streams). */
  rawChunksAreObserved: boolean;
  /** The adapter records tool runs itself (LangChain); otherwise the agent wraps its tool with `recorder.tool`. */
  recordsTools: boolean;
  /**
   * Output tokens the framework reports for the streamed plain reply (3 on the wire). The
   * adapter records what the framework reports; see the LangChain Anthropic driver.
   */
  streamedOutputTokens?: number;
  session(provider: ScriptedProvider, wrapped: boolean, runTool: ToolFn): Session;
  /** A non-streamed response's `raw` → what the client returned to the agent (the adapter's `fromRecorded`). */
  rebuild?(raw: unknown): Json;
  /** A streamed response's `raw` → the chunks the agent iterated. */
  rebuildChunks?(raw: unknown): Promise<Json[]>;
}

const TOOL_DESCRIPTION = 'The current weather in a city';
const TOOL_SCHEMA: {
  type: 'object';
  properties: { city: { type: 'string' } };
  required: string[];
  additionalProperties: false;
} = {
  type: 'object',
  properties: { city: { type: 'string' } },
  required: ['city'],
  additionalProperties: false,
};
const MAX_TOKENS = 256;

/**
 * What the agent saw, as comparable JSON: toJSON honoured, and what differs from one call to the
 * next whatever the adapter: headers (they carry a Date), timestamps (the AI SDK stamps
 * Anthropic responses with the current time), the AI SDK's measured `performance`, and
 * LangChain's `run-<runId>` message ids (run ids are fresh UUIDv7s).
 */
export function snapshot(value: unknown): Json {
  const json = JSON.stringify(value, (key, item: unknown) => {
    if (/headers$/i.test(key) || key === 'performance' || key === 'timestamp') return undefined;
    if (key === 'id' && typeof item === 'string' && item.startsWith('run-')) return 'run-*';
    return item;
  });
  return json === undefined ? null : (JSON.parse(json) as Json);
}

export function describeError(error: unknown): Json {
  return {
    name: errorType(error),
    status: httpStatusOf(error) ?? null,
    message: isRecord(error) ? String(error.message) : String(error),
  };
}

async function collect(iterable: AsyncIterable<unknown>): Promise<Json[]> {
  const out: Json[] = [];
  for await (const item of iterable) out.push(snapshot(item));
  return out;
}

async function iterate(
  iterable: AsyncIterable<unknown>,
  abortAfter: number | undefined,
  abort: () => void,
  chunks: Json[],
): Promise<void> {
  for await (const chunk of iterable) {
    chunks.push(snapshot(chunk));
    if (chunks.length === abortAfter) abort();
  }
}

// -- openai ----------------------------------------------------------------------------------

function openaiClient(provider: ScriptedProvider, wrapped: boolean): OpenAI {
  const client = new OpenAI({ baseURL: provider.openaiBaseURL, apiKey: 'test', maxRetries: 0 });
  return wrapped ? wrapOpenAI(client) : client;
}

export const openaiChatDriver: Driver = {
  id: 'openai chat.completions',
  adapter: 'openai',
  stepName: 'openai.chat.completions',
  provider: 'openai',
  model: 'gpt-test',
  rawChunksAreObserved: true,
  recordsTools: false,
  session(provider, wrapped, runTool) {
    const client = openaiClient(provider, wrapped);
    const tools: OpenAI.Chat.ChatCompletionTool[] = [
      {
        type: 'function',
        function: { name: 'get_weather', description: TOOL_DESCRIPTION, parameters: TOOL_SCHEMA },
      },
    ];
    return {
      async call(prompt, signal) {
        const completion = await client.chat.completions.create(
          { model: 'gpt-test', messages: [{ role: 'user', content: prompt }] },
          { signal },
        );
        return snapshot(completion);
      },
      async toolLoop(prompt) {
        const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: 'user', content: prompt }];
        const first = await client.chat.completions.create({ model: 'gpt-test', messages, tools });
        const message = first.choices[0]!.message;
        messages.push(message);
        for (const call of message.tool_calls ?? []) {
          if (call.type !== 'function') continue;
          const output = await runTool(JSON.parse(call.function.arguments) as { city: string });
          messages.push({ role: 'tool', tool_call_id: call.id, content: output });
        }
        const second = await client.chat.completions.create({ model: 'gpt-test', messages, tools });
        return snapshot({ first, second });
      },
      async stream(prompt, options = {}) {
        const controller = new AbortController();
        const chunks: Json[] = [];
        try {
          const stream = await client.chat.completions.create(
            {
              model: 'gpt-test',
              messages: [{ role: 'user', content: prompt }],
              stream: true,
              stream_options: { include_usage: true },
              ...(options.tools === true ? { tools } : {}),
            },
            { signal: controller.signal },
          );
          await iterate(stream, options.abortAfter, () => controller.abort(), chunks);
          return { chunks };
        } catch (error) {
          return { chunks, error: describeError(error) };
        }
      },
    };
  },
  rebuild: (raw) => snapshot(openaiFromRecorded('chat.completions', raw)),
  rebuildChunks: (raw) => collect(openaiFromRecorded('chat.completions', raw) as AsyncIterable<unknown>),
};

export const openaiResponsesDriver: Driver = {
  id: 'openai responses',
  adapter: 'openai',
  stepName: 'openai.responses',
  provider: 'openai',
  model: 'gpt-test',
  rawChunksAreObserved: true,
  recordsTools: false,
  session(provider, wrapped, runTool) {
    const client = openaiClient(provider, wrapped);
    const tools: OpenAI.Responses.Tool[] = [
      {
        type: 'function',
        name: 'get_weather',
        description: TOOL_DESCRIPTION,
        parameters: TOOL_SCHEMA,
        strict: false,
      },
    ];
    return {
      async call(prompt, signal) {
        return snapshot(await client.responses.create({ model: 'gpt-test', input: prompt }, { signal }));
      },
      async toolLoop(prompt) {
        const input: OpenAI.Responses.ResponseInput = [{ role: 'user', content: prompt }];
        const first = await client.responses.create({ model: 'gpt-test', input, tools });
        input.push(...(first.output as OpenAI.Responses.ResponseInputItem[]));
        for (const item of first.output) {
          if (item.type !== 'function_call') continue;
          const output = await runTool(JSON.parse(item.arguments) as { city: string });
          input.push({ type: 'function_call_output', call_id: item.call_id, output });
        }
        const second = await client.responses.create({ model: 'gpt-test', input, tools });
        return snapshot({ first, second });
      },
      async stream(prompt, options = {}) {
        const controller = new AbortController();
        const chunks: Json[] = [];
        try {
          const stream = await client.responses.create(
            { model: 'gpt-test', input: prompt, stream: true, ...(options.tools === true ? { tools } : {}) },
            { signal: controller.signal },
          );
          await iterate(stream, options.abortAfter, () => controller.abort(), chunks);
          return { chunks };
        } catch (error) {
          return { chunks, error: describeError(error) };
        }
      },
    };
  },
  rebuild: (raw) => snapshot(openaiFromRecorded('responses', raw)),
  rebuildChunks: (raw) => collect(openaiFromRecorded('responses', raw) as AsyncIterable<unknown>),
};

// -- anthropic -------------------------------------------------------------------------------

function anthropicSession(
  provider: ScriptedProvider,
  wrapped: boolean,
  runTool: ToolFn,
  helper: boolean,
): Session {
  const client = new Anthropic({ baseURL: provider.anthropicBaseURL, apiKey: 'test', maxRetries: 0 });
  if (wrapped) wrapAnthropic(client);
  const tools: Anthropic.Tool[] = [
    { name: 'get_weather', description: TOOL_DESCRIPTION, input_schema: TOOL_SCHEMA },
  ];
  const base = { model: 'claude-test', max_tokens: MAX_TOKENS };
  return {
    async call(prompt, signal) {
      return snapshot(
        await client.messages.create({ ...base, messages: [{ role: 'user', content: prompt }] }, { signal }),
      );
    },
    async toolLoop(prompt) {
      const messages: Anthropic.MessageParam[] = [{ role: 'user', content: prompt }];
      const first = await client.messages.create({ ...base, messages, tools });
      messages.push({ role: 'assistant', content: first.content as Anthropic.ContentBlockParam[] });
      const results: Anthropic.ToolResultBlockParam[] = [];
      for (const block of first.content) {
        if (block.type !== 'tool_use') continue;
        results.push({
          type: 'tool_result',
          tool_use_id: block.id,
          content: await runTool(block.input as { city: string }),
        });
      }
      messages.push({ role: 'user', content: results });
      const second = await client.messages.create({ ...base, messages, tools });
      return snapshot({ first, second });
    },
    async stream(prompt, options = {}) {
      const chunks: Json[] = [];
      const body = {
        ...base,
        messages: [{ role: 'user' as const, content: prompt }],
        ...(options.tools === true ? { tools } : {}),
      };
      try {
        if (helper) {
          const stream = client.messages.stream(body);
          await iterate(stream, options.abortAfter, () => stream.abort(), chunks);
          return { chunks, final: snapshot(await stream.finalMessage()) };
        }
        const controller = new AbortController();
        const stream = await client.messages.create({ ...body, stream: true }, { signal: controller.signal });
        await iterate(stream, options.abortAfter, () => controller.abort(), chunks);
        return { chunks };
      } catch (error) {
        return { chunks, error: describeError(error) };
      }
    },
  };
}

export const anthropicStreamHelperDriver: Driver = {
  id: 'anthropic messages (messages.stream)',
  adapter: 'anthropic',
  stepName: 'anthropic.messages',
  provider: 'anthropic',
  model: 'claude-test',
  rawChunksAreObserved: true,
  recordsTools: false,
  session: (provider, wrapped, runTool) => anthropicSession(provider, wrapped, runTool, true),
  rebuild: (raw) => snapshot(anthropicFromRecorded(raw)),
  rebuildChunks: (raw) => collect(anthropicFromRecorded(raw) as AsyncIterable<unknown>),
};

export const anthropicRawStreamDriver: Driver = {
  ...anthropicStreamHelperDriver,
  id: 'anthropic messages (create stream: true)',
  session: (provider, wrapped, runTool) => anthropicSession(provider, wrapped, runTool, false),
};

// -- Vercel AI SDK ---------------------------------------------------------------------------

function aiSdkDriver(kind: 'openai' | 'anthropic'): Driver {
  return {
    id: `ai-sdk (${kind === 'openai' ? '@ai-sdk/openai chat' : '@ai-sdk/anthropic'})`,
    adapter: 'ai-sdk',
    stepName: kind === 'openai' ? 'ai-sdk.openai.chat' : 'ai-sdk.anthropic.messages',
    provider: kind,
    model: kind === 'openai' ? 'gpt-test' : 'claude-test',
    rawChunksAreObserved: false,
    recordsTools: false,
    session(provider, wrapped, runTool) {
      const base: LanguageModel =
        kind === 'openai'
          ? createOpenAI({ baseURL: provider.openaiBaseURL, apiKey: 'test' }).chat('gpt-test')
          : createAnthropic({ baseURL: provider.openaiBaseURL, apiKey: 'test' })('claude-test');
      const model = wrapped ? wrapModel(base as Parameters<typeof wrapModel>[0]) : base;
      const tools = {
        get_weather: aiTool({
          description: TOOL_DESCRIPTION,
          inputSchema: jsonSchema<{ city: string }>(TOOL_SCHEMA),
          execute: async (args: { city: string }) => runTool(args),
        }),
      };
      const common = { model, maxRetries: 0, maxOutputTokens: MAX_TOKENS };
      return {
        async call(prompt, signal) {
          const result = await generateText({
            ...common,
            prompt,
            ...(signal === undefined ? {} : { abortSignal: signal }),
          });
          return snapshot({
            text: result.text,
            content: result.content,
            finishReason: result.finishReason,
            usage: result.usage,
            response: {
              id: result.response.id,
              modelId: result.response.modelId,
              body: result.response.body,
            },
          });
        },
        async toolLoop(prompt) {
          const result = await generateText({ ...common, prompt, tools, stopWhen: stepCountIs(3) });
          return snapshot({
            text: result.text,
            steps: result.steps.map((step) => ({
              content: step.content,
              finishReason: step.finishReason,
              usage: step.usage,
            })),
          });
        },
        async stream(prompt, options = {}) {
          const controller = new AbortController();
          const chunks: Json[] = [];
          try {
            const result = streamText({
              ...common,
              prompt,
              abortSignal: controller.signal,
              ...(options.tools === true ? { tools, stopWhen: stepCountIs(1) } : {}),
              onError: () => undefined,
            });
            await iterate(result.fullStream, options.abortAfter, () => controller.abort(), chunks);
            return { chunks };
          } catch (error) {
            return { chunks, error: describeError(error) };
          }
        },
      };
    },
  };
}

export const aiSdkOpenAIDriver = aiSdkDriver('openai');
export const aiSdkAnthropicDriver = aiSdkDriver('anthropic');

// -- LangChain -------------------------------------------------------------------------------

const neutralHandler = BaseCallbackHandler.fromMethods({});

function langchainDriver(kind: 'openai' | 'anthropic'): Driver {
  return {
    id: `langchain (${kind === 'openai' ? 'ChatOpenAI' : 'ChatAnthropic'})`,
    adapter: 'langchain',
    stepName: kind === 'openai' ? 'langchain.ChatOpenAI' : 'langchain.ChatAnthropic',
    provider: kind,
    model: kind === 'openai' ? 'gpt-test' : 'claude-test',
    rawChunksAreObserved: false,
    recordsTools: true,
    session(provider, wrapped, runTool) {
      const model =
        kind === 'openai'
          ? new ChatOpenAI({
              model: 'gpt-test',
              apiKey: 'test',
              configuration: { baseURL: provider.openaiBaseURL },
              maxRetries: 0,
            })
          : new ChatAnthropic({
              model: 'claude-test',
              apiKey: 'test',
              anthropicApiUrl: provider.anthropicBaseURL,
              maxRetries: 0,
              maxTokens: MAX_TOKENS,
            });
      const weather: StructuredToolInterface = langchainTool(
        async (args: { city: string }) => runTool(args),
        {
          name: 'get_weather',
          description: TOOL_DESCRIPTION,
          schema: TOOL_SCHEMA,
        },
      );
      if (wrapped) {
        wrapChatModel(model);
        wrapTool(weather);
      }
      // LangChain itself behaves differently once any callback handler is attached (it gives
      // id-less stream chunks the id `run-<runId>`), so both sides carry a handler that does
      // nothing: the only difference left is Rewind's.
      const callbacks = [neutralHandler];
      return {
        async call(prompt, signal) {
          return snapshot(
            await model.invoke([new HumanMessage(prompt)], {
              callbacks,
              ...(signal === undefined ? {} : { signal }),
            }),
          );
        },
        async toolLoop(prompt) {
          const bound = model.bindTools([weather]);
          const messages: BaseMessage[] = [new HumanMessage(prompt)];
          const first = await bound.invoke(messages, { callbacks });
          messages.push(first);
          for (const call of first.tool_calls ?? []) {
            messages.push(
              (await weather.invoke({ ...call, type: 'tool_call' }, { callbacks })) as BaseMessage,
            );
          }
          const second = await bound.invoke(messages, { callbacks });
          return snapshot({ messages, second });
        },
        async stream(prompt, options = {}) {
          const controller = new AbortController();
          const chunks: Json[] = [];
          try {
            const input = [new HumanMessage(prompt)];
            const stream =
              options.tools === true
                ? await model.bindTools([weather]).stream(input, { signal: controller.signal, callbacks })
                : await model.stream(input, { signal: controller.signal, callbacks });
            await iterate(stream, options.abortAfter, () => controller.abort(), chunks);
            return { chunks };
          } catch (error) {
            return { chunks, error: describeError(error) };
          }
        },
      };
    },
    rebuild: (raw) => snapshot(chatResultFromRecorded(raw).generations[0]?.message ?? null),
    rebuildChunks: async (raw) => chunksFromRecorded(raw).map(snapshot),
  };
}

export const langchainOpenAIDriver = langchainDriver('openai');
export const langchainAnthropicDriver: Driver = {
  ...langchainDriver('anthropic'),
  // @langchain/anthropic 1.5 adds message_start's provisional output_tokens (1) to the final
  // count when it concatenates streamed chunks: the agent's aggregated message says 4.
  streamedOutputTokens: 4,
};

export const drivers: readonly Driver[] = [
  openaiChatDriver,
  openaiResponsesDriver,
  anthropicStreamHelperDriver,
  anthropicRawStreamDriver,
  aiSdkOpenAIDriver,
  aiSdkAnthropicDriver,
  langchainOpenAIDriver,
  langchainAnthropicDriver,
];
