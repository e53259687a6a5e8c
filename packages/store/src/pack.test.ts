import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  buildPack,
  decodeFrame,
  ENTRY_BYTES,
  entryAt,
  entryHex,
  FOOTER_BYTES,
  findInPack,
  MAX_PACK_ENTRIES,
  PackIndex,
  type PackItem,
  parsePack,
} from './pack.ts';

const sha = (bytes: Uint8Array): Buffer => createHash('sha256').update(bytes).digest();
const item = (text: string): PackItem => {
  const bytes = Buffer.from(text);
  return { hash: sha(bytes), bytes };
};
const items = (count: number, prefix = 'blob', size = 300): PackItem[] =>
  Array.from({ length: count }, (_, i) =>
    item(`{"${prefix}":${i},"text":"${'lorem ipsum '.repeat(size / 12)}"}`),
  );

/** A fake entry whose hash starts with `prefix` (hex) and is otherwise chosen: for collision tests. */
function fakeItem(hashHex: string, text: string): PackItem {
  return { hash: Buffer.from(hashHex, 'hex'), bytes: Buffer.from(text) };
}

describe('pack format', () => {
  test('round trip: every blob is found in its frame at its offset, frames are bounded, the index is sorted', async () => {
    const input = items(200, 'rt', 1000);
    const { chunks, layout } = await buildPack(input, { level: 3, frameBytes: 16 * 1024 });
    const file = Buffer.concat(chunks);
    assert.equal(file.length, layout.fileSize);
    assert.equal(file.subarray(0, 8).toString('latin1'), 'RWPACK01');
    assert.equal(file.subarray(-8).toString('latin1'), 'RWPKEND1');
    const parsed = parsePack(file);
    assert.ok(typeof parsed !== 'string', String(parsed));
    assert.ok(parsed.frameCount > 5, `${parsed.frameCount} frames`);
    for (let frame = 0; frame < parsed.frameCount; frame++) assert.ok(parsed.frameSizes[frame]! <= 16 * 1024);
    const raws = await Promise.all(
      Array.from({ length: parsed.frameCount }, (_, frame) =>
        decodeFrame(
          file.subarray(
            parsed.frameOffsets[frame]!,
            parsed.frameOffsets[frame]! + parsed.frameLengths[frame]!,
          ),
          parsed.frameSizes[frame]!,
        ),
      ),
    );
    for (const { hash, bytes } of input) {
      const entry = findInPack(parsed, hash);
      assert.ok(entry >= 0);
      const { frame, offset, size } = entryAt(parsed, entry);
      assert.deepEqual(raws[frame]!.subarray(offset, offset + size), Buffer.from(bytes));
      assert.equal(entryHex(parsed, entry), hash.toString('hex'));
    }
    for (let e = 1; e < parsed.entryCount; e++) assert.ok(entryHex(parsed, e - 1) < entryHex(parsed, e));
    assert.equal(findInPack(parsed, sha(Buffer.from('absent'))), -1);
  });

  test('similar blobs compress against each other within a frame', async () => {
    // Pointer lists: each one the previous plus one new hash (what request shells look like).
    const pointers: string[] = [];
    const input = Array.from({ length: 100 }, (_, i) => {
      pointers.push(`{"$blob":"sha256:${sha(Buffer.from(String(i))).toString('hex')}"}`);
      return item(`{"messages":[${pointers.join(',')}]}`);
    });
    const raw = input.reduce((sum, { bytes }) => sum + bytes.byteLength, 0);
    const { layout } = await buildPack(input, { level: 3, frameBytes: 256 * 1024 });
    assert.ok(layout.fileSize * 10 < raw, `${layout.fileSize} bytes for ${raw}`);
  });

  test('an empty blob, a one-blob pack, and a blob bigger than the frame target', async () => {
    const input = [item(''), item('x'.repeat(100_000)), item('y')];
    const { chunks } = await buildPack(input, { level: 3, frameBytes: 1024 });
    const parsed = parsePack(Buffer.concat(chunks));
    assert.ok(typeof parsed !== 'string');
    assert.equal(parsed.entryCount, 3);
    const single = parsePack(
      Buffer.concat((await buildPack([item('only')], { level: 1, frameBytes: 1 })).chunks),
    );
    assert.ok(typeof single !== 'string');
    assert.equal(single.entryCount, 1);
    await assert.rejects(buildPack([], { level: 3, frameBytes: 1024 }), RangeError);
    await assert.rejects(
      buildPack([item('a'), item('a')], { level: 3, frameBytes: 1024 }),
      /same blob twice/,
    );
  });

  test('damage to the header, footer or index is detected; damage to a frame is left to the blob hashes', async () => {
    const { chunks, layout } = await buildPack(items(50, 'dmg'), { level: 3, frameBytes: 4096 });
    const file = Buffer.concat(chunks);
    const flipped = (at: number): Buffer => {
      const copy = Buffer.from(file);
      copy[at] = copy[at]! ^ 0x01;
      return copy;
    };
    const cases: [string, Buffer, RegExp][] = [
      ['truncated', file.subarray(0, file.length - 1), /footer/],
      ['cut in the middle', file.subarray(0, Math.floor(file.length / 2)), /footer/],
      ['empty', Buffer.alloc(0), /too short/],
      ['header byte', flipped(0), /header/],
      ['footer magic', flipped(file.length - 1), /footer/],
      ['footer count', flipped(file.length - FOOTER_BYTES + 12), /add up|checksum/],
      ['footer crc', flipped(file.length - FOOTER_BYTES + 16), /checksum/],
      ['index entry hash', flipped(layout.indexOffset + layout.frameCount * 8 + 3), /checksum/],
      ['index frame length', flipped(layout.indexOffset), /checksum/],
      ['last index entry size', flipped(file.length - FOOTER_BYTES - 2), /checksum/],
    ];
    for (const [what, damaged, reason] of cases) {
      const parsed = parsePack(damaged);
      assert.equal(typeof parsed, 'string', what);
      assert.match(parsed as string, reason, what);
    }
    // A byte inside a frame: the index still parses; the frame fails to decode or decodes to other bytes.
    const inFrame = flipped(layout.frameOffsets[1]! + Math.floor(layout.frameLengths[1]! / 2));
    const parsed = parsePack(inFrame);
    assert.ok(typeof parsed !== 'string');
    const frame = inFrame.subarray(
      parsed.frameOffsets[1]!,
      parsed.frameOffsets[1]! + parsed.frameLengths[1]!,
    );
    let decoded: Buffer | undefined;
    try {
      decoded = await decodeFrame(frame, parsed.frameSizes[1]!);
    } catch {}
    if (decoded !== undefined) {
      const original = await decodeFrame(
        file.subarray(layout.frameOffsets[1]!, layout.frameOffsets[1]! + layout.frameLengths[1]!),
        layout.frameSizes[1]!,
      );
      assert.notDeepEqual(decoded, original);
    }
  });

  test('decodeFrame refuses a frame of another size than the index says', async () => {
    const { chunks, layout } = await buildPack([item('hello world')], { level: 3, frameBytes: 1024 });
    const frame = Buffer.concat(chunks).subarray(
      layout.frameOffsets[0]!,
      layout.frameOffsets[0]! + layout.frameLengths[0]!,
    );
    assert.deepEqual(await decodeFrame(frame, 11), Buffer.from('hello world'));
    await assert.rejects(decodeFrame(frame, 12), /11 bytes/);
    await assert.rejects(decodeFrame(frame, 5));
  });
});

