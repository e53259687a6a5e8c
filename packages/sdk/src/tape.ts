import nodeCrypto from 'node:crypto';
import { syncBuiltinESMExports } from 'node:module';
import { als } from './context.ts';
import { originals } from './originals.ts';

// The tape (SPEC §5, "Non-determinism"): inside a run, reads of the clock (`Date.now()`,
// `new Date()`, `Date()`, `performance.now()`), of `Math.random()` and of `crypto.randomUUID()`
// (globalThis.crypto and node:crypto) go through the run's Tape. In record mode the tape reads
// the real value and appends it; in serve mode (replay) it hands back the recorded values in
// order, one stream per kind of read. Outside a run every patched function calls the original
// directly. The patches are installed once per process, by the first recorder that wants a tape.

export type TapeStream = 'now' | 'perf' | 'random' | 'uuid';

/** The stored form of a tape (the blob run.finished's `tape` points to). */
export interface TapeData {
  version: 1;
  /** Epoch milliseconds read through Date.now(), new Date() and Date(). */
  now: number[];
  /** performance.now() readings. */
  perf: number[];
  /** Math.random() results. */
  random: number[];
  /** crypto.randomUUID() results. */
  uuid: string[];
  /** Present when the run read more than the tape holds; later reads were not recorded. */
  truncated?: true;
}

export interface ServeOptions {
  /** Called when the code reads more values of a kind than were recorded; the live value is used. */
  onExhausted?: (stream: TapeStream) => void;
}

/** Reads recorded on one tape at most (all kinds together); later reads are live and not recorded. */
export const MAX_TAPE_ENTRIES = 1_000_000;

const LIVE: { [K in TapeStream]: () => TapeData[K][number] } = {
  now: () => originals.dateNow(),
  perf: () => originals.performanceNow(),
  random: () => originals.mathRandom(),
  uuid: () => originals.nodeRandomUUID(),
};

export class Tape {
  readonly mode: 'record' | 'serve';
  readonly #data: TapeData;
  readonly #cursor: Record<TapeStream, number> = { now: 0, perf: 0, random: 0, uuid: 0 };
  readonly #onExhausted: ((stream: TapeStream) => void) | undefined;
  #entries = 0;
  #exhausted = 0;

  private constructor(mode: 'record' | 'serve', data: TapeData, options: ServeOptions = {}) {
    this.mode = mode;
    this.#data = data;
    this.#onExhausted = options.onExhausted;
  }

  /** A tape that records every read. */
  static record(): Tape {
    return new Tape('record', { version: 1, now: [], perf: [], random: [], uuid: [] });
  }

  /** A tape that serves `data` back, read by read (replay). */
  static serve(data: TapeData, options: ServeOptions = {}): Tape {
    const copy: TapeData = {
      version: 1,
      now: [...(data.now ?? [])],
      perf: [...(data.perf ?? [])],
      random: [...(data.random ?? [])],
      uuid: [...(data.uuid ?? [])],
    };
    return new Tape('serve', copy, options);
  }

  now(): number {
    return this.#read('now');
  }
  perf(): number {
    return this.#read('perf');
  }
  random(): number {
    return this.#read('random');
  }
  uuid(): string {
    return this.#read('uuid');
  }

  /** Reads served live because the recording ran out (serve mode). */
  get exhausted(): number {
    return this.#exhausted;
  }

  /** Values recorded (record mode) or still to serve (serve mode). */
  get size(): number {
    const d = this.#data;
    const total = d.now.length + d.perf.length + d.random.length + d.uuid.length;
    if (this.mode === 'record') return total;
    const c = this.#cursor;
    return total - c.now - c.perf - c.random - c.uuid;
  }

  #read<K extends TapeStream>(stream: K): TapeData[K][number] {
    const values = this.#data[stream] as Array<TapeData[K][number]>;
    if (this.mode === 'serve') {
      const at = this.#cursor[stream];
      if (at < values.length) {
        this.#cursor[stream] = at + 1;
        return values[at]!;
      }
      this.#exhausted++;
      this.#onExhausted?.(stream);
      return LIVE[stream]() as TapeData[K][number];
    }
    const value = LIVE[stream]() as TapeData[K][number];
    if (this.#entries < MAX_TAPE_ENTRIES) {
      this.#entries++;
      values.push(value);
    } else {
      this.#data.truncated = true;
    }
    return value;
  }

  /** The recorded values (a snapshot). */
  toJSON(): TapeData {
    const d = this.#data;
    const data: TapeData = { version: 1, now: d.now, perf: d.perf, random: d.random, uuid: d.uuid };
    if (d.truncated === true) data.truncated = true;
    return data;
  }
}

