import {
  type BlobHash,
  type ErrorInfo,
  isBlobPointer,
  type RewindEvent,
  type RunFinished,
  type RunStarted,
  type StepFinished,
  type StepKind,
  type StepStarted,
  type Usage,
} from '@rewind/schema';
import type { RunRecord } from '@rewind/store';
import type { TapeData } from '../tape.ts';
import { ReplayError } from './errors.ts';
import type { RecordingSource } from './source.ts';

// A recorded run loaded for replay: every step with its outcome (payloads read and their parts
// inlined), the order in which steps finished, the input, the output and the tape. Outcomes are
// read before the agent starts, because a replayed call must be answered synchronously when the
// recorded call was synchronous. Requests are only needed for divergence diffs and fork edits:
// when the source can tell which blobs it lacks, they are checked but read only on demand
// (`requestOf`), which halves what a replay reads. A blob that is missing is collected, not
// thrown at once, so that the error lists every one.

export interface RecordedStep {
  seq: number;
  stepId: string;
  parentStepId: string | null;
  kind: StepKind;
  name: string;
  callKey: string;
  requestHash: string;
  /** The request blob (with its parts); read on demand with `Recording.requestOf`. */
  requestRef: { hash: BlobHash; parts?: string[] | undefined };
  status: 'ok' | 'error' | 'running';
  /** The normalized response (ok), or the body recorded with an error. */
  response: unknown;
  error: ErrorInfo | undefined;
  usage: Usage | undefined;
  stream: { offsetsMs: number[] } | undefined;
  /** Position among the run's step.finished events in time order; -1 when it never finished. */
  finishOrder: number;
  /** Other steps started or finished while this one ran: it was certainly asynchronous. */
  interleaved: boolean;
}

export interface Recording {
  run: RunRecord;
  agent: string;
  /** The arguments the agent was called with. */
  args: unknown[];
  status: 'ok' | 'error' | 'cancelled';
  output: unknown;
  error: ErrorInfo | undefined;
  tape: TapeData | undefined;
  /** In seq order. */
  steps: RecordedStep[];
  byKey: Map<string, RecordedStep>;
  /** A step's recorded request (normalized, parts inlined). */
  requestOf(step: RecordedStep): Promise<unknown>;
}

const READ_CONCURRENCY = 32;
const decoder = new TextDecoder('utf-8', { fatal: true });

/** Reads payloads with their parts inlined, each blob once, noting the ones the source lacks. */
class PayloadReader {
  readonly #source: RecordingSource;
  readonly #cache = new Map<string, Promise<unknown>>();
  readonly missing = new Set<string>();
  constructor(source: RecordingSource) {
    this.#source = source;
  }

  read(hash: BlobHash): Promise<unknown> {
    let value = this.#cache.get(hash);
    if (value === undefined) {
      value = this.#load(hash);
      this.#cache.set(hash, value);
    }
    return value;
  }

  async #load(hash: BlobHash): Promise<unknown> {
    const bytes = await this.#source.getBlob(hash);
    if (bytes === undefined) {
      this.missing.add(hash);
      return undefined;
    }
    let value: unknown;
    try {
      value = JSON.parse(decoder.decode(bytes));
    } catch (cause) {
      throw new ReplayError(
        'payload_unreadable',
        `blob ${hash} is not a JSON payload; the recording cannot be replayed`,
        {
          cause,
        },
      );
    }
    return this.#inline(value);
  }

  async #inline(value: unknown): Promise<unknown> {
    if (typeof value !== 'object' || value === null) return value;
    if (isBlobPointer(value)) return this.read(value.$blob);
    if (Array.isArray(value)) return Promise.all(value.map((item) => this.#inline(item)));
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[key] = await this.#inline(item);
    return out;
  }
}

async function inBatches<T>(items: readonly T[], work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, items.length) }, worker));
}

function byTime(a: RewindEvent, b: RewindEvent): number {
  if (a.time !== b.time) return a.time < b.time ? -1 : 1;
  return a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0;
}

