// Replay for adapters (docs/replay.md): a call the replay answers from the recording never
// reaches the provider. The adapter builds what the client would have returned from the recorded
// raw response (`…FromRecorded`), finishes the step as the recorded one finished, and hands it
// back — as a promise with the Stainless APIPromise's helpers (`withResponse`, `asResponse`,
// `_thenUnwrap`) so that client helpers built on them (`messages.stream()`, `.parse()`) work.
import type { ActiveStep, ReplayDirective, ServedOutcome } from '../../capture-api.ts';
import { setPointer } from '../../replay/pointer.ts';
import { isRecord } from './json.ts';

export type ServeDirective = Exclude<ReplayDirective, { action: 'edit' }>;

/** The recorded raw response (what the provider sent); the normalized response when there is none. */
export function rawOf(response: unknown): unknown {
  return isRecord(response) && response.raw !== undefined ? response.raw : response;
}

/**
 * Settles a served call: waits until it is due, finishes (or fails) the step, and resolves with
 * `rebuild(raw)` (or rejects with `rebuildError(outcome)`).
 */
export function settleServed(
  step: ActiveStep,
  directive: ServeDirective,
  rebuild: (raw: unknown) => unknown,
  rebuildError: (outcome: ServedOutcome) => unknown,
): Promise<unknown> {
  if (directive.action === 'throw') {
    const error = directive.error;
    return (directive.ready ?? Promise.resolve()).then(() => {
      step.fail(error);
      throw error;
    });
  }
  const outcome = directive.outcome;
  return directive.due().then(() => {
    if (outcome.status === 'ok') {
      step.finish(outcome.response, { usage: outcome.usage, stream: outcome.stream });
      return rebuild(rawOf(outcome.response));
    }
    const error = rebuildError(outcome);
    step.fail(error, outcome.response === undefined ? undefined : { response: outcome.response });
    throw error;
  });
}

type Served = Promise<unknown> & {
  withResponse(): Promise<{ data: unknown; response: Response; request_id: string | null }>;
  asResponse(): Promise<Response>;
  _thenUnwrap(transform: (data: unknown, props: unknown) => unknown): Served;
};

/** A promise shaped like a Stainless APIPromise around a served value. */
export function apiPromiseLike(value: Promise<unknown>): Served {
  const served = value as Served;
  const response = () => new Response(null, { status: 200, headers: { 'x-rewind-replayed': '1' } });
  Object.defineProperties(served, {
    withResponse: {
      value: () => value.then((data) => ({ data, response: response(), request_id: null })),
    },
    asResponse: { value: () => value.then(response) },
    _thenUnwrap: {
      value: (transform: (data: unknown, props: unknown) => unknown) =>
        apiPromiseLike(value.then((data) => transform(data, { response: response() }))),
    },
  });
  return served;
}

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/**
 * A fork's request sets (pointers into the normalized request) applied to the provider's request
 * body: `/raw/…` addresses the body itself, `/params/maxTokens` its `max_tokens`, and any other
 * pointer (`/model`, `/messages/0/content`) the same path in the body.
 */
export function editBody(body: unknown, sets: readonly { pointer: string; value: unknown }[]): unknown {
  let edited = body;
  for (const { pointer, value } of sets) {
    let target = pointer;
    if (pointer.startsWith('/raw/')) target = pointer.slice(4);
    else if (pointer.startsWith('/params/')) {
      const [name, ...rest] = pointer.slice(8).split('/');
      target = `/${[snake(name ?? ''), ...rest].join('/')}`;
    }
    edited = setPointer(edited, target, value);
  }
  return edited;
}

interface StainlessErrorClass {
  generate(
    status: number | undefined,
    body: object | undefined,
    message: string | undefined,
    headers: Headers | undefined,
  ): Error;
}

/**
 * A Stainless client's own error for a recorded one: `APIError.generate` picks the class by status
 * (RateLimitError for 429, …), as the client does; the recorded message is kept exactly. When the
 * class it picks is not the recorded one, an Error named as recorded stands in.
 */
export function stainlessErrorFromRecorded(
  APIError: StainlessErrorClass,
  info: { type: string; message: string; status?: number },
  body: unknown,
): Error {
  let error: Error;
  try {
    error = APIError.generate(
      info.status,
      isRecord(body) ? body : undefined,
      info.message,
      info.status === undefined ? undefined : new Headers(),
    );
  } catch {
    error = new Error(info.message);
  }
  if (error.constructor.name !== info.type && error.name !== info.type) {
    error = new Error(info.message);
    Object.defineProperty(error, 'name', { value: info.type, configurable: true, writable: true });
    if (info.status !== undefined) (error as Error & { status?: number }).status = info.status;
  }
  if (error.message !== info.message)
    Object.defineProperty(error, 'message', { value: info.message, configurable: true, writable: true });
  return error;
}
