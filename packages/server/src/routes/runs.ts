import type { BlobRef } from '@rewind/schema';
import {
  type ListRunsQuery,
  payloadLocations,
  pendingArtifactsOf,
  readPayload,
  readWholeTimeline,
  type StoredRunStatus,
} from '@rewind/store';
import type { Handler, ServerContext } from '../context.ts';
import { withStore } from '../context.ts';
import { badRequest, notFound } from '../http-error.ts';

// The read routes: runs, one run (with its pending artifacts), its timeline, one step with its
// payloads, its stored events.

const STATUSES: readonly StoredRunStatus[] = ['ok', 'error', 'cancelled', 'incomplete'];

function wholeNumber(query: URLSearchParams, name: string, min: number, max: number): number | undefined {
  const value = query.get(name);
  if (value === null) return undefined;
  const n = /^\d{1,15}$/.test(value) ? Number(value) : Number.NaN;
  if (!(n >= min && n <= max))
    throw badRequest(
      'invalid_query',
      `${name} must be a whole number from ${min} to ${max}, got '${value.slice(0, 40)}'`,
    );
  return n;
}

export const listRuns: Handler = async (context, { query }) => {
  const filter: ListRunsQuery = {};
  const agent = query.get('agent');
  if (agent !== null) filter.agent = agent;
  const status = query.get('status');
  if (status !== null) {
    if (!STATUSES.includes(status as StoredRunStatus))
      throw badRequest(
        'invalid_query',
        `status must be one of ${STATUSES.join(', ')}, got '${status.slice(0, 40)}'`,
      );
    filter.status = status as StoredRunStatus;
  }
  for (const name of ['since', 'until'] as const) {
    const value = query.get(name);
    if (value !== null) filter[name] = value;
  }
  const limit = wholeNumber(query, 'limit', 1, 1000);
  if (limit !== undefined) filter.limit = limit;
  const cursor = query.get('cursor');
  if (cursor !== null) filter.cursor = cursor;
  const page = await withStore(context, () => context.store.listRuns(filter));
  return { status: 200, json: page };
};

async function existingRun(context: ServerContext, runId: string) {
  const run = await withStore(context, () => context.store.getRun(runId));
  if (run === undefined)
    throw notFound(`run '${runId.slice(0, 200)}' not found: list runs with GET /v1/runs`);
  return run;
}

export const getRun: Handler = async (context, { params }) => {
  const runId = params[0]!;
  const run = await existingRun(context, runId);
  const pendingArtifacts = await withStore(context, async () =>
    pendingArtifactsOf(context.store, payloadLocations(run, await readWholeTimeline(context.store, runId))),
  );
  return { status: 200, json: { run, pendingArtifacts } };
};

export const listSteps: Handler = async (context, { params, query }) => {
  const runId = params[0]!;
  const afterSeq = wholeNumber(query, 'cursor', 0, Number.MAX_SAFE_INTEGER) ?? 0;
  const limit = wholeNumber(query, 'limit', 1, 10_000) ?? 1000;
  await existingRun(context, runId);
  const page = await withStore(context, () => context.store.readTimeline(runId, { afterSeq, limit }));
  return { status: 200, json: page };
};

export const getStep: Handler = async (context, { params }) => {
  const runId = params[0]!;
  const seqText = params[1]!;
  const seq = /^\d{1,15}$/.test(seqText) ? Number(seqText) : Number.NaN;
  if (!(seq >= 1))
    throw badRequest(
      'invalid_query',
      `the step number must be a whole number from 1, got '${seqText.slice(0, 40)}'`,
    );
  const step = await withStore(context, () => context.store.getStep(runId, seq));
  if (step === undefined) throw notFound(`run '${runId.slice(0, 200)}' has no step ${seq}`);
  // Payloads resolve as in `rewind show --json`: one that cannot be read (pending, corrupt) is null.
  const resolve = async (ref: BlobRef | null) =>
    ref === null ? null : readPayload(context.store.blobs, ref).catch(() => null);
  const [request, response] = await Promise.all([resolve(step.request), resolve(step.response)]);
  return { status: 200, json: { step, request, response } };
};

export const listEvents: Handler = async (context, { params }) => {
  const runId = params[0]!;
  await existingRun(context, runId);
  const events = await withStore(context, () => context.store.readEvents(runId));
  return { status: 200, json: { events } };
};
