// How adapters talk to the recorder: only through the capture contract (capture-api.ts), and
// never in a way that can throw into the agent's code. Every call into the recorder and every
// normalization runs inside `guard`, which swallows (and reports once) anything unexpected.
import { isRecording, startStep } from '../../capture.ts';
import type { ActiveStep, FailExtras, FinishExtras, StepOptions } from '../../capture-api.ts';
import { errorType, isRecord } from './json.ts';

const reported = new Set<string>();

/** Reports an adapter's internal failure once per adapter and message, as a process warning. */
export function reportAdapterError(adapter: string, error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  const key = `${adapter}:${message}`;
  if (reported.has(key)) return;
  reported.add(key);
  try {
    process.emitWarning(`Rewind ${adapter} adapter: ${message} (the call itself was not affected)`, {
      code: 'REWIND_ADAPTER',
    });
  } catch {
    // nothing left to do
  }
}

/** Runs `fn`; anything it throws is reported and swallowed. */
export function guard<T>(adapter: string, fn: () => T): T | undefined {
  try {
    return fn();
  } catch (error) {
    reportAdapterError(adapter, error);
    return undefined;
  }
}

export function recording(): boolean {
  try {
    return isRecording();
  } catch {
    return false;
  }
}

/**
 * Starts a step when a run is being recorded. `build` (which normalizes the request) only runs
 * then, and a failing `build` falls back to `fallback`, so a normalizer bug never loses the call.
 */
export function beginStep(
  adapter: string,
  build: () => StepOptions,
  fallback: () => StepOptions,
): ActiveStep | undefined {
  if (!recording()) return undefined;
  const options = guard(adapter, build) ?? guard(adapter, fallback);
  if (options === undefined) return undefined;
  return guard(adapter, () => startStep(options));
}

export function finishStep(
  adapter: string,
  step: ActiveStep,
  response: () => unknown,
  extras?: () => FinishExtras,
) {
  guard(adapter, () => step.finish(response(), extras?.()));
}

export function failStep(adapter: string, step: ActiveStep, error: unknown, extras?: () => FailExtras) {
  guard(adapter, () => {
    let more: FailExtras | undefined;
    try {
      more = extras?.();
    } catch (cause) {
      reportAdapterError(adapter, cause);
    }
    step.fail(errorForRecord(error), more);
  });
}

/** The HTTP status of a provider error, wherever its library keeps it. */
export function httpStatusOf(error: unknown): number | undefined {
  if (!isRecord(error)) return undefined;
  for (const value of [
    error.status,
    error.statusCode,
    isRecord(error.response) ? error.response.status : undefined,
  ]) {
    if (typeof value === 'number' && Number.isInteger(value) && value >= 100 && value < 600) return value;
  }
  return undefined;
}

/**
 * A view of `error` for the recorder: it inherits everything from the error (message, stack,
 * `instanceof`), with `name` set to the most specific type (the openai client leaves `name` as
 * `Error` on its subclasses) and `status` set from wherever the library keeps the HTTP status
 * (`statusCode` for the AI SDK, `response.status` elsewhere). The user's error is not touched.
 */
export function errorForRecord(error: unknown): unknown {
  if (typeof error !== 'object' || error === null) return error;
  const type = errorType(error);
  const status = httpStatusOf(error);
  const ownStatus = (error as { status?: unknown }).status;
  if ((error as { name?: unknown }).name === type && (status === undefined || ownStatus === status))
    return error;
  const extra: PropertyDescriptorMap = { name: { value: type, enumerable: false, configurable: true } };
  if (status !== undefined) extra.status = { value: status, enumerable: true, configurable: true };
  return Object.create(error, extra);
}

/** An error standing for a call the user aborted (a stream that ended because its signal fired). */
export function abortError(type: string, message = 'Request was aborted.'): Error {
  const error = new Error(message);
  error.name = type;
  return error;
}

/** True for the errors libraries throw when the user's AbortSignal fires. */
export function isAbortError(error: unknown): boolean {
  if (!isRecord(error)) return false;
  const name = errorType(error);
  return name === 'AbortError' || name === 'APIUserAbortError' || name === 'ModelAbortError';
}
