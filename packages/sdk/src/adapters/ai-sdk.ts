// `@rewind/sdk/ai-sdk`: capture for the Vercel AI SDK, as a language-model middleware.
//
//   import { wrapLanguageModel, generateText } from 'ai';
//   import { rewindMiddleware } from '@rewind/sdk/ai-sdk';
//   const model = wrapLanguageModel({ model: openai('gpt-4o'), middleware: rewindMiddleware() });
//   // or: const model = wrapModel(openai('gpt-4o'));
//
// The middleware's `wrapGenerate` / `wrapStream` record one `model` step per provider call
// (`doGenerate` / `doStream`): `generateText` / `streamText` with tools make one call per step of
// their loop, and each retry the AI SDK makes is a call of its own. Tool executions are not
// model calls; wrap them with `recorder.tool(…)` to record them. The middleware runs inside the
// caller's async context, so steps nest under the current run, step or chain.
import type { LanguageModelMiddleware } from 'ai';
import { wrapLanguageModel } from 'ai';
import type { ServedOutcome } from '../capture-api.ts';
import { errorOf as errorFromOutcome } from '../replay/serve.ts';
import {
  aiSdkErrorBody,
  generateResultFromRecorded,
  type ModelInfo,
  normalizeCallOptions,
  normalizeGenerateResult,
  normalizeStreamParts,
  streamResultFromRecorded,
} from './ai-sdk-normalize.ts';
import { isRecord, type JsonObject, toJsonSafe } from './shared/json.ts';
import { editBody, settleServed } from './shared/served.ts';
import { abortError, beginStep, failStep, guard } from './shared/step.ts';
import { observeReadableStream, StreamRecording } from './shared/stream.ts';

export {
  generateResultFromRecorded,
  normalizeCallOptions,
  normalizeGenerateResult,
  normalizeStreamParts,
  streamResultFromRecorded,
};

const ADAPTER = 'ai-sdk';

export interface RewindMiddlewareOptions {
  /** The step name; default `ai-sdk.<provider id>`, e.g. `ai-sdk.openai.chat`. */
  name?: string;
}

function modelInfo(model: unknown): ModelInfo {
  const rec = isRecord(model) ? model : {};
  return {
    provider: typeof rec.provider === 'string' ? rec.provider : 'unknown',
    modelId: typeof rec.modelId === 'string' ? rec.modelId : '',
  };
}

function errorExtras(error: unknown) {
  const body = aiSdkErrorBody(error);
  return body === undefined ? {} : { response: body };
}

/** A recorded AI SDK error, rebuilt with its type (as name), message and status code. */
function errorOf(outcome: ServedOutcome): Error {
  const error = errorFromOutcome(outcome);
  if (outcome.error?.status !== undefined)
    (error as Error & { statusCode?: number }).statusCode = outcome.error.status;
  return error;
}

