// The content-addressed blob store: put and get throughput (MB/s, 1 MB = 10^6 bytes of
// uncompressed content) for many small JSON payloads and for a few large ones, every blob
// unique, with a server-like number of requests in flight. The peer is the bare filesystem
// doing the same durable write (temp file, fsync, rename, directory fsync) and plain reads,
// without hashing, compression or verification: the price of the CAS's guarantees.
// For the small blobs also `putMany` (all of them in one call: one pack, as the SDK's drain
// writes a batch) and verified reads from that pack, with the CPU per blob.

import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { BlobHash } from '@rewind/schema';
import { openFsBlobStore } from '../packages/store/src/fs-blob-store.ts';
import type { BenchContext, BenchRow } from './lib.ts';
import { median } from './lib.ts';

const IN_FLIGHT = 16;
const SUITES = [
  { label: '2 KB JSON', count: 2000, size: 2 * 1024 },
  { label: '1 MB JSON', count: 100, size: 1024 * 1024 },
];

export default async function cas(ctx: BenchContext): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const suite of SUITES) {
    const rates = {
      casPut: [] as number[],
      casGet: [] as number[],
      rawPut: [] as number[],
      rawGet: [] as number[],
      packPut: [] as number[],
      packGet: [] as number[],
      packPutCpu: [] as number[],
    };
    const packed = suite.size <= 64 * 1024;
    for (let run = 0; run < ctx.runs; run++) {
      const blobs = Array.from({ length: suite.count }, () => jsonish(suite.size));
      const megabytes = blobs.reduce((sum, blob) => sum + blob.byteLength, 0) / 1e6;

      const casDir = join(ctx.tmpDir, `cas-${run}`);
      const store = await openFsBlobStore(casDir);
      const hashes = new Array<BlobHash>(blobs.length);
      const put = async (blob: Uint8Array, index: number): Promise<void> => {
        hashes[index] = await store.put(blob);
      };
      rates.casPut.push(megabytes / (await timed(() => inParallel(blobs, put))));
      rates.casGet.push(megabytes / (await timed(() => inParallel(hashes, (hash) => store.get(hash)))));
      await store.close();
      await rm(casDir, { recursive: true, force: true });

      if (packed) {
        const packDir = join(ctx.tmpDir, `pack-${run}`);
        const packStore = await openFsBlobStore(packDir);
        let packHashes: BlobHash[] = [];
        const cpu = process.cpuUsage();
        rates.packPut.push(
          megabytes /
            (await timed(async () => {
              packHashes = await packStore.putMany(blobs);
            })),
        );
        const used = process.cpuUsage(cpu);
        rates.packPutCpu.push((used.user + used.system) / blobs.length);
        const reader = await openFsBlobStore(packDir); // cold: no frame cached yet
        rates.packGet.push(
          megabytes / (await timed(() => inParallel(packHashes, (hash) => reader.get(hash)))),
        );
        await rm(packDir, { recursive: true, force: true });
      }

      const rawDir = join(ctx.tmpDir, `raw-${run}`);
      await mkdir(join(rawDir, 'tmp'), { recursive: true });
      await mkdir(join(rawDir, 'files'), { recursive: true });
      rates.rawPut.push(
        megabytes / (await timed(() => inParallel(blobs, (blob, i) => rawPut(rawDir, i, blob)))),
      );
      rates.rawGet.push(
        megabytes /
          (await timed(() => inParallel(blobs, (_, i) => readFile(join(rawDir, 'files', String(i)))))),
      );
      await rm(rawDir, { recursive: true, force: true });
      ctx.log(
        `${suite.label} run ${run + 1}/${ctx.runs}: put ${rates.casPut.at(-1)!.toFixed(1)} MB/s, get ${rates.casGet.at(-1)!.toFixed(1)} MB/s${packed ? `, putMany ${rates.packPut.at(-1)!.toFixed(1)} MB/s (${rates.packPutCpu.at(-1)!.toFixed(1)} µs CPU per blob), get from the pack ${rates.packGet.at(-1)!.toFixed(1)} MB/s` : ''}`,
      );
    }
    const what = `${suite.count} × ${suite.label}, ${IN_FLIGHT} in flight`;
    const rawPutName = `raw fs durable write (${what})`;
    const rawGetName = `raw fs read (${what})`;
    rows.push(
      { name: `CAS put (${what})`, unit: 'MB/s', median: median(rates.casPut), peer: rawPutName },
      { name: `CAS get, verified (${what})`, unit: 'MB/s', median: median(rates.casGet), peer: rawGetName },
    );
    if (packed) {
      const one = `${suite.count} × ${suite.label} in one call`;
      rows.push(
        { name: `CAS putMany (${one})`, unit: 'MB/s', median: median(rates.packPut), peer: rawPutName },
        { name: `CAS putMany CPU per blob (${one})`, unit: 'µs', median: median(rates.packPutCpu) },
        {
          name: `CAS get from the pack, verified (${suite.count} × ${suite.label}, ${IN_FLIGHT} in flight)`,
          unit: 'MB/s',
          median: median(rates.packGet),
          peer: rawGetName,
        },
      );
    }
    rows.push(
      { name: rawPutName, unit: 'MB/s', median: median(rates.rawPut) },
      { name: rawGetName, unit: 'MB/s', median: median(rates.rawGet) },
    );
  }
  return rows;
}

/** Unique JSON-ish text of about `size` bytes: chat messages with a random id. */
function jsonish(size: number): Uint8Array {
  const words = [
    'the',
    'model',
    'called',
    'get_weather',
    'with',
    'city',
    'Paris',
    'and',
    'got',
    'sunny',
    '21°C',
  ];
  const parts = [`{"id":"${randomBytes(16).toString('hex')}","messages":[`];
  let length = parts[0]!.length;
  for (let i = 0; length < size; i++) {
    const text = Array.from({ length: 8 }, () => words[Math.floor(Math.random() * words.length)]).join(' ');
    const part = `{"role":"${i % 2 ? 'assistant' : 'user'}","n":${i},"content":"${text} ${Math.random()}"},`;
    parts.push(part);
    length += part.length;
  }
  return Buffer.from(`${parts.join('').slice(0, size - 2)}]}`);
}

async function rawPut(dir: string, index: number, bytes: Uint8Array): Promise<void> {
  const temp = join(dir, 'tmp', `${index}.tmp`);
  const handle = await open(temp, 'wx');
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, join(dir, 'files', String(index)));
  const directory = await open(join(dir, 'files'), 'r');
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}

async function timed(work: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await work();
  return (performance.now() - start) / 1000;
}

async function inParallel<T>(
  items: readonly T[],
  fn: (item: T, index: number) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      await fn(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
}
