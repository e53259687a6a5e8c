// Child process for the crash-safety test in fs-blob-store.test.ts: writes `count` unique blobs
// into the store at `dir`, a few at a time, and prints `ok <hash>` once each put has resolved
// (stdout to a pipe is synchronous on POSIX, so a printed hash was acknowledged before the
// next write started). The test SIGKILLs it somewhere in the middle.
//
// Usage: node blob-writer-child.ts <dir> <count> [concurrency]

import { randomBytes } from 'node:crypto';
import { openFsBlobStore } from '../fs-blob-store.ts';

const [dir, countArg = '10000', concurrencyArg = '8'] = process.argv.slice(2);
if (dir === undefined) {
  process.stderr.write('usage: blob-writer-child.ts <dir> <count> [concurrency]\n');
  process.exit(2);
}
const count = Number(countArg);
const store = await openFsBlobStore(dir);
const salt = randomBytes(8).toString('hex');

function blob(index: number): Uint8Array {
  // Mostly small JSON-ish blobs; every 25th one is large (0.25–1 MiB) so some kills land in the
  // middle of a long write.
  const size =
    index % 25 === 0
      ? 256 * 1024 + Math.floor(Math.random() * 768 * 1024)
      : 64 + Math.floor(Math.random() * 8192);
  const head = `{"writer":"${salt}","index":${index},"filler":"`;
  return Buffer.from(
    head +
      randomBytes(Math.ceil(size / 2))
        .toString('hex')
        .slice(0, size) +
      '"}',
  );
}

let next = 0;
async function worker(): Promise<void> {
  while (next < count) {
    const hash = await store.put(blob(next++));
    process.stdout.write(`ok ${hash}\n`);
  }
}
await Promise.all(Array.from({ length: Number(concurrencyArg) }, worker));
await store.close();
process.stdout.write('done\n');
