import type { ErrorInfo, ForkEdit, StepKind } from '@rewind/schema';
import { openStore, openStoreOptions, resolveCaptureConfig, type Store } from '@rewind/store';
import { inlineText } from '../json.ts';
import { agentNameOf, Recorder } from '../recorder.ts';
import { captureError } from '../records.ts';
import { serializePlain } from '../split.ts';
import { Tape } from '../tape.ts';
import { withPendingReplay } from './claim.ts';
import { diffJson } from './diff.ts';
import { type Divergence, ReplayDivergenceError, ReplayError } from './errors.ts';
import { labellingStore, type ReplayStepReport } from './labelling-store.ts';
import { setPointer } from './pointer.ts';
import { loadRecording, type RecordedStep, type Recording } from './recording.ts';
import { ReplaySession } from './session.ts';
import { type RecordingSource, storeSource } from './source.ts';

// `replay(agentFn, runId, options)`: re-executes the agent with the recording served back and
// records the result as a new run (docs/replay.md). The original run is never changed.

export type ReplayLabel = 'replayed' | 'cached' | 'live' | 'overridden' | 'diverged' | 'redacted';

export interface ForkOptions {
  /** The seq of the recorded step to edit. */
  atSeq: number;
  /** JSON-pointer sets applied to that step's normalized request; the call then runs (cached or live). */
  set?: { pointer: string; value: unknown }[];
  /** A replacement response (for tool and chain steps, the output itself is accepted too). */
  response?: unknown;
  /** A replacement error: a message, or `{type, message}`. */
  error?: string | { type?: string; message: string };
  /** How the run goes on after the fork step (default `cached`). */
  then?: 'cached' | 'live';
}

export interface ReplayOptions {
  /** Default `exact`. */
  mode?: 'exact' | 'cached';
  /** Where the recording is read from and the new run written: a Store, a directory or postgres:// URL (default: as the recorder's, `.rewind`). */
  store?: Store | string;
  /** Read the recording from here instead of the store (the new run still goes to the store). */
  source?: RecordingSource;
  fork?: ForkOptions;
  /** Called with each divergence as it is found. Must not throw. */
  onDivergence?: (error: ReplayDivergenceError) => void;
  /** Called for each step of the new run once its label is known (progress reporting). Must not throw. */
  onStep?: (step: ReplayStepReport) => void;
  /** How long served calls wait for an earlier recorded call that never comes, in ms (default 2000). */
  stallMs?: number;
  cwd?: string;
  env?: Record<string, string | undefined>;
}

export interface ReplayResult {
  /** The new run. */
  runId: string;
  /** The run replayed. */
  replayOf: string;
  forkOf?: { runId: string; atSeq: number; edit: ForkEdit };
  mode: 'exact' | 'cached' | 'fork';
  /** `reproduced`: no divergence and the same result; `diverged`: see `divergence`. */
  verdict: 'reproduced' | 'diverged';
  /** The first divergence (lowest seq), or null. */
  divergence: Divergence | null;
  divergences: Divergence[];
  labels: Record<ReplayLabel, number>;
  status: 'ok' | 'error' | 'cancelled';
  /** The new run's output (as JSON), or null when it failed. */
  output: unknown;
  error: ErrorInfo | null;
}

const DEFAULT_STALL_MS = 2000;

async function openTarget(options: ReplayOptions): Promise<{ store: Store; owned: boolean }> {
  if (typeof options.store === 'object') return { store: options.store, owned: false };
  const config = resolveCaptureConfig({
    store: options.store,
    enabled: true,
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    ...(options.env === undefined ? {} : { env: options.env }),
  });
  const destination = config.destination;
  if (destination.kind !== 'store')
    throw new ReplayError(
      'invalid_options',
      `replay reads runs from a local store, but an endpoint (${destination.endpoint}) is configured: pass the store (a directory or postgres:// URL) explicitly`,
    );
  return {
    store: await openStore(destination.config.store, openStoreOptions(destination.config)),
    owned: true,
  };
}

