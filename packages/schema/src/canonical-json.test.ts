import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { CanonicalJsonError, canonicalJson } from './canonical-json.ts';
import { blobHashHex, blobHashOf, isBlobHash, jsonHash } from './hash.ts';

function fromBits(hex: string): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setBigUint64(0, BigInt(`0x${hex}`));
  return view.getFloat64(0);
}

test('RFC 8785 Appendix B: number serialization', () => {
  const vectors: Array<[string, string]> = [
    ['0000000000000000', '0'],
    ['8000000000000000', '0'],
    ['0000000000000001', '5e-324'],
    ['8000000000000001', '-5e-324'],
    ['7fefffffffffffff', '1.7976931348623157e+308'],
    ['ffefffffffffffff', '-1.7976931348623157e+308'],
    ['4340000000000000', '9007199254740992'],
    ['c340000000000000', '-9007199254740992'],
    ['4430000000000000', '295147905179352830000'],
    ['44b52d02c7e14af5', '9.999999999999997e+22'],
    ['44b52d02c7e14af6', '1e+23'],
    ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
    ['3eb0c6f7a0b5ed8d', '0.000001'],
    ['41b3de4355555553', '333333333.3333332'],
    ['41b3de4355555555', '333333333.3333333'],
  ];
  for (const [bits, expected] of vectors) assert.equal(canonicalJson(fromBits(bits)), expected, bits);
});

test('RFC 8785 §3.2.2: the worked example', () => {
  const input = JSON.parse(
    '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001], "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "literals": [null, true, false]}',
  );
  assert.equal(
    canonicalJson(input),
    '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
  );
});

test('RFC 8785 §3.2.3: keys sorted by UTF-16 code units', () => {
  const input = {
    '\u20ac': 'Euro Sign',
    '\r': 'Carriage Return',
    '\ufb33': 'Hebrew Letter Dalet With Dagesh',
    '1': 'One',
    '\ud83d\ude00': 'Emoji: Grinning Face',
    '\u0080': 'Control',
    '\u00f6': 'Latin Small Letter O With Diaeresis',
  };
  // Object.keys would put the integer-like key first, so read the order off the text.
  const keys = [...canonicalJson(input).matchAll(/"((?:[^"\\]|\\.)*)":/g)].map((m) =>
    JSON.parse(`"${m[1]}"`),
  );
  assert.deepEqual(keys, ['\r', '1', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33']);
});

test('values that are not JSON are refused with the path', () => {
  assert.throws(
    () => canonicalJson({ a: [1, Number.NaN] }),
    (e: unknown) => e instanceof CanonicalJsonError && e.path === 'a[1]',
  );
  assert.throws(() => canonicalJson({ big: 1n }), /big: a bigint/);
  assert.throws(() => canonicalJson(new Uint8Array(2)), /binary data/);
  assert.equal(
    canonicalJson({ a: undefined, b: () => 1, c: [undefined], d: new Date(0) }),
    '{"c":[null],"d":"1970-01-01T00:00:00.000Z"}',
  );
});

test('property: canonical form is a fixpoint of parse∘serialize and independent of key order', () => {
  fc.assert(
    fc.property(fc.jsonValue(), (value) => {
      const canonical = canonicalJson(value);
      assert.equal(canonicalJson(JSON.parse(canonical)), canonical);
      assert.deepEqual(JSON.parse(canonical), JSON.parse(JSON.stringify(value)));
    }),
  );
  fc.assert(
    fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (record) => {
      const reversed = Object.fromEntries(Object.entries(record).reverse());
      assert.equal(canonicalJson(reversed), canonicalJson(record));
      assert.equal(jsonHash(reversed), jsonHash(record));
    }),
  );
});

test('blob hashes', () => {
  const hash = blobHashOf('abc');
  assert.equal(hash, 'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.ok(isBlobHash(hash));
  assert.equal(blobHashHex(hash), hash.slice(7));
  assert.equal(blobHashHex('sha256:../../etc/passwd'), undefined);
  assert.equal(isBlobHash(`sha256:${'A'.repeat(64)}`), false);
  assert.equal(blobHashOf(new TextEncoder().encode('abc')), hash);
});
