// `@rewind/sdk/openai`: capture for the official `openai` client.
//
//   import OpenAI from 'openai';
//   import { wrapOpenAI } from '@rewind/sdk/openai';
//   const client = wrapOpenAI(new OpenAI());
//
// `wrapOpenAI(client)` patches the client in place and returns the same client object: its
// `chat.completions.create` and `responses.create` get own-property replacements that record a
// `model` step per call (named `openai.chat.completions` / `openai.responses`) and otherwise
// behave exactly like the originals: same `APIPromise`, same `Stream`, same errors. Helpers that
// go through those methods (`chat.completions.parse`, `.stream`, `.runTools`, `responses.parse`,
// `.stream`) are captured too, one step per HTTP call. `client.withOptions(…)` returns a wrapped
// client. Wrapping twice is a no-op.
import { APIError } from 'openai/error';
import { Stream } from 'openai/streaming';
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
  responsesEventsFromRecorded,
} from './openai-normalize.ts';
import { isRecord } from './shared/json.ts';
import { type ModelCallSpec, patchModelMethod } from './shared/model-call.ts';
import { stainlessErrorFromRecorded } from './shared/served.ts';

export {
  chatChunksFromRecorded,
  chatCompletionFromRecorded,
  normalizeChatRequest,
  normalizeChatResponse,
  normalizeChatStream,
  normalizeResponsesRequest,
  normalizeResponsesResponse,
  normalizeResponsesStream,
  responseFromRecorded,
  responsesEventsFromRecorded,
};

const WRAPPED = Symbol.for('rewind.sdk.openai.wrapped');

const ADAPTER = 'openai';
const RESPONSES_FINAL_EVENTS = new Set(['response.completed', 'response.incomplete', 'response.failed']);

export const chatCompletionsSpec: ModelCallSpec = {
  adapter: ADAPTER,
  name: 'openai.chat.completions',
  api: 'chat.completions',
  provider: 'openai',
  normalizeRequest: normalizeChatRequest,
  normalizeResponse: (data) => normalizeChatResponse(data),
  normalizeStream: normalizeChatStream,
  errorBody: openaiErrorBody,
  abortType: 'APIUserAbortError',
  fromRecorded: (raw) => openaiFromRecorded('chat.completions', raw),
  errorFromRecorded: (error, body) => stainlessErrorFromRecorded(APIError, error, body),
};

export const responsesSpec: ModelCallSpec = {
  adapter: ADAPTER,
  name: 'openai.responses',
  api: 'responses',
  provider: 'openai',
  normalizeRequest: normalizeResponsesRequest,
  normalizeResponse: (data) => normalizeResponsesResponse(data),
  normalizeStream: normalizeResponsesStream,
  errorBody: openaiErrorBody,
  abortType: 'APIUserAbortError',
  isFinal: (event) => isRecord(event) && RESPONSES_FINAL_EVENTS.has(String(event.type)),
  fromRecorded: (raw) => openaiFromRecorded('responses', raw),
  errorFromRecorded: (error, body) => stainlessErrorFromRecorded(APIError, error, body),
};

/**
 * Records every `chat.completions.create` and `responses.create` call of `client` made inside a
 * recorded run. Patches the client in place and returns it (not a proxy): `client instanceof
 * OpenAI` and every other method are unchanged.
 */
export function wrapOpenAI<T extends object>(client: T): T {
  const target = client as Record<PropertyKey, unknown>;
  if (target[WRAPPED] === true) return client;
  Object.defineProperty(target, WRAPPED, { value: true, enumerable: false });
  const chat = target.chat;
  if (isRecord(chat)) patchModelMethod(chat.completions, 'create', chatCompletionsSpec);
  patchModelMethod(target.responses, 'create', responsesSpec);
  const withOptions = target.withOptions;
  if (typeof withOptions === 'function') {
    Object.defineProperty(target, 'withOptions', {
      configurable: true,
      writable: true,
      enumerable: false,
      value: function withOptionsWrapped(this: unknown, ...args: unknown[]) {
        const derived = withOptions.apply(this, args);
        return typeof derived === 'object' && derived !== null ? wrapOpenAI(derived) : derived;
      },
    });
  }
  return client;
}

/**
 * A recorded response → what the client would have returned for that call: the parsed object,
 * or for a streamed call a `Stream` that yields the recorded chunks (with `tee()`,
 * `toReadableStream()` and `controller`, like the client's).
 */
export function openaiFromRecorded(api: 'chat.completions' | 'responses', raw: unknown): unknown {
  const streamed = isRecord(raw) && Array.isArray(raw.chunks) && !('object' in raw);
  if (api === 'chat.completions') {
    return streamed ? streamOf(chatChunksFromRecorded(raw)) : chatCompletionFromRecorded(raw);
  }
  return streamed ? streamOf(responsesEventsFromRecorded(raw)) : responseFromRecorded(raw);
}

function streamOf(items: unknown[]): Stream<unknown> {
  const controller = new AbortController();
  async function* iterator() {
    for (const item of items) {
      if (controller.signal.aborted) return;
      yield item;
    }
  }
  return new Stream(iterator, controller);
}
