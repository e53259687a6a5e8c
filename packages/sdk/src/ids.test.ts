import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkShape, eventIdShape } from '@rewind/schema';
import { uuidv7 } from './ids.ts';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('uuidv7 makes RFC 9562 version 7 ids carrying the millisecond', () => {
  const ms = Date.UTC(2026, 10, 25, 10, 0, 0, 123);
  const id = uuidv7(ms);
  assert.match(id, UUID_V7);
  assert.equal(Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16), ms);
  assert.deepEqual(checkShape(eventIdShape, id), []);
});

test('ids from one process never go backwards and never repeat, even within one millisecond', () => {
  const ids: string[] = [];
  const ms = Date.now() + 10_000; // a future millisecond, shared by all
  for (let i = 0; i < 10_000; i++) ids.push(uuidv7(ms));
  for (let i = 0; i < 1000; i++) ids.push(uuidv7());
  ids.push(uuidv7(ms - 5000)); // a clock going back does not reorder
  for (let i = 1; i < ids.length; i++) assert.ok(ids[i - 1]! < ids[i]!, `${ids[i - 1]} < ${ids[i]}`);
  assert.equal(new Set(ids).size, ids.length);
  for (const id of ids) assert.match(id, UUID_V7);
});