describe('PackIndex', () => {
  async function layoutOf(input: PackItem[]) {
    return (await buildPack(input, { level: 1, frameBytes: 64 * 1024 })).layout;
  }

  test('finds every blob of every pack, keeps one location per hash, rebuilds on removal', async () => {
    const index = new PackIndex();
    const a = items(300, 'a');
    const b = items(300, 'b');
    const shared = items(10, 'shared');
    index.add('a.pack', await layoutOf([...a, ...shared]));
    index.add('b.pack', await layoutOf([...b, ...shared]));
    assert.equal(index.size, 610);
    for (const { hash } of a) assert.equal(index.lookup(hash)?.pack.name, 'a.pack');
    for (const { hash } of b) assert.equal(index.lookup(hash)?.pack.name, 'b.pack');
    for (const { hash } of shared) {
      assert.equal(index.lookup(hash)?.pack.name, 'a.pack', 'the first pack loaded');
      assert.deepEqual(
        index.locateAll(hash).map((location) => location.pack.name),
        ['a.pack', 'b.pack'],
      );
    }
    assert.equal(index.lookup(sha(Buffer.from('absent'))), undefined);
    index.remove(['a.pack']);
    assert.equal(index.size, 310);
    for (const { hash } of a) assert.equal(index.lookup(hash), undefined);
    for (const { hash } of shared)
      assert.equal(index.lookup(hash)?.pack.name, 'b.pack', 'found in the other pack');
    assert.deepEqual(
      index.packs().map((pack) => pack.name),
      ['b.pack'],
    );
    assert.equal(
      index.add('b.pack', await layoutOf(a)).layout.entryCount,
      310,
      'adding a name twice keeps the first',
    );
  });

  test('replace repoints the hashes of merged packs without a rebuild, and falls back to one', async () => {
    const index = new PackIndex();
    const a = items(50, 'ra');
    const b = items(50, 'rb');
    const c = items(5, 'rc');
    index.add('a.pack', await layoutOf(a));
    index.add('b.pack', await layoutOf(b));
    index.add('c.pack', await layoutOf(c));
    const merged = index.add('ab.pack', await layoutOf([...a, ...b]));
    for (const { hash } of a) assert.equal(index.lookup(hash)?.pack.name, 'a.pack');
    index.replace(['a.pack', 'b.pack'], [merged]);
    for (const { hash } of [...a, ...b]) assert.equal(index.lookup(hash)?.pack.name, 'ab.pack');
    assert.deepEqual(
      index
        .packs()
        .map((pack) => pack.name)
        .sort(),
      ['ab.pack', 'c.pack'],
    );
    assert.equal(index.size, 105);
    // c's blobs are not in the merge: replacing c means a rebuild that forgets them
    index.replace(['c.pack'], [merged]);
    for (const { hash } of c) assert.equal(index.lookup(hash), undefined);
    assert.equal(index.size, 100);
  });

  test('hashes that share their first 48 bits are told apart', async () => {
    const prefix = 'abcdef012345';
    const hashes = Array.from({ length: 5 }, (_, i) => `${prefix}${String(i).repeat(52)}`);
    const index = new PackIndex();
    index.add('one.pack', await layoutOf(hashes.slice(0, 3).map((hash, i) => fakeItem(hash, `blob ${i}`))));
    index.add('two.pack', await layoutOf(hashes.slice(2).map((hash, i) => fakeItem(hash, `blob ${i + 2}`))));
    assert.equal(index.size, 5);
    for (const [i, hash] of hashes.entries()) {
      const location = index.lookup(Buffer.from(hash, 'hex'));
      assert.ok(location !== undefined, hash);
      assert.equal(entryHex(location.pack.layout, location.entry), hash);
      assert.equal(location.pack.name, i < 3 ? 'one.pack' : 'two.pack');
    }
    assert.equal(index.lookup(Buffer.from(`${prefix}${'9'.repeat(52)}`, 'hex')), undefined);
    index.remove(['one.pack']);
    assert.equal(index.size, 3);
    assert.equal(index.lookup(Buffer.from(hashes[0]!, 'hex')), undefined);
    assert.equal(index.lookup(Buffer.from(hashes[2]!, 'hex'))?.pack.name, 'two.pack');
  });

  test('entries are fixed-size records and a pack holds at most 2^20 of them', () => {
    assert.equal(ENTRY_BYTES, 44);
    assert.equal(MAX_PACK_ENTRIES, 1 << 20);
  });
});
