import { randomBytes } from 'node:crypto';
import {
  type Attributes,
  type BlobHash,
  type BlobPointer,
  type BlobRef,
  blobHashOf,
  blobPointer,
  canonicalJson,
  type ErrorInfo,
  type ForkEdit,
  formatCallKey,
  isBlobPointer,
  jsonHash,
  type Label,
  type ReplayMode,
  type RewindEvent,
  type RunFinished,
  type RunStarted,
  SCHEMA_VERSION,
  type StepFinished,
  type StepKind,
  type StepStarted,
  type Usage,
} from '@rewind/schema';
import type { ShowJson, ShowStepJson } from './run-view.ts';

// Builds the events and blobs of one run by hand, on a virtual clock (milliseconds from the run's
// start). The demo writes such a run into a store; scripts/make-golden-traces.ts freezes several
// into fixtures/traces/v1/. The builder also keeps its own model of the run, so it can say what
// `rewind show --json` must print for it without asking a store (`expectedShow`).

export interface TraceBuilderOptions {
  runId: string;
  /** The run's start, epoch milliseconds. Event times are `start + at`. */
  start: number;
  /** A seed makes every generated id reproducible (golden traces); without one ids are random. */
  seed?: number;
}

export interface StepHandle {
  readonly stepId: string;
  readonly seq: number;
  readonly callKey: string;
}

interface StepModel {
  started: StepStarted;
  request: unknown;
  finished?: StepFinished;
  response?: unknown;
}

const encoder = new TextEncoder();