function editFor(step: RecordedStep, recordedRequest: unknown, fork: ForkOptions): ForkEdit {
  const edits = [
    fork.set !== undefined && fork.set.length > 0,
    fork.response !== undefined,
    fork.error !== undefined,
  ];
  const count = edits.filter(Boolean).length;
  if (count === 0)
    throw new ReplayError(
      'invalid_fork',
      `a fork needs an edit at seq ${fork.atSeq}: request sets (--set <pointer>=<json>), a replacement response (--response) or an error (--error)`,
    );
  if (count > 1)
    throw new ReplayError(
      'invalid_fork',
      'a fork edits one thing at its step: either request sets, or a replacement response, or an error',
    );
  const edit: ForkEdit = {};
  if (fork.set !== undefined && fork.set.length > 0) {
    let request = recordedRequest;
    // Every pointer must fit the recorded request: a typo fails now, not halfway through the run.
    for (const { pointer, value } of fork.set) request = setPointer(request, pointer, value);
    edit.set = fork.set.map(({ pointer, value }) => ({ pointer, value: value as never }));
  }
  if (fork.response !== undefined) edit.response = responseFor(step.kind, fork.response) as never;
  if (fork.error !== undefined)
    edit.error =
      typeof fork.error === 'string'
        ? { type: 'Error', message: fork.error }
        : { type: fork.error.type ?? 'Error', message: fork.error.message };
  edit.then = fork.then ?? 'cached';
  return edit;
}

function responseFor(kind: StepKind, response: unknown): unknown {
  if (kind !== 'tool' && kind !== 'chain') return response;
  const isOutput =
    typeof response === 'object' &&
    response !== null &&
    !Array.isArray(response) &&
    Object.keys(response).length === 1 &&
    'output' in response;
  return isOutput ? response : { output: response };
}

function forkStep(recording: Recording, fork: ForkOptions): RecordedStep {
  if (!Number.isInteger(fork.atSeq) || fork.atSeq < 1)
    throw new ReplayError('invalid_fork', `--at must be a step's seq (an integer from 1), not ${fork.atSeq}`);
  const step = recording.steps.find((s) => s.seq === fork.atSeq);
  if (step === undefined)
    throw new ReplayError(
      'invalid_fork',
      `run ${recording.run.id} has no step ${fork.atSeq} (it has ${recording.steps.length} steps) — see \`rewind show ${recording.run.id}\``,
    );
  return step;
}

/** The value as stored (JSON with keys in their own order, as the recorder writes outputs). */
function storedText(value: unknown): string {
  const payload = serializePlain(value === undefined ? null : value);
  return typeof payload === 'string' ? payload : inlineText(payload.body);
}

function jsonOf(value: unknown): unknown {
  return JSON.parse(storedText(value));
}

/**
 * Replays run `runId` by calling `agentFn` (the agent entrypoint, `recorder.agent(…)`-wrapped or
 * not) with the recorded input, serving the recording back as `mode` (and `fork`) says, and
 * recording the result as a new run. Rejects (ReplayError) only when the run cannot be replayed:
 * not found, not finished, blobs missing, a bad fork edit. A divergence is the verdict, not a
 * rejection.
 */
