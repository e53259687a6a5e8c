import { type Attributes, callKeySegment, type StepKind } from '@rewind/schema';
import type {
  ActiveStep,
  CaptureRuntime,
  FailExtras,
  FinishExtras,
  ReplayDirective,
  StepOptions,
} from './capture-api.ts';
import { epochMsOf, monotonicNow } from './clock.ts';
import { activeFrame, als, type Frame, type OpenStep, type RunState, type StepNode } from './context.ts';
import { messageOf } from './errors.ts';
import { uuidv7 } from './ids.ts';
import type { Payload } from './json.ts';
import { captureError } from './records.ts';
import {
  serializeModelRequest,
  serializeModelResponse,
  serializePlain,
  serializePlainRequest,
} from './split.ts';

// The capture runtime (capture-api.ts): what the generic wrappers and the framework adapters
// call. The hot path is startStep → finish/fail: read the AsyncLocalStorage frame, allocate
// seq, ordinal and ids, serialize the payload synchronously to canonical JSON, push one record.
// Nothing here awaits, throws into the caller, or touches the store.

const MAX_NAME = 200;

/** `kind:escaped-name#` per (kind, name): call keys are built by concatenation. */
const prefixes = new Map<string, string>();

function callKeyPrefix(kind: StepKind, name: string): string {
  const key = `${kind}\u0000${name}`;
  let prefix = prefixes.get(key);
  if (prefix === undefined) {
    const segment = callKeySegment(kind, name, 0);
    prefix = segment.slice(0, -1);
    if (prefixes.size >= 10_000) prefixes.clear();
    prefixes.set(key, prefix);
  }
  return prefix;
}

function stepName(name: unknown): string {
  const text = typeof name === 'string' ? name : String(name);
  if (text === '') return 'unnamed';
  return text.length > MAX_NAME ? text.slice(0, MAX_NAME) : text;
}

export function serializeRequest(kind: StepKind, request: unknown): Payload {
  return kind === 'model' ? serializeModelRequest(request) : serializePlainRequest(request);
}

export function serializeResponse(kind: StepKind, response: unknown): Payload {
  return kind === 'model' ? serializeModelResponse(response) : serializePlain(response);
}

export class StepHandle implements ActiveStep, StepNode, OpenStep {
  readonly stepId: string;
  readonly seq: number;
  readonly callKey: string;
  readonly kind: StepKind;
  readonly name: string;
  readonly #run: RunState;
  readonly #startMono: number;
  replay: ReplayDirective | undefined = undefined;
  #children: Map<string, number> | undefined;
  #frame: Frame | undefined;
  #done = false;

  constructor(
    run: RunState,
    stepId: string,
    seq: number,
    callKey: string,
    kind: StepKind,
    name: string,
    startMono: number,
  ) {
    this.#run = run;
    this.name = name;
    this.stepId = stepId;
    this.seq = seq;
    this.callKey = callKey;
    this.kind = kind;
    this.name = name;
    this.#startMono = startMono;
  }

  children(): Map<string, number> {
    this.#children ??= new Map();
    return this.#children;
  }

  get frame(): Frame {
    this.#frame ??= { run: this.#run, step: this };
    return this.#frame;
  }

  run<T>(fn: () => T): T {
    return als.run(this.frame, fn);
  }

  elapsedMs(): number {
    return monotonicNow() - this.#startMono;
  }

