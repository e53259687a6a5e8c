import { createRedactor, defaultPolicy } from '@rewind/redact';
import type { BlobHash, BlobRef, ErrorInfo, ForkEdit, ReplayMode, StepKind } from '@rewind/schema';
import {
  compareWhere,
  type RunRecord,
  readPayload,
  readWholeTimeline,
  type StepRecord,
  type Store,
  type StoredRunStatus,
  stepPayloadWhere,
} from '@rewind/store';

export { readWholeTimeline };

// One run with its whole timeline and every payload resolved from the blob store: what
// `rewind show` prints (as a tree, or as JSON). A payload that cannot be read (a blob missing or
// corrupt) does not stop the rest: it becomes `null` and is listed in `missing`.

export interface MissingPayload {
  /** Which payload, for messages: `run input`, `step 3 response`, … */
  where: string;
  hash: BlobHash;
  /** Why it could not be read (the blob store's message). */
  reason: string;
}

export interface StepView {
  record: StepRecord;
  request: unknown;
  response: unknown;
}

export interface RunView {
  run: RunRecord;
  input: unknown;
  output: unknown;
  steps: StepView[];
  missing: MissingPayload[];
}

/** The public shape of `rewind show <runId> --json` (external checks rely on it: keep it). */
export interface ShowJson {
  run: {
    id: string;
    agent: string | null;
    status: StoredRunStatus;
    input: unknown;
    output: unknown;
    error?: ErrorInfo;
    replayOf?: { runId: string; mode: ReplayMode };
    forkOf?: { runId: string; atSeq: number; edit: ForkEdit };
  };
  steps: ShowStepJson[];
}

export interface ShowStepJson {
  seq: number;
  stepId: string;
  parentStepId: string | null;
  kind: StepKind;
  name: string;
  callKey: string;
  status: StepRecord['status'];
  label: StepRecord['label'];
  request: unknown;
  response: unknown;
  error?: ErrorInfo;
  startedAt: string;
  endedAt: string | null;
}

/** Loads a run and resolves its payloads; undefined when the store has no such run. */
export async function loadRunView(store: Store, runId: string): Promise<RunView | undefined> {
  const run = await store.getRun(runId);
  if (run === undefined) return undefined;
  const records = await readWholeTimeline(store, runId);
  const missing: MissingPayload[] = [];
  const cache = new Map<BlobHash, Promise<unknown>>();
  const resolve = async (ref: BlobRef | null, where: string): Promise<unknown> => {
    if (ref === null) return null;
    const pending = cache.get(ref.hash) ?? readPayload(store.blobs, ref);
    cache.set(ref.hash, pending);
    try {
      return await pending;
    } catch (error) {
      missing.push({ where, hash: failedHash(error) ?? ref.hash, reason: reasonOf(error) });
      return null;
    }
  };
  const [input, output, steps] = await Promise.all([
    resolve(run.input, 'run input'),
    resolve(run.output, 'run output'),
    mapLimited(records, 16, async (record) => ({
      record,
      request: await resolve(record.request, stepPayloadWhere(record.seq, 'request')),
      response: await resolve(record.response, stepPayloadWhere(record.seq, 'response')),
    })),
  ]);
  missing.sort((a, b) => compareWhere(a.where, b.where));
  return { run, input, output, steps, missing };
}

/** The hash of the blob that failed (a part, when a part was missing), when the error names one. */
function failedHash(error: unknown): BlobHash | undefined {
  const hash = (error as { hash?: unknown } | null)?.hash;
  return typeof hash === 'string' && hash.startsWith('sha256:') ? (hash as BlobHash) : undefined;
}

const REASONS: Record<string, string> = {
  blob_not_found: 'blob missing',
  blob_corrupt: 'blob corrupt',
  payload_unreadable: 'not a readable JSON payload',
};

function reasonOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && REASONS[code] !== undefined) return REASONS[code];
  return error instanceof Error ? error.message : String(error);
}

async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      out[index] = await fn(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export function toShowJson(view: RunView): ShowJson {
  const { run } = view;
  return {
    run: {
      id: run.id,
      agent: run.agent,
      status: run.status,
      input: view.input,
      output: view.output,
      ...(run.error === null ? {} : { error: run.error }),
      ...(run.replayOf === undefined ? {} : { replayOf: run.replayOf }),
      ...(run.forkOf === undefined ? {} : { forkOf: run.forkOf }),
    },
    steps: view.steps.map(({ record, request, response }) => ({
      seq: record.seq,
      stepId: record.stepId,
      parentStepId: record.parentStepId,
      kind: record.kind,
      name: record.name,
      callKey: record.callKey,
      status: record.status,
      label: record.label,
      request,
      response,
      ...(record.error === null ? {} : { error: record.error }),
      startedAt: record.startedAt,
      endedAt: record.endedAt,
    })),
  };
}

/**
 * Opens the sealed values of a run's payloads with the project key (docs/redaction.md, "Sealed
 * values"); without a key, or with another key, they stay sealed (`«sealed:v1:…»`). A malformed
 * key throws RedactionKeyError.
 */
export function unsealView(view: RunView, key: string): RunView {
  const redactor = createRedactor(defaultPolicy(), { key });
  return {
    ...view,
    input: redactor.unseal(view.input),
    output: redactor.unseal(view.output),
    steps: view.steps.map((step) => ({
      ...step,
      request: redactor.unseal(step.request),
      response: redactor.unseal(step.response),
    })),
  };
}