/** The recording middleware. It never changes the parameters, the result or the errors. */
export function rewindMiddleware(options: RewindMiddlewareOptions = {}): LanguageModelMiddleware {
  const start = (params: unknown, model: unknown, mode: 'generate' | 'stream') => {
    const info = modelInfo(model);
    const name = options.name ?? `ai-sdk.${info.provider}`;
    return beginStep(
      ADAPTER,
      () => ({
        kind: 'model',
        name,
        request: normalizeCallOptions(params, info, mode === 'stream'),
        attributes: { 'rewind.adapter': ADAPTER, 'rewind.api': info.provider, 'rewind.mode': mode },
      }),
      () => ({
        kind: 'model',
        name,
        request: {
          provider: info.provider,
          model: info.modelId,
          messages: [],
          params: {},
          stream: mode === 'stream',
        },
      }),
    );
  };

  return {
    specificationVersion: 'v4',
    async wrapGenerate({ doGenerate, params, model }) {
      const step = start(params, model, 'generate');
      if (step === undefined) return doGenerate();
      const directive = step.replay;
      if (directive !== undefined && directive.action !== 'edit')
        return (await settleServed(step, directive, generateResultFromRecorded, errorOf)) as Awaited<
          ReturnType<typeof doGenerate>
        >;
      let result: Awaited<ReturnType<typeof doGenerate>>;
      try {
        result =
          directive?.action === 'edit'
            ? await step.run(() => model.doGenerate(editBody(params, directive.sets) as typeof params))
            : await step.run(doGenerate);
      } catch (error) {
        failStep(ADAPTER, step, error, () => errorExtras(error));
        throw error;
      }
      guard(ADAPTER, () => {
        const response = normalizeGenerateResult(result, modelInfo(model));
        step.finish(response, { usage: response.usage });
      });
      return result;
    },

    async wrapStream({ doStream, params, model }) {
      const step = start(params, model, 'stream');
      if (step === undefined) return doStream();
      const directive = step.replay;
      if (directive !== undefined && directive.action !== 'edit')
        return (await settleServed(step, directive, streamResultFromRecorded, errorOf)) as Awaited<
          ReturnType<typeof doStream>
        >;
      let result: Awaited<ReturnType<typeof doStream>>;
      try {
        result =
          directive?.action === 'edit'
            ? await step.run(() => model.doStream(editBody(params, directive.sets) as typeof params))
            : await step.run(doStream);
      } catch (error) {
        failStep(ADAPTER, step, error, () => errorExtras(error));
        throw error;
      }
      const observed = guard(ADAPTER, () => {
        const info = modelInfo(model);
        const recording = new StreamRecording(step);
        const extra: JsonObject = {};
        if (result.request !== undefined) extra.request = toJsonSafe(result.request);
        if (result.response !== undefined) extra.response = toJsonSafe(result.response);
        const partial = () => ({
          ...extra,
          chunks: [...recording.chunks],
          offsetsMs: [...recording.offsetsMs],
        });
        let streamError: unknown;
        let settled = false;
        const signal =
          isRecord(params) && params.abortSignal instanceof AbortSignal ? params.abortSignal : undefined;
        const fail = (error: unknown) => {
          settled = true;
          failStep(ADAPTER, step, error, () => ({ response: partial() }));
        };
        const aborted = () => abortError('AbortError', 'This operation was aborted');
        const complete = (more: JsonObject) => {
          settled = true;
          guard(ADAPTER, () => {
            const response = normalizeStreamParts(recording.chunks, info, { ...extra, ...more });
            step.finish(response, { usage: response.usage, stream: { offsetsMs: [...recording.offsetsMs] } });
          });
        };
        const end = () => {
          if (settled) return;
          if (streamError !== undefined) fail(streamError);
          else if (signal?.aborted) fail(aborted());
          else complete({});
        };
        const stream = observeReadableStream(result.stream, {
          chunk(part) {
            if (settled) return;
            guard(ADAPTER, () => recording.push(part));
            if (!isRecord(part)) return;
            // Providers report in-stream failures as `error` parts, not by failing the stream.
            if (part.type === 'error' && streamError === undefined) streamError = part.error ?? part;
            // `finish` is the last part by contract: the call is over even if the consumer (say,
            // `await streamText(…).text`) never reads the stream's close.
            if (part.type === 'finish') end();
          },
          done: end,
          error(error) {
            if (!settled) fail(error);
          },
          stopped() {
            if (settled) return;
            if (signal?.aborted) fail(aborted());
            else complete({ stopped: true });
          },
        });
        return { ...result, stream };
      });
      return observed ?? result;
    },
  };
}

/** `wrapLanguageModel({ model, middleware: rewindMiddleware(options) })`. */
export function wrapModel<M extends Parameters<typeof wrapLanguageModel>[0]['model']>(
  model: M,
  options: RewindMiddlewareOptions = {},
): ReturnType<typeof wrapLanguageModel> {
  return wrapLanguageModel({ model, middleware: rewindMiddleware(options) });
}