export async function replay(
  agentFn: (...args: never[]) => unknown,
  runId: string,
  options: ReplayOptions = {},
): Promise<ReplayResult> {
  const mode = options.mode ?? 'exact';
  if (mode !== 'exact' && mode !== 'cached')
    throw new ReplayError(
      'invalid_fork',
      `the replay mode must be "exact" or "cached", not "${String(mode)}"`,
    );
  const { store, owned } = await openTarget(options);
  try {
    const source = options.source ?? storeSource(store);
    const recording = await loadRecording(source, runId);
    let fork: { atSeq: number; edit: ForkEdit } | undefined;
    if (options.fork !== undefined) {
      const step = forkStep(recording, options.fork);
      fork = {
        atSeq: options.fork.atSeq,
        edit: editFor(step, await recording.requestOf(step), options.fork),
      };
    }
    const session = new ReplaySession(recording, {
      mode,
      fork,
      stallMs: options.stallMs ?? DEFAULT_STALL_MS,
      onDivergence: options.onDivergence,
    });
    const problems: Error[] = [];
    const recorder = new Recorder({
      store: labellingStore(store, session, options.onStep),
      enabled: true,
      tape: true,
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      ...(options.env === undefined ? {} : { env: options.env }),
      onError: (error) => problems.push(error),
      // The new run is as long as the recording, which is in memory already: hold it all if the store is slower.
      maxQueueSize: Math.max(100_000, 4 * recording.steps.length + 16),
      maxQueueBytes: 2 ** 30,
    });
    session.redactor = recorder.redactor;
    const tapeData = recording.tape ?? { version: 1 as const, now: [], perf: [], random: [], uuid: [] };
    const entry = agentNameOf(agentFn) !== undefined ? agentFn : recorder.agent(recording.agent, agentFn);
    let status: ReplayResult['status'] = 'ok';
    let value: unknown;
    let thrown: unknown;
    try {
      value = await withPendingReplay(
        {
          recorder,
          tape: () => Tape.serve(tapeData),
          started: (newRunId) => {
            session.runId = newRunId;
            return session;
          },
          fail: (error) => problems.push(error),
        },
        () => (entry as (...args: unknown[]) => unknown)(...recording.args),
      );
    } catch (error) {
      thrown = error;
      status = (error as { name?: unknown } | null)?.name === 'AbortError' ? 'cancelled' : 'error';
    }
    await session.settled();
    const flushed = await recorder.shutdown();
    const newRunId = session.runId;
    if (newRunId === undefined)
      throw new ReplayError(
        'agent_not_run',
        `the agent did not start a run: ${problems[0]?.message ?? 'it never called its recorder.agent(…) entrypoint'}`,
      );
    if (flushed.dropped > 0 || !flushed.done)
      throw new ReplayError(
        'record_failed',
        `the replay ran, but ${flushed.dropped + flushed.pending} event(s) of its new run ${newRunId} could not be written to ${store.location}${problems[0] === undefined ? '' : `: ${problems[0].message}`}`,
      );
    const error = thrown === undefined ? null : errorInfoOf(thrown);
    const output = status === 'ok' ? jsonOf(value) : null;
    compareResult(session, recording, status, output, error);
    const labels: Record<ReplayLabel, number> = {
      replayed: 0,
      cached: 0,
      live: 0,
      overridden: 0,
      diverged: 0,
      redacted: 0,
    };
    for (const label of session.labels.values()) if (label in labels) labels[label as ReplayLabel]++;
    const divergence = session.firstDivergence() ?? null;
    const result: ReplayResult = {
      runId: newRunId,
      replayOf: runId,
      mode: fork === undefined ? mode : 'fork',
      verdict: divergence === null ? 'reproduced' : 'diverged',
      divergence,
      divergences: session.divergences.map((d) => d.toJSON()),
      labels,
      status,
      output,
      error,
    };
    if (fork !== undefined) result.forkOf = { runId, atSeq: fork.atSeq, edit: fork.edit };
    return result;
  } finally {
    if (owned) await store.close();
  }
}

function errorInfoOf(error: unknown): ErrorInfo {
  const captured = captureError(error);
  const info: ErrorInfo = { type: captured.type, message: captured.message };
  if (captured.status !== undefined) info.status = captured.status;
  return info;
}

/** The run's result against the recorded one: a difference is an `output` divergence. */
function compareResult(
  session: ReplaySession,
  recording: Recording,
  status: ReplayResult['status'],
  output: unknown,
  error: ErrorInfo | null,
): void {
  const recorded =
    recording.status === 'ok'
      ? { status: 'ok', output: jsonOf(recording.output) }
      : {
          status: recording.status,
          error: { type: recording.error?.type, message: recording.error?.message },
        };
  const replayed =
    status === 'ok' ? { status, output } : { status, error: { type: error?.type, message: error?.message } };
  const diff = diffJson(recorded, replayed);
  // Byte-identical: the same values with keys in another order differ too.
  if (diff.length === 0 && status === 'ok' && storedText(recorded.output) !== storedText(output))
    diff.push({ path: '/output', recorded: recorded.output, replayed: output });
  if (diff.length > 0) session.outputDiffers(diff);
}

export { ReplayDivergenceError, type ReplayStepReport };