/** Loads `runId` from `source`, or fails with a ReplayError saying why it cannot be replayed. */
export async function loadRecording(source: RecordingSource, runId: string): Promise<Recording> {
  const run = await source.getRun(runId);
  if (run === undefined)
    throw new ReplayError(
      'run_not_found',
      `no run ${runId} in ${source.location} — check the id with \`rewind runs\`, or point --store at the store that recorded it`,
    );
  if (run.status === 'incomplete')
    throw new ReplayError(
      'run_incomplete',
      `run ${runId} has not finished (its run.finished event never arrived), so there is no complete recording to replay`,
    );
  const events = await source.readEvents(runId);
  let started: RunStarted | undefined;
  let finished: RunFinished | undefined;
  const starts = new Map<string, StepStarted>();
  const finishes = new Map<string, StepFinished>();
  for (const event of events) {
    if (event.type === 'run.started') started = event;
    else if (event.type === 'run.finished') finished = event;
    else if (event.type === 'step.started') starts.set(event.stepId, event);
    else finishes.set(event.stepId, event);
  }
  if (started === undefined || finished === undefined)
    throw new ReplayError('run_incomplete', `run ${runId} lacks its run.started or run.finished event`);

  const timeline = events.filter((e) => e.type === 'step.started' || e.type === 'step.finished').sort(byTime);
  const position = new Map<RewindEvent, number>();
  for (const [i, event] of timeline.entries()) position.set(event, i);
  const finishOrder = new Map<string, number>();
  let order = 0;
  for (const event of timeline) if (event.type === 'step.finished') finishOrder.set(event.stepId, order++);

  const reader = new PayloadReader(source);
  const read = (ref: { hash: BlobHash } | undefined): Promise<unknown> =>
    ref === undefined ? Promise.resolve(undefined) : reader.read(ref.hash);

  const steps: RecordedStep[] = [...starts.values()]
    .sort((a, b) => a.seq - b.seq)
    .map((start) => {
      const finish = finishes.get(start.stepId);
      const startAt = position.get(start) ?? 0;
      const finishAt = finish === undefined ? startAt : (position.get(finish) ?? startAt);
      return {
        seq: start.seq,
        stepId: start.stepId,
        parentStepId: start.parentStepId ?? null,
        kind: start.kind,
        name: start.name,
        callKey: start.callKey,
        requestHash: start.requestHash,
        requestRef: start.request,
        status: finish === undefined ? 'running' : finish.status,
        response: undefined,
        error: finish?.status === 'error' ? finish.error : undefined,
        usage: finish?.usage,
        stream: finish?.stream === undefined ? undefined : { offsetsMs: finish.stream.offsetsMs },
        finishOrder: finishOrder.get(start.stepId) ?? -1,
        interleaved: finishAt - startAt > 1,
      };
    });

  const input = read(started.input);
  const output = finished.status === 'ok' ? read(finished.output) : Promise.resolve(undefined);
  const tape = read(finished.tape);
  const requestBlobs = steps.flatMap((step) => [
    step.requestRef.hash,
    ...((step.requestRef.parts ?? []) as BlobHash[]),
  ]);
  const lazyRequests = source.missingBlobs !== undefined;
  const requestsMissing = lazyRequests
    ? source.missingBlobs!([...new Set(requestBlobs)])
    : Promise.resolve([]);
  await inBatches(steps, async (step) => {
    if (!lazyRequests) await reader.read(step.requestRef.hash);
    step.response = await read(finishes.get(step.stepId)?.response);
  });
  const [inputValue, outputValue, tapeValue] = await Promise.all([input, output, tape]);
  for (const hash of await requestsMissing) reader.missing.add(hash);
  if (reader.missing.size > 0) {
    const missing = [...reader.missing].sort();
    throw new ReplayError(
      'blobs_missing',
      `run ${runId} cannot be replayed: ${missing.length} blob(s) it references are missing from ${source.location}: ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', …' : ''} — import the run again (with its blobs) or restore the blob store`,
      { missing },
    );
  }
  // The input is the single argument, the array of several (`rewind.arguments` says how many), or null for none.
  const arity = started.attributes?.['rewind.arguments'];
  const args =
    typeof arity === 'number' && arity > 1 && Array.isArray(inputValue)
      ? inputValue
      : inputValue === null
        ? []
        : [inputValue];
  return {
    run,
    agent: started.agent,
    args,
    status: finished.status,
    output: outputValue,
    error: finished.status === 'ok' ? undefined : finished.error,
    tape: tapeValue as TapeData | undefined,
    steps,
    byKey: new Map(steps.map((step) => [step.callKey, step])),
    requestOf: (step) => reader.read(step.requestRef.hash),
  };
}
