import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalJson } from '@rewind/schema';
import fc from 'fast-check';
import { canonical, canonicalWithParts, inlineText, Part, PieceList } from './json.ts';

test('canonical is byte-identical to the schema canonicalJson for every JSON value', () => {
  fc.assert(
    fc.property(fc.jsonValue(), (value) => {
      assert.equal(canonical(value), canonicalJson(value));
    }),
    { numRuns: 2000 },
  );
});

test('canonical sorts keys by UTF-16 code units, including integer-like keys', () => {
  const value = { b: 1, a: { d: [1, { z: 0, y: 1 }], c: null }, 10: 'x', 2: 'y', é: 1, Z: 2 };
  assert.equal(canonical(value), canonicalJson(value));
  assert.equal(canonical(value), '{"10":"x","2":"y","Z":2,"a":{"c":null,"d":[1,{"y":1,"z":0}]},"b":1,"é":1}');
});

test('canonical matches JSON.stringify for undefined, functions, toJSON and -0', () => {
  const value = { u: undefined, f: () => 1, d: new Date(0), n: -0, arr: [undefined, () => 1, Symbol('s')] };
  assert.equal(canonical(value), '{"arr":[null,null,null],"d":"1970-01-01T00:00:00.000Z","n":0}');
  assert.equal(canonical(undefined), 'null');
});

test('canonical never throws: non-JSON values get a documented stand-in', () => {
  const cyclic: Record<string, unknown> = { name: 'a' };
  cyclic.self = cyclic;
  let deep: unknown = 'leaf';
  for (let i = 0; i < 600; i++) deep = [deep];
  const throwing = {
    get boom(): never {
      throw new Error('nope');
    },
  };
  assert.equal(canonical({ n: Number.NaN, i: Number.POSITIVE_INFINITY }), '{"i":null,"n":null}');
  assert.equal(canonical({ big: 12345678901234567890n }), '{"big":"12345678901234567890"}');
  assert.equal(canonical(new Uint8Array([1, 2, 3])), '{"base64":"AQID","type":"bytes"}');
  assert.equal(canonical(Buffer.from('hi')), '{"base64":"aGk=","type":"bytes"}');
  assert.match(canonical(cyclic), /"\[Circular\]"/);
  assert.match(canonical(deep), /"\[Too deep\]"/);
  assert.equal(canonical(throwing), '"[Unserializable: nope]"');
  // the serializer's state is clean after a failure
  assert.equal(canonical({ b: 1, a: 2 }), '{"a":2,"b":1}');
});

test('PieceList merges texts and keeps parts; inlineText rebuilds the whole text', () => {
  const list = new PieceList();
  list.text('[');
  list.text('1,');
  const part = new Part('{"a":1}');
  list.part(part);
  list.text(']');
  const pieces = list.done();
  assert.deepEqual(pieces, ['[1,', part, ']']);
  assert.equal(inlineText(pieces), '[1,{"a":1}]');
  const plain = new PieceList();
  plain.text('x');
  assert.equal(plain.done(), 'x');
});

test('canonicalWithParts: inlining the parts gives exactly the canonical JSON (property, NUL-safe)', () => {
  fc.assert(
    fc.property(fc.jsonValue(), fc.integer({ min: 2, max: 40 }), (value, min) => {
      const pieces = canonicalWithParts(value, min);
      assert.equal(inlineText(pieces), canonicalJson(value));
      if (typeof pieces !== 'string')
        for (const piece of pieces) if (piece instanceof Part) assert.ok(piece.text.length >= min);
    }),
    { numRuns: 1000 },
  );
  const tricky = { '\u0000key': 'a\u0000b'.repeat(20), list: ['\u00000\u0000', 'x'.repeat(50)] };
  const pieces = canonicalWithParts(tricky, 20);
  assert.equal(inlineText(pieces), canonicalJson(tricky));
  assert.equal((pieces as unknown[]).filter((piece) => piece instanceof Part).length, 2);
  // plain canonical output is unaffected afterwards
  assert.equal(canonical(tricky), canonicalJson(tricky));
});
