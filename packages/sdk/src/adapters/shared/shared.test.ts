import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { errorType, fromJsonBytes, parseJsonArguments, toJsonSafe } from './json.ts';
import {
  collapseParts,
  normalizeFinishReason,
  normalizeParams,
  resolveToolNames,
  usage,
} from './normalize.ts';
import { errorForRecord, httpStatusOf } from './step.ts';
import { observeIterator, observeReadableStream, type StreamHooks } from './stream.ts';

function recordingHooks() {
  const events: string[] = [];
  const hooks: StreamHooks<number> = {
    chunk: (value) => events.push(`chunk:${value}`),
    done: () => events.push('done'),
    error: (error) => events.push(`error:${(error as Error).message}`),
    stopped: () => events.push('stopped'),
  };
  return { events, hooks };
}

async function* numbers(count: number, failAt?: number) {
  for (let i = 1; i <= count; i++) {
    if (i === failAt) throw new Error('boom');
    yield i;
  }
}

describe('toJsonSafe', () => {
  it('copies like JSON and keeps what JSON loses', () => {
    const date = new Date('2025-01-01T00:00:00Z');
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const error = Object.assign(new TypeError('bad'), { status: 400 });
    assert.deepEqual(
      toJsonSafe({
        date,
        bytes: new Uint8Array([1, 2, 3]),
        big: 10n,
        nan: Number.NaN,
        skip: undefined,
        fn: () => 1,
        list: [undefined, 1],
        map: new Map([['k', 1]]),
        set: new Set([1, 2]),
        cyclic,
        error,
        withJson: { toJSON: () => ({ serialized: true }) },
      }),
      {
        date: '2025-01-01T00:00:00.000Z',
        bytes: { $bytes: 'AQID' },
        big: '10',
        nan: null,
        list: [null, 1],
        map: { k: 1 },
        set: [1, 2],
        cyclic: { a: 1, self: '[Circular]' },
        error: { name: 'TypeError', message: 'bad', status: 400 },
        withJson: { serialized: true },
      },
    );
    assert.deepEqual([...fromJsonBytes({ $bytes: 'AQID' })], [1, 2, 3]);
  });

  it('keeps a shared (non-cyclic) object twice', () => {
    const shared = { x: 1 };
    assert.deepEqual(toJsonSafe({ a: shared, b: shared }), { a: { x: 1 }, b: { x: 1 } });
  });

  it('parses JSON arguments and keeps invalid JSON as the string', () => {
    assert.deepEqual(parseJsonArguments('{"city":"Paris"}'), { city: 'Paris' });
    assert.equal(parseJsonArguments('{"city":'), '{"city":');
    assert.deepEqual(parseJsonArguments(''), {});
    assert.deepEqual(parseJsonArguments({ a: 1 }), { a: 1 });
  });
});

describe('errors', () => {
  class RateLimitError extends Error {
    status = 429;
  }
  it('names the most specific type (the openai client leaves name = Error)', () => {
    assert.equal(errorType(new RateLimitError('slow')), 'RateLimitError');
    assert.equal(errorType(Object.assign(new Error('x'), { name: 'AI_APICallError' })), 'AI_APICallError');
    assert.equal(errorType(new Error('x')), 'Error');
  });

  it('records a view with the type and the HTTP status, leaving the error untouched', () => {
    const error = Object.assign(new Error('limited'), { name: 'AI_APICallError', statusCode: 429 });
    const view = errorForRecord(error) as Error & { status?: number };
    assert.equal(view.status, 429);
    assert.equal(view.name, 'AI_APICallError');
    assert.equal(view.message, 'limited');
    assert.ok(view instanceof Error);
    assert.equal((error as { status?: number }).status, undefined, 'the original is not changed');
    const typed = errorForRecord(new RateLimitError('slow')) as Error;
    assert.equal(typed.name, 'RateLimitError');
    assert.equal(httpStatusOf({ response: { status: 503 } }), 503);
    assert.equal(httpStatusOf({ status: 'x' }), undefined);
  });
});

describe('normalize helpers', () => {
  it('maps finish reasons onto one vocabulary', () => {
    assert.equal(normalizeFinishReason('end_turn'), 'stop');
    assert.equal(normalizeFinishReason('max_tokens'), 'length');
    assert.equal(normalizeFinishReason('tool_use'), 'tool_calls');
    assert.equal(normalizeFinishReason('tool-calls'), 'tool_calls');
    assert.equal(normalizeFinishReason('content-filter'), 'content_filter');
    assert.equal(normalizeFinishReason(undefined), 'incomplete');
    assert.equal(normalizeFinishReason('pause_turn'), 'pause_turn');
  });

  it('keeps typed params only when their type fits, and everything else camelCased', () => {
    const params = normalizeParams(
      {
        model: 'm',
        temperature: 0.2,
        top_p: 'high',
        max_tokens: 10,
        stop: 'END',
        tool_choice: 'auto',
        seed: 1.5,
      },
      {
        typed: {
          temperature: 'temperature',
          top_p: 'topP',
          max_tokens: 'maxTokens',
          stop: 'stop',
          seed: 'seed',
        },
        skip: new Set(['model']),
      },
    );
    assert.deepEqual(params, {
      temperature: 0.2,
      maxTokens: 10,
      stop: ['END'],
      topP: 'high',
      toolChoice: 'auto',
      seed: 1.5,
    });
  });

  it('collapses a single text part, totals usage, resolves tool names', () => {
    assert.equal(collapseParts([{ type: 'text', text: 'hi' }]), 'hi');
    assert.equal(collapseParts([]), null);
    assert.deepEqual(usage(1, 2), { inputTokens: 1, outputTokens: 2, totalTokens: 3 });
    assert.deepEqual(usage(undefined, -1), {});
    const messages = resolveToolNames([
      { role: 'assistant', content: null, toolCalls: [{ id: 'c1', name: 'get_weather', arguments: {} }] },
      { role: 'tool', content: 'ok', toolCallId: 'c1' },
    ]);
    assert.equal(messages[1]?.name, 'get_weather');
  });
});

