import assert from 'node:assert/strict';
import { test } from 'node:test';
import { diffJson } from './diff.ts';
import { ReplayError } from './errors.ts';
import { parsePointer, setPointer } from './pointer.ts';

test('JSON pointers: escapes, sets in objects and arrays, the document is not changed', () => {
  assert.deepEqual(parsePointer(''), []);
  assert.deepEqual(parsePointer('/a~1b/c~0d/0'), ['a/b', 'c~d', '0']);
  const request = { messages: [{ role: 'user', content: 'hi' }], params: {} };
  assert.deepEqual(setPointer(request, '/messages/0/content', 'hello'), {
    messages: [{ role: 'user', content: 'hello' }],
    params: {},
  });
  assert.deepEqual(setPointer(request, '/params/temperature', 0), { ...request, params: { temperature: 0 } });
  assert.deepEqual(
    (setPointer(request, '/messages/-', { role: 'user', content: 'more' }) as typeof request).messages.length,
    2,
  );
  assert.equal(request.messages[0]!.content, 'hi');
  assert.equal(setPointer(request, '', 5), 5);
});

test('a pointer that does not fit says where', () => {
  const fails = (pointer: string, pattern: RegExp) =>
    assert.throws(
      () => setPointer({ messages: [{ content: 'x' }] }, pointer, 1),
      (error: unknown) =>
        ReplayError.isInstance(error) &&
        error.code === 'invalid_fork' &&
        pattern.test((error as Error).message),
    );
  fails('messages/0', /must be empty or start with "\/"/);
  fails('/messages/3/content', /array of 1 item\(s\) and "3" is not an index/);
  fails('/nope/x', /\/nope does not exist/);
  fails('/messages/0/content/x', /is not an object or array/);
  fails('/a~2', /"~" must be followed by 0 or 1/);
});

test('field diffs name every changed, added and removed field by pointer', () => {
  assert.deepEqual(diffJson({ a: 1, b: [1, 2], c: { d: 'x' } }, { a: 1, b: [1, 3, 4], c: {}, e: null }), [
    { path: '/b/1', recorded: 2, replayed: 3 },
    { path: '/b/2', replayed: 4 },
    { path: '/c/d', recorded: 'x' },
    { path: '/e', replayed: null },
  ]);
  assert.deepEqual(diffJson({ 'a/b': 1 }, { 'a/b': 2 }), [{ path: '/a~1b', recorded: 1, replayed: 2 }]);
  assert.deepEqual(diffJson([1], { 0: 1 }), [{ path: '', recorded: [1], replayed: { 0: 1 } }]);
  assert.deepEqual(diffJson({ x: [1, { y: 2 }] }, { x: [1, { y: 2 }] }), []);
});