  finish(response: unknown, extras?: FinishExtras): void {
    if (this.#done) return;
    this.#done = true;
    const run = this.#run;
    run.open.delete(this);
    if (run.ended) return;
    try {
      const stream = extras?.stream;
      run.pipeline.push({
        type: 'step.finished',
        runId: run.runId,
        mono: monotonicNow(),
        stepId: this.stepId,
        kind: this.kind,
        name: this.name,
        status: 'ok',
        response: serializeResponse(this.kind, response === undefined ? null : response),
        error: undefined,
        usage: extras?.usage,
        stream: stream === undefined ? undefined : { offsetsMs: [...stream.offsetsMs] },
      });
    } catch {
      // never into the agent
    }
  }

  fail(error: unknown, extras?: FailExtras): void {
    if (this.#done) return;
    this.#done = true;
    const run = this.#run;
    run.open.delete(this);
    if (run.ended) return;
    run.errors++;
    try {
      run.pipeline.push({
        type: 'step.finished',
        runId: run.runId,
        mono: monotonicNow(),
        stepId: this.stepId,
        kind: this.kind,
        name: this.name,
        status: 'error',
        response:
          extras === undefined || extras.response === undefined
            ? undefined
            : serializeResponse(this.kind, extras.response),
        error: captureError(error),
        usage: undefined,
        stream: undefined,
      });
    } catch {
      // never into the agent
    }
  }

  /** The run is ending while this step still runs: it is finished as an error (it never finished). */
  abandon(): void {
    if (this.#done) return;
    this.#done = true;
    this.#run.errors++;
    this.#run.pipeline.push({
      type: 'step.finished',
      runId: this.#run.runId,
      mono: monotonicNow(),
      stepId: this.stepId,
      kind: this.kind,
      name: this.name,
      status: 'error',
      response: undefined,
      error: { type: 'Unfinished', message: 'the run ended before this step finished' },
      usage: undefined,
      stream: undefined,
    });
  }
}

/** Starts a step in `frame` (the hot path). Throws only on an SDK bug; callers catch. */
export function beginStep(
  frame: Frame,
  kind: StepKind,
  name: string,
  request: unknown,
  attributes?: Attributes,
): StepHandle | undefined {
  const run = frame.run;
  if (run.ended || !run.pipeline.accepting) return undefined;
  name = stepName(name);
  const parent = frame.step;
  const prefix = callKeyPrefix(kind, name);
  const siblings = parent === undefined ? run.children : parent.children();
  const ordinal = siblings.get(prefix) ?? 0;
  siblings.set(prefix, ordinal + 1);
  const callKey = parent === undefined ? prefix + ordinal : `${parent.callKey}/${prefix}${ordinal}`;
  const seq = ++run.seq;
  const mono = monotonicNow();
  const stepId = uuidv7(epochMsOf(mono));
  const step = new StepHandle(run, stepId, seq, callKey, kind, name, mono);
  const session = run.replay;
  let payload: Payload;
  if (session === undefined) {
    payload = serializeRequest(kind, request);
  } else {
    payload = serializeRequest(kind, session.requestFor(callKey, kind, request));
    step.replay = session.decide(step, payload);
  }
  run.open.add(step);
  run.pipeline.push({
    type: 'step.started',
    runId: run.runId,
    mono,
    stepId,
    seq,
    parentStepId: parent === undefined ? null : parent.stepId,
    kind,
    name,
    callKey,
    request: payload,
    attributes,
  });
  return step;
}

/** Starts a step under the current step or run; undefined outside a run or when recording is off. Never throws. */
export function startStep(options: StepOptions): ActiveStep | undefined {
  let frame: Frame | undefined;
  try {
    frame = activeFrame();
    if (frame === undefined) return undefined;
    return beginStep(frame, options.kind, options.name, options.request, options.attributes);
  } catch (error) {
    try {
      frame?.run.pipeline.reporter.report('internal', `capture failed: ${messageOf(error)}`, error);
    } catch {
      // never into the agent
    }
    return undefined;
  }
}

/** The id of the run the caller is in (recorded or not yet ended), or undefined outside runs. */
export function currentRunId(): string | undefined {
  return activeFrame()?.run.runId;
}

/** True inside a run that is being recorded. */
export function isRecording(): boolean {
  const frame = activeFrame();
  return frame?.run.pipeline.accepting === true;
}

export const captureRuntime: CaptureRuntime = { startStep, isRecording };

function isThenable(value: unknown): value is PromiseLike<unknown> {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return false;
  try {
    return typeof (value as { then?: unknown }).then === 'function';
  } catch {
    return false;
  }
}

/**
 * Calls `fn` with `thisArg` and `args` inside `frame`, reporting its outcome to `onOk` /
 * `onError`, and returns exactly what the caller would have got: the same value, the same
 * thrown error; for a native promise a chained promise settling the same way (so unhandled
 * rejections stay unhandled); for any other thenable the object itself (observed with .then).
 */
export function invokeIn<R>(
  frame: Frame,
  fn: (...args: unknown[]) => R,
  thisArg: unknown,
  args: unknown[],
  onOk: (value: unknown) => void,
  onError: (error: unknown) => void,
): R {
  let result: R;
  try {
    result = als.run(frame, Reflect.apply, fn, thisArg, args) as R;
  } catch (error) {
    onError(error);
    throw error;
  }
  if (!isThenable(result)) {
    onOk(result);
    return result;
  }
  if (Object.getPrototypeOf(result) === Promise.prototype) {
    return (result as unknown as Promise<unknown>).then(
      (value) => {
        onOk(value);
        return value;
      },
      (error: unknown) => {
        onError(error);
        throw error;
      },
    ) as R;
  }
  try {
    (result as PromiseLike<unknown>).then(onOk, onError);
  } catch (error) {
    onError(error);
  }
  return result;
}