describe('observeIterator', () => {
  it('passes values through and reports the end', async () => {
    const { events, hooks } = recordingHooks();
    const seen: number[] = [];
    for await (const value of observeIterator(numbers(3), hooks)) seen.push(value);
    assert.deepEqual(seen, [1, 2, 3]);
    assert.deepEqual(events, ['chunk:1', 'chunk:2', 'chunk:3', 'done']);
  });

  it('reports an early stop (break) once, before the source is closed', async () => {
    const { events, hooks } = recordingHooks();
    let closed = false;
    async function* source() {
      try {
        yield* numbers(5);
      } finally {
        closed = true;
        events.push('source-closed');
      }
    }
    for await (const value of observeIterator(source(), hooks)) if (value === 2) break;
    assert.ok(closed);
    assert.deepEqual(events, ['chunk:1', 'chunk:2', 'stopped', 'source-closed']);
  });

  it('rethrows the same error', async () => {
    const { events, hooks } = recordingHooks();
    const seen: number[] = [];
    await assert.rejects(async () => {
      for await (const value of observeIterator(numbers(5, 3), hooks)) seen.push(value);
    }, /boom/);
    assert.deepEqual(seen, [1, 2]);
    assert.deepEqual(events, ['chunk:1', 'chunk:2', 'error:boom']);
  });

  it('keeps the order of concurrent next() calls', async () => {
    const { events, hooks } = recordingHooks();
    const iterator = observeIterator(numbers(3), hooks);
    const results = await Promise.all([iterator.next(), iterator.next(), iterator.next(), iterator.next()]);
    assert.deepEqual(
      results.map((r) => r.value),
      [1, 2, 3, undefined],
    );
    assert.deepEqual(events, ['chunk:1', 'chunk:2', 'chunk:3', 'done']);
  });

  it('survives a throwing hook', async () => {
    const hooks: StreamHooks<number> = {
      chunk: () => {
        throw new Error('hook bug');
      },
      done: () => {
        throw new Error('hook bug');
      },
      error: () => undefined,
      stopped: () => undefined,
    };
    const seen: number[] = [];
    for await (const value of observeIterator(numbers(2), hooks)) seen.push(value);
    assert.deepEqual(seen, [1, 2]);
  });
});

describe('observeReadableStream', () => {
  function source(count: number, pulls: number[]) {
    let next = 1;
    return new ReadableStream<number>(
      {
        pull(controller) {
          pulls.push(next);
          if (next > count) controller.close();
          else controller.enqueue(next++);
        },
      },
      { highWaterMark: 0 },
    );
  }

  it('reads the source only as the consumer reads', async () => {
    const { events, hooks } = recordingHooks();
    const pulls: number[] = [];
    const reader = observeReadableStream(source(3, pulls), hooks).getReader();
    await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(pulls, [], 'nothing is read ahead');
    assert.deepEqual(await reader.read(), { value: 1, done: false });
    assert.deepEqual(await reader.read(), { value: 2, done: false });
    assert.deepEqual(await reader.read(), { value: 3, done: false });
    assert.deepEqual(await reader.read(), { value: undefined, done: true });
    assert.deepEqual(events, ['chunk:1', 'chunk:2', 'chunk:3', 'done']);
  });

  it('forwards cancel and reports the stop', async () => {
    const { events, hooks } = recordingHooks();
    let cancelled: unknown;
    const stream = new ReadableStream<number>({
      pull: (controller) => controller.enqueue(1),
      cancel: (reason) => {
        cancelled = reason;
      },
    });
    const reader = observeReadableStream(stream, hooks).getReader();
    await reader.read();
    await reader.cancel('enough');
    assert.equal(cancelled, 'enough');
    assert.deepEqual(events, ['chunk:1', 'stopped']);
  });

  it('passes the source error on', async () => {
    const { events, hooks } = recordingHooks();
    const stream = new ReadableStream<number>({
      start: (controller) => controller.error(new Error('boom')),
    });
    await assert.rejects(observeReadableStream(stream, hooks).getReader().read(), /boom/);
    assert.deepEqual(events, ['error:boom']);
  });
});