/** A small deterministic PRNG (mulberry32), for reproducible ids. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A UUIDv7 for time `ms`; its random bits come from `random` (or the OS when absent). */
export function uuidv7(ms: number, random?: () => number): string {
  const bytes =
    random === undefined ? randomBytes(16) : Uint8Array.from({ length: 16 }, () => (random() * 256) | 0);
  let t = Math.max(0, Math.floor(ms));
  for (let i = 5; i >= 0; i--) {
    bytes[i] = t % 256;
    t = Math.floor(t / 256);
  }
  bytes[6] = (bytes[6]! & 0x0f) | 0x70;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = Buffer.from(bytes).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export class TraceBuilder {
  readonly runId: string;
  readonly start: number;
  /** Every event, in the order the recorder would have emitted them. */
  readonly events: RewindEvent[] = [];
  /** Every payload blob: hash → the exact bytes (canonical JSON). */
  readonly blobs = new Map<BlobHash, Uint8Array>();
  readonly #random: (() => number) | undefined;
  readonly #parts = new Map<BlobHash, unknown>();
  readonly #steps = new Map<string, StepModel>();
  readonly #ordinals = new Map<string, number>();
  #runStarted: RunStarted | undefined;
  #input: unknown;
  #runFinished: RunFinished | undefined;
  #output: unknown;
  #seq = 0;

  constructor(options: TraceBuilderOptions) {
    this.runId = options.runId;
    this.start = options.start;
    this.#random = options.seed === undefined ? undefined : prng(options.seed);
  }

  /** A fresh UUIDv7 at virtual time `at`. */
  id(at: number): string {
    return uuidv7(this.start + at, this.#random);
  }

  time(at: number): string {
    return new Date(this.start + at).toISOString();
  }

  /**
   * Stores `value` as a blob of its own and returns a `{"$blob": …}` pointer to put inside a
   * payload (a part stored once, e.g. a system prompt resent on every model call).
   */
  part(value: unknown): BlobPointer {
    const hash = this.#store(value);
    this.#parts.set(hash, value);
    return blobPointer(hash);
  }

  /** Stores a payload (which may hold parts) and returns its reference. */
  payload(value: unknown): BlobRef {
    const hash = this.#store(value);
    const size = this.blobs.get(hash)!.length;
    const parts = [...new Set(collectPointers(value))];
    return parts.length === 0 ? { hash, size } : { hash, size, parts };
  }

  /** Stores a JSON value as canonical JSON bytes under their hash. */
  #store(value: unknown): BlobHash {
    const bytes = encoder.encode(canonicalJson(value));
    const hash = blobHashOf(bytes);
    this.blobs.set(hash, bytes);
    return hash;
  }

  /** The payload with its parts inlined: what a reader sees. */
  inline(value: unknown): unknown {
    if (typeof value !== 'object' || value === null) return value;
    if (isBlobPointer(value)) return this.inline(this.#parts.get(value.$blob));
    if (Array.isArray(value)) return value.map((item) => this.inline(item));
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, this.inline(item)]));
  }

  startRun(options: {
    agent: string;
    input: unknown;
    at?: number;
    attributes?: Attributes;
    sdk?: { name: string; version: string };
    replayOf?: { runId: string; mode: ReplayMode };
    forkOf?: { runId: string; atSeq: number; edit: ForkEdit };
  }): void {
    const at = options.at ?? 0;
    const event: RunStarted = {
      schemaVersion: SCHEMA_VERSION,
      eventId: this.id(at),
      type: 'run.started',
      runId: this.runId,
      time: this.time(at),
      agent: options.agent,
      input: this.payload(options.input),
      ...(options.attributes === undefined ? {} : { attributes: options.attributes }),
      ...(options.sdk === undefined ? {} : { sdk: options.sdk }),
      ...(options.replayOf === undefined ? {} : { replayOf: options.replayOf }),
      ...(options.forkOf === undefined ? {} : { forkOf: options.forkOf }),
    };
    this.#runStarted = event;
    this.#input = this.inline(options.input);
    this.events.push(event);
  }

  startStep(options: {
    kind: StepKind;
    name: string;
    at: number;
    request: unknown;
    parent?: StepHandle | null;
    attributes?: Attributes;
  }): StepHandle {
    const parent = options.parent ?? null;
    const ordinalKey = `${parent?.stepId ?? ''}\u0000${options.kind}\u0000${options.name}`;
    const ordinal = this.#ordinals.get(ordinalKey) ?? 0;
    this.#ordinals.set(ordinalKey, ordinal + 1);
    const request = this.inline(options.request);
    const event: StepStarted = {
      schemaVersion: SCHEMA_VERSION,
      eventId: this.id(options.at),
      type: 'step.started',
      runId: this.runId,
      time: this.time(options.at),
      stepId: this.id(options.at),
      seq: ++this.#seq,
      parentStepId: parent?.stepId ?? null,
      kind: options.kind,
      name: options.name,
      callKey: formatCallKey(parent?.callKey ?? null, options.kind, options.name, ordinal),
      request: this.payload(options.request),
      requestHash: jsonHash(request),
      ...(options.attributes === undefined ? {} : { attributes: options.attributes }),
    };
    this.#steps.set(event.stepId, { started: event, request });
    this.events.push(event);
    return { stepId: event.stepId, seq: event.seq, callKey: event.callKey };
  }

  finishStep(
    step: StepHandle,
    options: {
      at: number;
      response: unknown;
      label?: Label;
      usage?: Usage;
      stream?: { chunks: number; offsetsMs: number[] };
    },
  ): void {
    const response = this.inline(options.response);
    const event: StepFinished = {
      schemaVersion: SCHEMA_VERSION,
      eventId: this.id(options.at),
      type: 'step.finished',
      runId: this.runId,
      time: this.time(options.at),
      stepId: step.stepId,
      status: 'ok',
      label: options.label ?? 'recorded',
      response: this.payload(options.response),
      responseHash: jsonHash(response),
      ...(options.usage === undefined ? {} : { usage: options.usage }),
      ...(options.stream === undefined ? {} : { stream: options.stream }),
    };
    this.#finish(step, event, response);
  }

  failStep(
    step: StepHandle,
    options: { at: number; error: ErrorInfo; response?: unknown; label?: Label; usage?: Usage },
  ): void {
    const response = options.response === undefined ? undefined : this.inline(options.response);
    const event: StepFinished = {
      schemaVersion: SCHEMA_VERSION,
      eventId: this.id(options.at),
      type: 'step.finished',
      runId: this.runId,
      time: this.time(options.at),
      stepId: step.stepId,
      status: 'error',
      label: options.label ?? 'recorded',
      error: options.error,
      ...(options.response === undefined
        ? {}
        : { response: this.payload(options.response), responseHash: jsonHash(response) }),
      ...(options.usage === undefined ? {} : { usage: options.usage }),
    };
    this.#finish(step, event, response);
  }

  #finish(step: StepHandle, event: StepFinished, response: unknown): void {
    const model = this.#steps.get(step.stepId);
    if (model === undefined) throw new Error(`step ${step.stepId} was not started by this builder`);
    model.finished = event;
    model.response = response;
    this.events.push(event);
  }

  finishRun(options: { at: number; output: unknown }): void {
    this.#endRun({ status: 'ok', output: this.payload(options.output) }, options.at);
    this.#output = this.inline(options.output);
  }

  failRun(options: { at: number; error: ErrorInfo }): void {
    this.#endRun({ status: 'error', error: options.error }, options.at);
  }

  cancelRun(options: { at: number; error?: ErrorInfo }): void {
    this.#endRun(
      options.error === undefined ? { status: 'cancelled' } : { status: 'cancelled', error: options.error },
      options.at,
    );
  }

  #endRun(
    outcome:
      | { status: 'ok'; output: BlobRef }
      | { status: 'error'; error: ErrorInfo }
      | { status: 'cancelled'; error?: ErrorInfo },
    at: number,
  ): void {
    const steps = [...this.#steps.values()];
    const event = {
      schemaVersion: SCHEMA_VERSION,
      eventId: this.id(at),
      type: 'run.finished',
      runId: this.runId,
      time: this.time(at),
      ...outcome,
      counts: {
        steps: steps.length,
        errors: steps.filter((step) => step.finished?.status === 'error').length,
      },
    } as RunFinished;
    this.#runFinished = event;
    this.events.push(event);
  }

  /** What `rewind show <runId> --json` prints for this run, from the builder's own model. */
  expectedShow(options: { missing?: ReadonlySet<BlobHash> } = {}): ShowJson {
    const missing = options.missing ?? new Set<BlobHash>();
    const resolved = (ref: PayloadRef | undefined | null, value: unknown): unknown =>
      ref === undefined || ref === null || refersToMissing(ref, missing) ? null : value;
    const started = this.#runStarted;
    const finished = this.#runFinished;
    const error = finished !== undefined && 'error' in finished ? finished.error : undefined;
    const run: ShowJson['run'] = {
      id: this.runId,
      agent: started?.agent ?? null,
      status: finished?.status ?? 'incomplete',
      input: resolved(started?.input, this.#input),
      output: resolved(finished?.status === 'ok' ? finished.output : undefined, this.#output),
      ...(error === undefined ? {} : { error }),
      ...(started?.replayOf === undefined ? {} : { replayOf: started.replayOf }),
      ...(started?.forkOf === undefined ? {} : { forkOf: started.forkOf }),
    };
    const steps = [...this.#steps.values()]
      .sort((a, b) => a.started.seq - b.started.seq)
      .map(
        ({ started: step, request, finished: end, response }): ShowStepJson => ({
          seq: step.seq,
          stepId: step.stepId,
          parentStepId: step.parentStepId ?? null,
          kind: step.kind,
          name: step.name,
          callKey: step.callKey,
          status: end?.status ?? 'running',
          label: end?.label ?? null,
          request: resolved(step.request, request),
          response: resolved(end?.response, response),
          ...(end?.status === 'error' ? { error: end.error } : {}),
          startedAt: step.time,
          endedAt: end?.time ?? null,
        }),
      );
    return { run, steps };
  }
}

function collectPointers(value: unknown, out: BlobHash[] = []): BlobHash[] {
  if (typeof value !== 'object' || value === null) return out;
  if (isBlobPointer(value)) out.push(value.$blob);
  else for (const item of Array.isArray(value) ? value : Object.values(value)) collectPointers(item, out);
  return out;
}

/** A blob reference as the event types carry it (`parts` typed loosely there). */
interface PayloadRef {
  hash: BlobHash;
  parts?: readonly string[] | undefined;
}

function refersToMissing(ref: PayloadRef, missing: ReadonlySet<BlobHash>): boolean {
  return missing.has(ref.hash) || (ref.parts ?? []).some((part) => missing.has(part as BlobHash));
}
