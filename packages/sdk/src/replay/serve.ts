import type { StepKind } from '@rewind/schema';
import { isPlainObject as isRecord } from '@rewind/schema';
import type { ActiveStep, ReplayDirective, ServedOutcome } from '../capture-api.ts';

// Answering a call from a replay directive: the value handed to the agent, rebuilt from the
// recorded (normalized) response, and the error rebuilt from the recorded one.

/** A fresh copy, so the agent mutating what it was served never changes the recording. */
export function copy<T>(value: T): T {
  return value === undefined || value === null || typeof value !== 'object' ? value : structuredClone(value);
}

/** What the wrapped function returned, from its normalized response (normalize.ts in reverse). */
export function servedValue(kind: StepKind, response: unknown): unknown {
  if (!isRecord(response)) return response;
  const raw = isRecord(response.raw) ? response.raw : undefined;
  switch (kind) {
    case 'tool':
    case 'chain':
      return copy(response.output);
    case 'retriever':
      return copy(raw !== undefined && 'output' in raw ? raw.output : response.documents);
    case 'model': {
      if (raw !== undefined && 'output' in raw) return copy(raw.output);
      const message = isRecord(response.message) ? response.message : undefined;
      return copy(message?.content ?? null);
    }
  }
}

/** The recorded error as an Error with the recorded type (as its name), message and status. */
export function errorOf(outcome: ServedOutcome): Error {
  const info = outcome.error ?? { type: 'Error', message: '' };
  const error = new Error(info.message);
  if (info.type !== 'Error')
    Object.defineProperty(error, 'name', { value: info.type, configurable: true, writable: true });
  if (info.status !== undefined) (error as Error & { status?: number }).status = info.status;
  return error;
}

function isAsyncFunction(fn: unknown): boolean {
  const name = (fn as { constructor?: { name?: unknown } } | null)?.constructor?.name;
  return name === 'AsyncFunction' || name === 'AsyncGeneratorFunction';
}

/**
 * Answers a generic wrapper's call (recorder.tool/model/retriever/chain) from a serve or throw
 * directive, finishing the step as the recorded one finished. Returns a promise when the
 * wrapped function is async or the recorded call was (other steps ran while it did).
 */
export function serveCall(
  step: ActiveStep,
  directive: Exclude<ReplayDirective, { action: 'edit' }>,
  kind: StepKind,
  fn: unknown,
): unknown {
  if (directive.action === 'throw') {
    const error = directive.error;
    if (isAsyncFunction(fn) && directive.ready !== undefined)
      return directive.ready.then(() => {
        step.fail(error);
        throw error;
      });
    step.fail(error);
    if (isAsyncFunction(fn)) return Promise.reject(error);
    throw error;
  }
  const outcome = directive.outcome;
  const complete = (): unknown => {
    if (outcome.status === 'ok') {
      step.finish(outcome.response, { usage: outcome.usage, stream: outcome.stream });
      return servedValue(kind, outcome.response);
    }
    const error = errorOf(outcome);
    step.fail(error, outcome.response === undefined ? undefined : { response: outcome.response });
    throw error;
  };
  const due = directive.due();
  if (directive.async || isAsyncFunction(fn)) return due.then(complete);
  return complete();
}

/** The arguments for a call whose request a fork edited (generic wrappers). */
export function editedArguments(kind: StepKind, request: unknown, args: readonly unknown[]): unknown[] {
  if (!isRecord(request)) return [...args];
  const spread = (value: unknown): unknown[] =>
    args.length > 1 && Array.isArray(value) ? value : args.length === 0 && value === null ? [] : [value];
  switch (kind) {
    case 'tool':
      return spread(request.arguments);
    case 'chain':
      return spread(request.input);
    case 'retriever':
      return typeof args[0] === 'string'
        ? [request.query, ...args.slice(1)]
        : [{ ...(args[0] as object), query: request.query }, ...args.slice(1)];
    case 'model': {
      const raw = isRecord(request.raw) ? request.raw : undefined;
      if (raw !== undefined && 'arguments' in raw) return spread(raw.arguments);
      if (typeof args[0] === 'string' && Array.isArray(request.messages)) {
        const last = request.messages[request.messages.length - 1] as { content?: unknown } | undefined;
        return [typeof last?.content === 'string' ? last.content : args[0], ...args.slice(1)];
      }
      return [...args];
    }
  }
}
