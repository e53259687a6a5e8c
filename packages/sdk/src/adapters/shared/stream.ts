// Observing a stream without consuming it twice and without changing its timing: the observer
// sits between the consumer and the source and sees each chunk exactly when the consumer pulls
// it. Nothing is read ahead and nothing is buffered, so an agent that reads slowly, stops early
// or never reads sees the same behaviour as without Rewind.
import type { ActiveStep } from '../../capture-api.ts';
import { type Json, toJsonSafe } from './json.ts';

export interface StreamHooks<T> {
  /** A chunk reached the consumer. */
  chunk(value: T): void;
  /** The source ended normally. */
  done(): void;
  /** The source failed. */
  error(error: unknown): void;
  /** The consumer stopped early (`break`, `return()`, `cancel()`). */
  stopped(): void;
}

function call(fn: () => void): void {
  try {
    fn();
  } catch {
    // hooks guard themselves; an observer never changes what the consumer sees
  }
}

/**
 * Wraps an async iterator: `next`, `return` and `throw` are forwarded unchanged (same values,
 * same errors, same order, concurrent `next()` calls included); the hooks see the outcome.
 * Only the first ending counts.
 */
export function observeIterator<T>(inner: AsyncIterator<T>, hooks: StreamHooks<T>): AsyncIterableIterator<T> {
  let settled = false;
  const settle = (fn: () => void) => {
    if (settled) return;
    settled = true;
    call(fn);
  };
  const observed: AsyncIterableIterator<T> = {
    next(...args: [] | [unknown]) {
      return inner.next(...args).then(
        (result) => {
          if (result.done) settle(() => hooks.done());
          else if (!settled) call(() => hooks.chunk(result.value));
          return result;
        },
        (error: unknown) => {
          settle(() => hooks.error(error));
          throw error;
        },
      );
    },
    return(value?: unknown) {
      settle(() => hooks.stopped());
      if (typeof inner.return === 'function') return inner.return(value);
      return Promise.resolve({ done: true, value: value as T });
    },
    throw(error?: unknown) {
      settle(() => hooks.error(error));
      if (typeof inner.throw === 'function') return inner.throw(error);
      return Promise.reject(error);
    },
    [Symbol.asyncIterator]() {
      return observed;
    },
  };
  return observed;
}

/**
 * A ReadableStream that reads `source` only when its own consumer reads (high-water mark 0),
 * so chunks pass through one at a time at the consumer's pace; cancel is forwarded.
 */
export function observeReadableStream<T>(
  source: ReadableStream<T>,
  hooks: StreamHooks<T>,
): ReadableStream<T> {
  const reader = source.getReader();
  let settled = false;
  const settle = (fn: () => void) => {
    if (settled) return;
    settled = true;
    call(fn);
  };
  return new ReadableStream<T>(
    {
      async pull(controller) {
        let result: Awaited<ReturnType<typeof reader.read>>;
        try {
          result = await reader.read();
        } catch (error) {
          settle(() => hooks.error(error));
          controller.error(error);
          return;
        }
        if (result.done) {
          settle(() => hooks.done());
          controller.close();
          return;
        }
        if (!settled) call(() => hooks.chunk(result.value));
        controller.enqueue(result.value);
      },
      cancel(reason) {
        settle(() => hooks.stopped());
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

/** The chunks of a streamed response as they arrived, with their offsets from the step's start. */
export class StreamRecording {
  readonly chunks: Json[] = [];
  readonly offsetsMs: number[] = [];
  readonly step: ActiveStep;
  constructor(step: ActiveStep) {
    this.step = step;
  }
  push(chunk: unknown): void {
    this.offsetsMs.push(Math.max(0, this.step.elapsedMs()));
    this.chunks.push(toJsonSafe(chunk));
  }
}
