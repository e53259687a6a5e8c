import nodeCrypto from 'node:crypto';

// The real clock, random and id functions, captured when the SDK is first loaded, before the
// tape patches the globals (tape.ts). The SDK itself only ever calls these, so it never records
// its own reads on a run's tape. They are kept on a global symbol so that a second copy of the
// SDK in the same process gets the true originals too, not the first copy's patched functions.

export interface Originals {
  readonly Date: DateConstructor;
  readonly dateNow: () => number;
  readonly performanceNow: () => number;
  readonly mathRandom: () => number;
  readonly webRandomUUID: () => `${string}-${string}-${string}-${string}-${string}`;
  readonly nodeRandomUUID: typeof nodeCrypto.randomUUID;
  readonly randomFillSync: typeof nodeCrypto.randomFillSync;
}

const KEY = Symbol.for('rewind.sdk.originals');
const holder = globalThis as unknown as Record<symbol, Originals | undefined>;

function capture(): Originals {
  const webCrypto = globalThis.crypto;
  const perf = globalThis.performance;
  return Object.freeze({
    Date: globalThis.Date,
    dateNow: globalThis.Date.now,
    performanceNow: perf.now.bind(perf),
    mathRandom: Math.random,
    webRandomUUID: webCrypto.randomUUID.bind(webCrypto),
    nodeRandomUUID: nodeCrypto.randomUUID,
    randomFillSync: nodeCrypto.randomFillSync,
  });
}

holder[KEY] ??= capture();

export const originals: Originals = holder[KEY];
export const OriginalDate = originals.Date;
export const dateNow = originals.dateNow;
export const performanceNow = originals.performanceNow;
