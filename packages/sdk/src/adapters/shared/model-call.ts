// One model call of a Stainless client (openai, anthropic) as one step: started when the method
// is called, finished when the parsed body (or the last streamed chunk) reaches the agent,
// failed when the client throws. Shared by the openai and anthropic adapters.
import type { ModelRequest, ModelResponse } from '@rewind/schema';
import type { ActiveStep } from '../../capture-api.ts';
import {
  instrumentApiPromise,
  instrumentStream,
  isStainlessStream,
  type StainlessStream,
} from './api-promise.ts';
import { isRecord, type Json, type JsonObject, toJsonSafe } from './json.ts';
import { apiPromiseLike, editBody, settleServed } from './served.ts';
import { abortError, beginStep, failStep, guard } from './step.ts';
import { type StreamHooks, StreamRecording } from './stream.ts';

export interface ModelCallSpec {
  /** Adapter name, for warnings and the `rewind.adapter` attribute. */
  adapter: string;
  /** The step name, e.g. `openai.chat.completions`. */
  name: string;
  /** The API, for the `rewind.api` attribute, e.g. `chat.completions`. */
  api: string;
  provider: string;
  normalizeRequest(body: unknown): ModelRequest;
  normalizeResponse(data: unknown): ModelResponse;
  normalizeStream(chunks: readonly Json[], extra: JsonObject): ModelResponse;
  /** The error body an `APIError` carries, as the API sent it. */
  errorBody(error: unknown): Json | undefined;
  /** The error type recorded for a stream that ended because the user aborted it. */
  abortType: string;
  /**
   * True for the API's last event (Responses `response.completed`, Anthropic `message_stop`): the
   * call is complete there, even if the consumer (a helper that resolves on that event) never
   * reads the end of the stream.
   */
  isFinal?(chunk: unknown): boolean;
  /** Replay: what the client returns for a recorded raw response (parsed object, or a Stream). */
  fromRecorded(raw: unknown): unknown;
  /** Replay: the client's own error for a recorded error (same class and message). */
  errorFromRecorded(error: { type: string; message: string; status?: number }, body: unknown): unknown;
}

function fallbackRequest(spec: ModelCallSpec, body: unknown): ModelRequest {
  const model = isRecord(body) && typeof body.model === 'string' ? body.model : '';
  return { provider: spec.provider, model, messages: [], params: {}, raw: toJsonSafe(body) };
}

/**
 * Replaces `resource[method]` (an own property shadowing the prototype's) with a recording
 * version. Outside a recorded run the original is called straight through.
 */
export function patchModelMethod(resource: unknown, method: string, spec: ModelCallSpec): void {
  if (!isRecord(resource)) return;
  const original = resource[method];
  if (typeof original !== 'function') return;
  const patched = function (this: unknown, body: unknown, ...rest: unknown[]) {
    const step = beginStep(
      spec.adapter,
      () => ({
        kind: 'model',
        name: spec.name,
        request: spec.normalizeRequest(body),
        attributes: { 'rewind.adapter': spec.adapter, 'rewind.api': spec.api },
      }),
      () => ({ kind: 'model', name: spec.name, request: fallbackRequest(spec, body) }),
    );
    if (step === undefined) return original.call(this, body, ...rest);
    const directive = step.replay;
    if (directive !== undefined && directive.action !== 'edit')
      return apiPromiseLike(
        settleServed(step, directive, spec.fromRecorded, (outcome) =>
          spec.errorFromRecorded(outcome.error ?? { type: 'Error', message: '' }, outcome.response),
        ),
      );
    if (directive?.action === 'edit') body = editBody(body, directive.sets);
    let result: unknown;
    try {
      // In the step's context: the client's own clock and random reads belong to the call, not the tape.
      result = step.run(() => original.call(this, body, ...rest));
    } catch (error) {
      failStep(spec.adapter, step, error);
      throw error;
    }
    guard(spec.adapter, () => observeModelCall(step, result, isRecord(body) && body.stream === true, spec));
    return result;
  };
  Object.defineProperty(patched, 'name', { value: method });
  Object.defineProperty(resource, method, {
    value: patched,
    writable: true,
    configurable: true,
    enumerable: false,
  });
}

export function observeModelCall(
  step: ActiveStep,
  result: unknown,
  streaming: boolean,
  spec: ModelCallSpec,
): void {
  const finishWhole = (data: unknown) =>
    guard(spec.adapter, () => {
      const response = spec.normalizeResponse(data);
      step.finish(response, { usage: response.usage });
    });
  const fail = (error: unknown) =>
    failStep(spec.adapter, step, error, () => {
      const body = spec.errorBody(error);
      return body === undefined ? {} : { response: body };
    });
  const observer = {
    value(data: unknown) {
      if (streaming && isStainlessStream(data)) instrumentStream(data, () => streamHooks(step, data, spec));
      else finishWhole(data);
    },
    error: fail,
    unparsed(response: Response) {
      if (streaming) {
        // The agent reads the raw SSE body itself; we do not read it a second time.
        guard(spec.adapter, () =>
          step.finish(
            {
              model: '',
              message: { role: 'assistant', content: null },
              finishReason: 'incomplete',
              usage: {},
              raw: { chunks: [], unparsed: true },
            },
            {},
          ),
        );
        return;
      }
      guard(spec.adapter, () => response.clone().json().then(finishWhole, fail));
    },
  };
  if (instrumentApiPromise(result, observer)) return;
  // Not an APIPromise (an unknown client version): observe it as a plain promise.
  if (result instanceof Promise) result.then(observer.value, fail);
  else observer.value(result);
}

function streamHooks(step: ActiveStep, stream: StainlessStream, spec: ModelCallSpec): StreamHooks<unknown> {
  const recording = new StreamRecording(step);
  // Set once the step is finished or failed; later hooks (the stream's end after its final
  // event) change nothing.
  let settled = false;
  const aborted = () => stream.controller?.signal?.aborted === true;
  const partial = (): JsonObject => ({ chunks: [...recording.chunks], offsetsMs: [...recording.offsetsMs] });
  const complete = (extra: JsonObject) => {
    settled = true;
    guard(spec.adapter, () => {
      const response = spec.normalizeStream(recording.chunks, extra);
      step.finish(response, { usage: response.usage, stream: { offsetsMs: [...recording.offsetsMs] } });
    });
  };
  const fail = (error: unknown, response: () => JsonObject) => {
    settled = true;
    failStep(spec.adapter, step, error, () => ({ response: response() }));
  };
  const failAborted = () => fail(abortError(spec.abortType), partial);
  return {
    chunk(value) {
      if (settled) return;
      guard(spec.adapter, () => recording.push(value));
      if (spec.isFinal !== undefined && guard(spec.adapter, () => spec.isFinal?.(value)) === true)
        complete({});
    },
    done() {
      if (settled) return;
      // A raw stream whose signal fired ends silently; the call was aborted all the same.
      if (aborted()) failAborted();
      else complete({});
    },
    error(error) {
      if (settled) return;
      fail(error, () => {
        const body = spec.errorBody(error);
        const response = partial();
        if (body !== undefined) response.error = body;
        return response;
      });
    },
    stopped() {
      if (settled) return;
      // The agent stopped reading (break, return, cancel): it got a partial answer, not an error.
      if (aborted()) failAborted();
      else complete({ stopped: true });
    },
  };
}
