// `@rewind/sdk/anthropic`: capture for `@anthropic-ai/sdk`.
//
//   import Anthropic from '@anthropic-ai/sdk';
//   import { wrapAnthropic } from '@rewind/sdk/anthropic';
//   const client = wrapAnthropic(new Anthropic());
//
// `wrapAnthropic(client)` patches the client in place and returns the same client object: its
// `messages.create` gets an own-property replacement that records one `model` step per call
// (named `anthropic.messages`). `messages.stream(…)` builds its `MessageStream` on top of
// `messages.create({stream: true})`, so it is captured through the same path: the agent still
// gets the client's own `MessageStream` (events, `finalMessage()`, `abort()`), and the raw
// events it consumed are recorded with their timing. `messages.parse` goes through `create` too.
// `client.withOptions(…)` returns a wrapped client. Wrapping twice is a no-op.
import { APIError } from '@anthropic-ai/sdk/error';
import { Stream } from '@anthropic-ai/sdk/streaming';
import {
  accumulateMessage,
  anthropicErrorBody,
  messageEventsFromRecorded,
  messageFromRecorded,
  normalizeMessage,
  normalizeMessagesRequest,
  normalizeMessagesStream,
} from './anthropic-normalize.ts';
import { isRecord } from './shared/json.ts';
import { type ModelCallSpec, patchModelMethod } from './shared/model-call.ts';
import { stainlessErrorFromRecorded } from './shared/served.ts';

export {
  accumulateMessage,
  messageEventsFromRecorded,
  messageFromRecorded,
  normalizeMessage,
  normalizeMessagesRequest,
  normalizeMessagesStream,
};

const WRAPPED = Symbol.for('rewind.sdk.anthropic.wrapped');

export const messagesSpec: ModelCallSpec = {
  adapter: 'anthropic',
  name: 'anthropic.messages',
  api: 'messages',
  provider: 'anthropic',
  normalizeRequest: normalizeMessagesRequest,
  normalizeResponse: (data) => normalizeMessage(data),
  normalizeStream: normalizeMessagesStream,
  errorBody: anthropicErrorBody,
  abortType: 'APIUserAbortError',
  isFinal: (event) => isRecord(event) && event.type === 'message_stop',
  fromRecorded: (raw) => anthropicFromRecorded(raw),
  errorFromRecorded: (error, body) => stainlessErrorFromRecorded(APIError, error, body),
};

/**
 * Records every `messages.create` / `messages.stream` call of `client` made inside a recorded
 * run. Patches the client in place and returns it (not a proxy).
 */
export function wrapAnthropic<T extends object>(client: T): T {
  const target = client as Record<PropertyKey, unknown>;
  if (target[WRAPPED] === true) return client;
  Object.defineProperty(target, WRAPPED, { value: true, enumerable: false });
  patchModelMethod(target.messages, 'create', messagesSpec);
  const withOptions = target.withOptions;
  if (typeof withOptions === 'function') {
    Object.defineProperty(target, 'withOptions', {
      configurable: true,
      writable: true,
      enumerable: false,
      value: function withOptionsWrapped(this: unknown, ...args: unknown[]) {
        const derived = withOptions.apply(this, args);
        return typeof derived === 'object' && derived !== null ? wrapAnthropic(derived) : derived;
      },
    });
  }
  return client;
}

/**
 * A recorded response → what `messages.create()` would have returned: the `message` object, or
 * for a streamed call a `Stream` of the recorded events (which `MessageStream.fromReadableStream
 * (stream.toReadableStream())` turns into a `MessageStream`).
 */
export function anthropicFromRecorded(raw: unknown): unknown {
  const streamed = isRecord(raw) && Array.isArray(raw.chunks) && raw.type !== 'message';
  if (!streamed) return messageFromRecorded(raw);
  const events = messageEventsFromRecorded(raw);
  const controller = new AbortController();
  async function* iterator() {
    for (const event of events) {
      if (controller.signal.aborted) return;
      yield event;
    }
  }
  return new Stream(iterator, controller);
}
