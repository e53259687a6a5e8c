import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { hash } from 'node:crypto';
import {
  appendFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { BlobHash, RewindEvent } from '@rewind/schema';
import { decodeGroups, encodeGroup, SPOOL_MAGIC, Spool, type SpoolGroup } from './spool.ts';

const temp = mkdtempSync(join(tmpdir(), 'rewind-spool-'));
after(() => rmSync(temp, { recursive: true, force: true }));
let dirs = 0;
const freshDir = (): string => join(temp, `s${dirs++}`);

function group(tag: string, n = 2): SpoolGroup {
  const blobs = new Map<BlobHash, Buffer>();
  const events: RewindEvent[] = [];
  const uses: BlobHash[][] = [];
  for (let i = 0; i < n; i++) {
    const bytes = Buffer.from(`${tag}-${i} `.repeat(50));
    const blob = `sha256:${hash('sha256', bytes, 'hex')}` as BlobHash;
    blobs.set(blob, bytes);
    events.push({
      eventId: `${tag}-${i}`,
      input: { hash: blob, size: bytes.length },
    } as unknown as RewindEvent);
    uses.push([blob]);
  }
  return { owner: 'me', events, uses, blobs };
}

function ids(groups: Array<{ events: RewindEvent[] }>): string[] {
  return groups.flatMap((g) => g.events.map((event) => event.eventId));
}

/** A pid that belonged to a process which has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', '0']);
  assert.equal(typeof child.pid, 'number');
  return child.pid!;
}

test('groups round-trip with their blobs, and reading resumes at a group boundary', () => {
  const a = encodeGroup(group('a'));
  const b = encodeGroup(group('b', 3));
  const file = Buffer.concat([a, b]);
  const all = decodeGroups(file);
  assert.equal(all.skipped, 0);
  assert.deepEqual(ids(all.groups), ['a-0', 'a-1', 'b-0', 'b-1', 'b-2']);
  assert.equal(all.groups[1]!.blobs.size, 3);
  assert.deepEqual([...all.groups[0]!.blobs.values()], [...group('a').blobs.values()]);
  assert.equal(all.groups[0]!.end, a.length);
  assert.deepEqual(ids(decodeGroups(file, all.groups[0]!.end).groups), ['b-0', 'b-1', 'b-2']);
});

test('a torn tail (a write cut at any byte) is skipped and never poisons the groups before it', () => {
  const whole = Buffer.concat([encodeGroup(group('a')), encodeGroup(group('b'))]);
  const third = encodeGroup(group('c'));
  for (let cut = 1; cut < third.length; cut += 37) {
    const read = decodeGroups(Buffer.concat([whole, third.subarray(0, cut)]));
    assert.deepEqual(ids(read.groups), ['a-0', 'a-1', 'b-0', 'b-1'], `cut at ${cut}`);
  }
});

test('a damaged record in the middle loses only its own group: reading resyncs at the next record', () => {
  const a = encodeGroup(group('a'));
  const b = encodeGroup(group('b'));
  const c = encodeGroup(group('c'));
  const file = Buffer.concat([a, b, c]);
  // flip a byte in b's events record (its last record)
  file[a.length + b.length - 5]! ^= 0xff;
  const read = decodeGroups(file);
  assert.deepEqual(ids(read.groups), ['a-0', 'a-1', 'c-0', 'c-1']);
  assert.ok(read.skipped > 0);
  // garbage between records
  const noisy = Buffer.concat([a, Buffer.from('garbage RWS'), SPOOL_MAGIC, Buffer.from([0, 0]), c]);
  assert.deepEqual(ids(decodeGroups(noisy).groups), ['a-0', 'a-1', 'c-0', 'c-1']);
});

test('file lifecycle: appended (.open), sealed (.spool), claimed, put back with progress, finished', async () => {
  const dir = freshDir();
  const spool = new Spool(dir);
  assert.equal(await spool.claimNext(), undefined, 'no directory: nothing to claim');
  await spool.append(group('a'));
  await spool.append(group('b'));
  assert.match(readdirSync(dir)[0]!, /^\d{13}-\d+-[0-9a-f]+\.open$/);
  assert.equal(await spool.claimNext(), undefined, 'a file still being written is not claimed');
  await spool.seal();
  assert.match(readdirSync(dir)[0]!, /\.spool$/);
  const claim = (await spool.claimNext())!;
  assert.match(readdirSync(dir)[0]!, new RegExp(`\\.claim-${process.pid}$`));
  assert.equal(await spool.claimNext(), undefined, 'a claimed file is not claimed twice');
  const first = decodeGroups(await claim.read(), claim.offset).groups[0]!;
  await claim.release(first.end);
  assert.match(readdirSync(dir)[0]!, new RegExp(`\\+${first.end}\\.spool$`));
  const again = (await spool.claimNext())!;
  assert.equal(again.offset, first.end);
  assert.deepEqual(ids(decodeGroups(await again.read(), again.offset).groups), ['b-0', 'b-1']);
  await again.finish();
  assert.deepEqual(readdirSync(dir), []);
});

test('files left by dead processes (a writer killed mid-file, a claimer killed mid-delivery) are taken over', async () => {
  const dir = freshDir();
  mkdirSync(dir, { recursive: true });
  const dead = deadPid();
  writeFileSync(join(dir, `0000000000001-${dead}-aaaa.open`), encodeGroup(group('w')));
  writeFileSync(join(dir, `0000000000002-${dead}-bbbb.claim-${dead}`), encodeGroup(group('c')));
  // our own pid in the name, but not a file this process has open: an earlier process with the same pid
  writeFileSync(join(dir, `0000000000003-${process.pid}-cccc.open`), encodeGroup(group('p')));
  // an unrelated file is left alone
  writeFileSync(join(dir, 'notes.txt'), 'not a spool file');
  const spool = new Spool(dir);
  const seen: string[] = [];
  for (let claim = await spool.claimNext(); claim !== undefined; claim = await spool.claimNext()) {
    seen.push(...ids(decodeGroups(await claim.read(), claim.offset).groups));
    await claim.finish();
  }
  assert.deepEqual(seen.sort(), ['c-0', 'c-1', 'p-0', 'p-1', 'w-0', 'w-1']);
  assert.deepEqual(readdirSync(dir), ['notes.txt']);
});

test('spools racing on one directory never deliver the same file (and a lost race does not unmark the winner)', async () => {
  for (let round = 0; round < 20; round++) {
    const dir = freshDir();
    const writer = new Spool(dir);
    for (let i = 0; i < 3; i++) {
      await writer.append(group(`g${i}`));
      await writer.seal();
    }
    const spools = [new Spool(dir), new Spool(dir), new Spool(dir), new Spool(dir)];
    const first = await Promise.all(spools.flatMap((spool) => [spool.claimNext(), spool.claimNext()]));
    // late comers, after some claims were lost: the claimed files must still count as held
    const late = await Promise.all(spools.map((spool) => spool.claimNext()));
    const got = [...first, ...late].filter((claim) => claim !== undefined);
    assert.equal(got.length, 3, `round ${round}`);
    assert.equal(new Set(got.map((claim) => claim.base)).size, 3);
    for (const claim of got) await claim.finish();
  }
});

test('the size limit: an append beyond maxBytes is refused with a clear error', async () => {
  const spool = new Spool(freshDir(), { maxBytes: 2000 });
  await spool.append(group('a', 1));
  await assert.rejects(spool.append(group('b', 5)), /limit \(2000\) is reached/);
  await spool.close();
});

test('a spool file is append-only: a second group lands after the first, byte for byte', async () => {
  const dir = freshDir();
  const spool = new Spool(dir);
  await spool.append(group('a'));
  const name = readdirSync(dir)[0]!;
  const before = readFileSync(join(dir, name));
  await spool.append(group('b'));
  const afterwards = readFileSync(join(dir, name));
  assert.deepEqual(afterwards.subarray(0, before.length), before);
  appendFileSync(join(dir, name), Buffer.from([1, 2, 3])); // a torn third write
  await spool.close();
  const claim = (await spool.claimNext())!;
  assert.deepEqual(ids(decodeGroups(await claim.read()).groups), ['a-0', 'a-1', 'b-0', 'b-1']);
});
