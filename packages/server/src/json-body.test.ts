import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { jsonDepthExceeds } from './json-body.ts';

// The depth check runs on the raw text before parsing; it must agree with the real nesting depth.

function depthOf(value: unknown): number {
  // An explicit stack: the reference itself must not recurse.
  let max = 0;
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!;
    if (typeof item !== 'object' || item === null) continue;
    max = Math.max(max, depth + 1);
    for (const child of Object.values(item)) stack.push([child, depth + 1]);
  }
  return max;
}

describe('jsonDepthExceeds', () => {
  test('agrees with the parsed depth on arbitrary JSON (strings full of brackets, quotes and backslashes)', () => {
    const tricky = fc.stringMatching(/^[[\]{}"\\a ]{0,12}$/);
    const json = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        tricky,
        fc.integer(),
        fc.constant(null),
        fc.array(tie('value'), { maxLength: 3 }),
        fc.dictionary(tricky, tie('value'), { maxKeys: 3 }),
      ),
    })).value;
    fc.assert(
      fc.property(json, fc.integer({ min: 0, max: 8 }), (value, max) => {
        const text = JSON.stringify(value);
        assert.equal(jsonDepthExceeds(text, max), depthOf(value) > max, text);
      }),
      { numRuns: 2000 },
    );
  });

  test('a million opening brackets: one pass, no stack', () => {
    assert.equal(jsonDepthExceeds('['.repeat(1_000_000), 64), true);
    assert.equal(jsonDepthExceeds(`"${'['.repeat(1_000_000)}"`, 64), false);
  });

  test('escaped quotes and backslashes end strings where JSON does', () => {
    assert.equal(jsonDepthExceeds(String.raw`["\"[[[", "\\", [[]]]`, 2), true);
    assert.equal(jsonDepthExceeds(String.raw`["\\\"[[[", [[]]]`, 3), false);
    assert.equal(jsonDepthExceeds('"unterminated [[[', 1), false);
  });
});
