// Child process for the pack tests in pack-store.test.ts: writes `batches` batches of unique
// blobs into the store at `dir` with putMany (one pack per batch; now and then a blob above the
// pack threshold, written loose), and prints `ok <hash>` for every blob of a batch once its
// putMany has resolved (stdout to a pipe is synchronous on POSIX, so a printed hash was
// acknowledged before the next batch started). The crash test SIGKILLs it somewhere in the
// middle; the cross-process test lets it finish.
//
// Usage: node pack-writer-child.ts <dir> <batches> [batchSize] [concurrency]

import { randomBytes } from 'node:crypto';
import { openFsBlobStore } from '../fs-blob-store.ts';

const [dir, batchesArg = '1000', batchSizeArg = '50', concurrencyArg = '2'] = process.argv.slice(2);
if (dir === undefined) {
  process.stderr.write('usage: pack-writer-child.ts <dir> <batches> [batchSize] [concurrency]\n');
  process.exit(2);
}
const batches = Number(batchesArg);
const batchSize = Number(batchSizeArg);
// A 64 KiB pack threshold (not the default 1 MiB), so that big blobs take the loose path.
const store = await openFsBlobStore(dir, { packMaxBlobBytes: 64 * 1024 });
const salt = randomBytes(8).toString('hex');

function blob(index: number): Uint8Array {
  // Mostly small JSON-ish blobs; every 97th is large (100–300 KiB: a loose file) so some kills
  // land in the middle of a loose write.
  const size =
    index % 97 === 0
      ? 100 * 1024 + Math.floor(Math.random() * 200 * 1024)
      : 64 + Math.floor(Math.random() * 4096);
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
let batch = 0;
async function worker(): Promise<void> {
  while (batch < batches) {
    batch++;
    const items = Array.from({ length: batchSize }, () => blob(next++));
    const hashes = await store.putMany(items);
    process.stdout.write(hashes.map((hash) => `ok ${hash}\n`).join(''));
  }
}
await Promise.all(Array.from({ length: Number(concurrencyArg) }, worker));
await store.close();
process.stdout.write('done\n');
