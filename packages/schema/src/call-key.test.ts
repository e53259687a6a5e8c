import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { formatCallKey, parseCallKey } from './call-key.ts';

test('call keys nest under their parent', () => {
  const parent = formatCallKey(null, 'chain', 'triage', 0);
  assert.equal(parent, 'chain:triage#0');
  assert.equal(formatCallKey(parent, 'tool', 'crm.lookup', 2), 'chain:triage#0/tool:crm.lookup#2');
});

test('names with / # % round-trip', () => {
  fc.assert(
    fc.property(fc.string(), fc.nat(), (name, ordinal) => {
      const key = formatCallKey('chain:a#0', 'tool', name, ordinal);
      assert.deepEqual(parseCallKey(key)?.[1], { kind: 'tool', name, ordinal });
    }),
  );
  assert.equal(parseCallKey('tool:x'), undefined);
  assert.equal(parseCallKey('tool:%E0%A4%A#1'), undefined);
});