/**
 * The tape of the run the caller is in, when it has one and has not ended. Reads made inside a
 * tool, model or retriever call are not the agent's: they belong to the call, whose outcome is
 * recorded (and served on replay, where the call's code does not run), so they are live and
 * untaped. Reads in the agent's own code and in chains (sub-agents) are taped.
 */
function currentTape(): Tape | undefined {
  const frame = als.getStore();
  if (frame === undefined) return undefined;
  const run = frame.run;
  if (run.ended) return undefined;
  const step = frame.step;
  return step === undefined || step.kind === 'chain' ? run.tape : undefined;
}

interface Installed {
  restore(): void;
}

let installed: Installed | undefined;

function makeDate(Original: DateConstructor): DateConstructor {
  // A function constructor (not a class) whose prototype IS the original Date.prototype: dates
  // made before patching stay `instanceof Date`, `class X extends Date` still works (new.target
  // is passed through with Reflect.construct), and `Date()` without new still returns a string.
  // biome-ignore lint/suspicious/noShadowRestrictedNames: the patched constructor must be named Date (Date.name)
  function Date(this: unknown, ...args: unknown[]): unknown {
    if (new.target === undefined) {
      const tape = currentTape();
      return tape === undefined ? Original() : new Original(tape.now()).toString();
    }
    if (args.length === 0) {
      const tape = currentTape();
      if (tape !== undefined) return Reflect.construct(Original, [tape.now()], new.target);
    }
    return Reflect.construct(Original, args, new.target);
  }
  const Patched = Date as unknown as DateConstructor;
  Object.defineProperty(Patched, 'prototype', { value: Original.prototype, writable: false });
  Object.defineProperty(Patched, 'length', { value: Original.length });
  Patched.parse = Original.parse;
  Patched.UTC = Original.UTC;
  Patched.now = function now(): number {
    const tape = currentTape();
    return tape === undefined ? originals.dateNow() : tape.now();
  };
  return Patched;
}

/**
 * Patches the globals so that reads inside a run go through its tape. Idempotent. Returns a
 * function that puts the originals back (tests use it; recorders leave the patches in place:
 * outside runs they only add a context lookup).
 */
export function installTape(): () => void {
  if (installed !== undefined) return installed.restore;
  const OriginalDate = originals.Date;
  const PatchedDate = makeDate(OriginalDate);
  const perf = globalThis.performance;
  const webCrypto = globalThis.crypto;
  const hadOwnPerfNow = Object.hasOwn(perf, 'now');
  const hadOwnWebUuid = Object.hasOwn(webCrypto, 'randomUUID');
  const previous = {
    Date: globalThis.Date,
    mathRandom: Math.random,
    perfNow: perf.now,
    webUuid: webCrypto.randomUUID,
    nodeUuid: nodeCrypto.randomUUID,
  };

  globalThis.Date = PatchedDate;
  OriginalDate.prototype.constructor = PatchedDate;
  perf.now = function now(): number {
    const tape = currentTape();
    return tape === undefined ? originals.performanceNow() : tape.perf();
  };
  Math.random = function random(): number {
    const tape = currentTape();
    return tape === undefined ? originals.mathRandom() : tape.random();
  };
  webCrypto.randomUUID = function randomUUID() {
    const tape = currentTape();
    return tape === undefined
      ? originals.webRandomUUID()
      : (tape.uuid() as ReturnType<typeof originals.webRandomUUID>);
  };
  nodeCrypto.randomUUID = function randomUUID(options?: nodeCrypto.RandomUUIDOptions) {
    const tape = currentTape();
    return tape === undefined
      ? originals.nodeRandomUUID(options)
      : (tape.uuid() as ReturnType<typeof nodeCrypto.randomUUID>);
  };
  // ESM named imports (`import { randomUUID } from 'node:crypto'`) are bindings of the builtin's
  // ESM facade: this makes them see the patched function too.
  syncBuiltinESMExports();

  const restore = (): void => {
    if (installed === undefined) return;
    installed = undefined;
    globalThis.Date = previous.Date;
    OriginalDate.prototype.constructor = OriginalDate;
    Math.random = previous.mathRandom;
    if (hadOwnPerfNow) perf.now = previous.perfNow;
    else delete (perf as { now?: unknown }).now;
    if (hadOwnWebUuid) webCrypto.randomUUID = previous.webUuid;
    else delete (webCrypto as { randomUUID?: unknown }).randomUUID;
    nodeCrypto.randomUUID = previous.nodeUuid;
    syncBuiltinESMExports();
  };
  installed = { restore };
  return restore;
}

export function isTapeInstalled(): boolean {
  return installed !== undefined;
}
