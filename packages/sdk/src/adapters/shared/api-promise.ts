// Observing the calls of Stainless-generated clients (`openai`, `@anthropic-ai/sdk`) without
// changing what they return. A resource method returns an `APIPromise`: a Promise subclass whose
// `responsePromise` resolves to the HTTP response and whose `parseResponse` turns it into the
// data (a JSON object, or a `Stream` for `stream: true`). We patch the very object the client
// returned, so the user still gets that object, with `.withResponse()`, `.asResponse()` and
// everything else intact, and the body is parsed only when the user asks:
//
// - `responsePromise` gets an observing handler: HTTP errors, connection errors and aborts all
//   reject it. The handler is attached to the client's own promise and a handled copy replaces
//   it, so no rejection the user does not consume becomes an unhandled one.
// - `parseResponse` is wrapped: the parsed data (or a parse failure) is observed there.
// - `_thenUnwrap`, through which the clients' helpers derive promises (`chat.completions.parse`,
//   `responses.stream`, …), is wrapped too: openai ≥ 7 implements it as a closure over the
//   original parser, which would otherwise bypass the patched `parseResponse`.
// - a bare `.asResponse()` (the user reads the body) is recorded from a clone of the Response.
//
// A streamed body is a `Stream`, which reads through its `iterator` field for `for await`,
// `tee()` and `toReadableStream()` alike; we replace that field on the instance with an
// observed iterator (see stream.ts), so chunks are recorded exactly when the agent gets them.
import { isRecord } from './json.ts';
import { observeIterator, type StreamHooks } from './stream.ts';

export interface ApiCallObserver {
  /** The parsed body: a JSON object, or a `Stream` when the call streams. Called at most once. */
  value(data: unknown): void;
  /** The request or the parsing failed (HTTP error, connection error, abort, bad body). */
  error(error: unknown): void;
  /** The user read the raw `Response` with `.asResponse()` and never asked for the parsed body. */
  unparsed(response: Response): void;
}

interface ApiPromiseLike extends Promise<unknown> {
  responsePromise: Promise<unknown>;
  parseResponse: (this: unknown, client: unknown, props: unknown) => unknown;
  asResponse: () => Promise<Response>;
  _thenUnwrap?: (transform: (data: unknown, props: unknown) => unknown) => unknown;
  parsedPromise?: Promise<unknown>;
}

function isApiPromiseLike(value: unknown): value is ApiPromiseLike {
  if (!(value instanceof Promise)) return false;
  const candidate = value as Partial<ApiPromiseLike>;
  return (
    candidate.responsePromise instanceof Promise &&
    typeof candidate.parseResponse === 'function' &&
    typeof candidate.asResponse === 'function'
  );
}

function define(target: object, key: string, value: unknown): void {
  Object.defineProperty(target, key, { configurable: true, writable: true, enumerable: false, value });
}

/**
 * Instruments the APIPromise a client method returned. Returns false when `promise` is not an
 * APIPromise of a known shape (then the caller observes it as a plain promise).
 */
export function instrumentApiPromise(promise: unknown, observer: ApiCallObserver): boolean {
  if (!isApiPromiseLike(promise)) return false;
  let valueSeen = false;
  const value = (data: unknown) => {
    if (valueSeen) return;
    valueSeen = true;
    observer.value(data);
  };

  const observed = promise.responsePromise.then(undefined, (error: unknown) => {
    observer.error(error);
    throw error;
  });
  // Our copy is handled; a consumer chaining on it still gets the rejection.
  observed.catch(() => undefined);
  promise.responsePromise = observed;

  const parse = promise.parseResponse;
  promise.parseResponse = async function parseResponse(this: unknown, client: unknown, props: unknown) {
    let data: unknown;
    try {
      data = await parse.call(this, client, props);
    } catch (error) {
      observer.error(error);
      throw error;
    }
    value(data);
    return data;
  };

  const thenUnwrap = promise._thenUnwrap;
  if (typeof thenUnwrap === 'function') {
    define(
      promise,
      '_thenUnwrap',
      function thenUnwrapObserved(this: unknown, transform: (d: unknown, p: unknown) => unknown) {
        return thenUnwrap.call(this, (data: unknown, props: unknown) => {
          value(data);
          return transform(data, props);
        });
      },
    );
  }

  const asResponse = promise.asResponse;
  define(promise, 'asResponse', function asResponseObserved(this: ApiPromiseLike) {
    const result = asResponse.call(this);
    if (this.parsedPromise === undefined) {
      // `.withResponse()` parses first, so only a bare `.asResponse()` gets here. Our handler
      // is attached before the user's, so it sees the Response before its body is read.
      result.then(
        (response) => {
          if (this.parsedPromise === undefined && !valueSeen) observer.unparsed(response);
        },
        () => undefined,
      );
    }
    return result;
  });
  return true;
}

/** A Stainless `Stream`: iterated through its `iterator` field; `controller` aborts the request. */
export interface StainlessStream {
  iterator: (...args: unknown[]) => AsyncIterator<unknown>;
  controller?: AbortController;
}

export function isStainlessStream(value: unknown): value is StainlessStream {
  return isRecord(value) && typeof value.iterator === 'function';
}

const instrumented = new WeakSet<object>();

/** Observes the first iteration of `stream` (later ones are the client's "already consumed" errors). */
export function instrumentStream(stream: StainlessStream, hooks: () => StreamHooks<unknown>): void {
  if (instrumented.has(stream)) return;
  instrumented.add(stream);
  const original = stream.iterator;
  let observed = false;
  stream.iterator = function iterator(this: unknown, ...args: unknown[]) {
    const inner = original.apply(this, args);
    if (observed) return inner;
    observed = true;
    return observeIterator(inner, hooks());
  };
}
