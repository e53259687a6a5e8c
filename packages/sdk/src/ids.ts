import { originals } from './originals.ts';

// UUIDv7 (RFC 9562) without a syscall per id: random bits come from a pooled buffer refilled
// 4 KiB at a time, and ids made within one millisecond stay ordered (the 12-bit rand_a field
// is a counter that starts at a random value each millisecond, method 1 of RFC 9562 §6.2).

const POOL_SIZE = 4096;
const pool = Buffer.allocUnsafe(POOL_SIZE);
let poolPos = POOL_SIZE;

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

let lastMs = -1;
let counter = 0;

function randomOffset(bytes: number): number {
  if (poolPos + bytes > POOL_SIZE) {
    originals.randomFillSync(pool);
    poolPos = 0;
  }
  const at = poolPos;
  poolPos += bytes;
  return at;
}

/** A UUIDv7 for epoch milliseconds `ms` (default now); ids from one process never go backwards. */
export function uuidv7(ms: number = originals.dateNow()): string {
  let t = Math.floor(ms);
  const r = randomOffset(10);
  if (t > lastMs) {
    lastMs = t;
    counter = pool[r]! | ((pool[r + 1]! & 0x07) << 8); // start in the lower half: room to count up
  } else {
    t = lastMs;
    counter++;
    if (counter > 0xfff) {
      t = ++lastMs;
      counter = 0;
    }
  }
  const hi = Math.floor(t / 0x1000000); // top 24 bits of the 48-bit time
  const lo = t % 0x1000000;
  return (
    HEX[(hi >>> 16) & 0xff]! +
    HEX[(hi >>> 8) & 0xff]! +
    HEX[hi & 0xff]! +
    HEX[(lo >>> 16) & 0xff]! +
    '-' +
    HEX[(lo >>> 8) & 0xff]! +
    HEX[lo & 0xff]! +
    '-' +
    HEX[0x70 | (counter >>> 8)]! +
    HEX[counter & 0xff]! +
    '-' +
    HEX[0x80 | (pool[r + 2]! & 0x3f)]! +
    HEX[pool[r + 3]!]! +
    '-' +
    HEX[pool[r + 4]!]! +
    HEX[pool[r + 5]!]! +
    HEX[pool[r + 6]!]! +
    HEX[pool[r + 7]!]! +
    HEX[pool[r + 8]!]! +
    HEX[pool[r + 9]!]!
  );
}
