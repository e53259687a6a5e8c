import type { ServerResponse } from 'node:http';
import { RewindError } from '@rewind/schema';
import {
  isTerminalStatus,
  type ReplayForkRequest,
  type ReplayQueue,
  type ReplaySessionEvent,
  type ReplaySessionRecord,
} from '@rewind/store';
import type { Handler, ServerContext } from '../context.ts';
import { withStore } from '../context.ts';
import { badRequest, HttpError, notFound } from '../http-error.ts';
import { isPlainObject, readJson } from '../json-body.ts';

// The replay orchestrator's routes (docs/api.md "Replays", docs/orchestrator.md): queue a replay
// session, read it, follow its events as server-sent events, cancel it. Workers (`rewind worker`)
// run the sessions; the queue is the store's (ReplayQueue of @rewind/store).

export interface ReplaySettings {
  /** A session's timeout when the request names none, ms (default 10 minutes). */
  defaultTimeoutMs: number;
  /** The longest timeout a request may ask for, ms (default 24 hours). */
  maxTimeoutMs: number;
  /** How often an event stream looks for new session events, ms (default 100). */
  pollMs: number;
  /** How often an idle event stream sends a keep-alive comment, ms (default 15 s). */
  keepAliveMs: number;
}

export const DEFAULT_REPLAY_SETTINGS: ReplaySettings = {
  defaultTimeoutMs: 10 * 60_000,
  maxTimeoutMs: 24 * 60 * 60_000,
  pollMs: 100,
  keepAliveMs: 15_000,
};

function queueOf(context: ServerContext): ReplayQueue {
  const queue = context.store.replayQueue?.();
  if (queue === undefined)
    throw new HttpError(
      501,
      'replays_unavailable',
      "this server's store has no replay queue: serve a SQLite directory or a PostgreSQL store",
    );
  return queue;
}

/** What GET /v1/replays/:id answers (and POST /v1/replays with 202). */
export function sessionJson(session: ReplaySessionRecord): Record<string, unknown> {
  return {
    id: session.id,
    runId: session.runId,
    mode: session.mode,
    fork: session.fork,
    status: session.status,
    verdict: session.verdict,
    newRunId: session.newRunId,
    divergence: session.result?.divergence ?? null,
    runStatus: session.result?.runStatus ?? null,
    output: session.result?.output ?? null,
    labels: session.labels,
    progress: session.progress,
    error: session.error,
    cancelRequested: session.cancelRequested,
    attempts: session.attempts,
    workerId: session.workerId,
    timeoutMs: session.timeoutMs,
    createdAt: session.createdAt,
    startedAt: session.startedAt,
    endedAt: session.endedAt,
    leaseExpiresAt: session.leaseExpiresAt === null ? null : new Date(session.leaseExpiresAt).toISOString(),
  };
}

const FORK_KEYS = new Set(['atSeq', 'set', 'response', 'error', 'then']);

function invalidFork(message: string): HttpError {
  return badRequest('invalid_fork', `fork: ${message}`);
}

/** The fork as `rewind fork` takes it: atSeq, then one edit (set | response | error), then `then`. */
function parseFork(value: unknown): ReplayForkRequest {
  if (!isPlainObject(value)) throw invalidFork('must be an object {atSeq, set? | response? | error?, then?}');
  for (const key of Object.keys(value))
    if (!FORK_KEYS.has(key))
      throw invalidFork(`unknown field "${key.slice(0, 40)}" (fields: atSeq, set, response, error, then)`);
  const { atSeq, set, response, error, then } = value;
  if (typeof atSeq !== 'number' || !Number.isInteger(atSeq) || atSeq < 1)
    throw invalidFork(
      `atSeq must be the seq of the step to edit (a whole number from 1), got ${JSON.stringify(atSeq)}`,
    );
  const fork: ReplayForkRequest = { atSeq };
  const edits = [set !== undefined, response !== undefined, error !== undefined].filter(Boolean).length;
  if (edits !== 1)
    throw invalidFork(
      edits === 0
        ? 'needs one edit at its step: set (request patches), response (a replacement) or error'
        : 'edits one thing at its step: give only one of set, response, error',
    );
  if (set !== undefined) {
    if (!Array.isArray(set) || set.length === 0)
      throw invalidFork('set must be a non-empty array of {pointer, value}');
    fork.set = set.map((item, index) => {
      if (!isPlainObject(item) || typeof item.pointer !== 'string' || !('value' in item))
        throw invalidFork(`set[${index}] must be {pointer: "/json/pointer", value: <json>}`);
      if (item.pointer !== '' && !item.pointer.startsWith('/'))
        throw invalidFork(
          `set[${index}].pointer must be a JSON pointer starting with "/", got ${JSON.stringify(item.pointer.slice(0, 80))}`,
        );
      return { pointer: item.pointer, value: item.value };
    });
  }
  if (response !== undefined) fork.response = response;
  if (error !== undefined) {
    if (typeof error === 'string' && error !== '') fork.error = error;
    else if (
      isPlainObject(error) &&
      typeof error.message === 'string' &&
      (error.type === undefined || typeof error.type === 'string')
    )
      fork.error =
        error.type === undefined ? { message: error.message } : { type: error.type, message: error.message };
    else throw invalidFork('error must be a message or {type?, message}');
  }
  if (then !== undefined) {
    if (then !== 'cached' && then !== 'live')
      throw invalidFork(`then must be "cached" or "live", got ${JSON.stringify(then)}`);
    fork.then = then;
  }
  return fork;
}

const REQUEST_KEYS = new Set(['runId', 'mode', 'fork', 'timeoutMs']);

export const postReplay: Handler = async (context, { req }) => {
  const queue = queueOf(context);
  const body = await readJson(req, {
    maxBytes: context.limits.maxJsonBytes,
    maxDepth: context.limits.maxDepth,
    what: 'the replay request',
  });
  if (!isPlainObject(body))
    throw badRequest('invalid_request', 'the body must be a JSON object {runId, mode, fork?, timeoutMs?}');
  for (const key of Object.keys(body))
    if (!REQUEST_KEYS.has(key))
      throw badRequest(
        'invalid_request',
        `unknown field "${key.slice(0, 40)}": a replay request has runId, mode, fork?, timeoutMs?`,
      );
  const { runId, mode = 'exact', fork, timeoutMs } = body;
  if (typeof runId !== 'string' || runId === '' || runId.length > 200)
    throw badRequest('invalid_request', 'runId must be the id of a recorded run (a non-empty string)');
  if (mode !== 'exact' && mode !== 'cached')
    throw badRequest(
      'invalid_mode',
      `mode must be "exact" or "cached", got ${JSON.stringify(mode).slice(0, 60)}`,
    );
  const parsedFork = fork === undefined || fork === null ? null : parseFork(fork);
  if (parsedFork !== null && mode !== 'exact')
    throw invalidFork(
      'a fork follows the recording exactly up to its step (mode "exact"); say how it goes on after the step with then: "cached" | "live"',
    );
  const settings = context.replays;
  let timeout = settings.defaultTimeoutMs;
  if (timeoutMs !== undefined) {
    if (
      typeof timeoutMs !== 'number' ||
      !Number.isInteger(timeoutMs) ||
      timeoutMs < 1 ||
      timeoutMs > settings.maxTimeoutMs
    )
      throw badRequest(
        'invalid_request',
        `timeoutMs must be a whole number of milliseconds from 1 to ${settings.maxTimeoutMs}, got ${JSON.stringify(timeoutMs).slice(0, 40)}`,
      );
    timeout = timeoutMs;
  }
  const run = await withStore(context, () => context.store.getRun(runId));
  if (run === undefined)
    throw notFound(`run '${runId.slice(0, 200)}' not found: list runs with GET /v1/runs`);
  if (run.status === 'incomplete' || run.agent === null)
    throw new HttpError(
      409,
      'run_incomplete',
      `run '${runId.slice(0, 200)}' has not finished recording (no run.finished${run.agent === null ? ' nor run.started' : ''} yet): only a finished run can be replayed`,
    );
  if (parsedFork !== null && parsedFork.atSeq > run.stepCount)
    throw invalidFork(
      `run '${runId.slice(0, 200)}' has no step ${parsedFork.atSeq} (it has ${run.stepCount} steps)`,
    );
  const session = await withStore(context, () =>
    queue.enqueue({ runId, mode, fork: parsedFork, timeoutMs: timeout }),
  );
  return {
    status: 202,
    json: sessionJson(session),
    headers: { Location: `/v1/replays/${session.id}` },
  };
};

/** The session; a running one whose worker's lease has expired is failed first (any reader may notice). */
async function currentSession(context: ServerContext, id: string): Promise<ReplaySessionRecord> {
  const queue = queueOf(context);
  let session = await withStore(context, () => queue.get(id));
  if (session === undefined)
    throw notFound(`replay session '${id.slice(0, 200)}' not found: create one with POST /v1/replays`);
  if (
    session.status === 'running' &&
    session.leaseExpiresAt !== null &&
    session.leaseExpiresAt < Date.now()
  ) {
    await withStore(context, () => queue.failExpired());
    session = (await withStore(context, () => queue.get(id))) ?? session;
  }
  return session;
}

export const getReplay: Handler = async (context, { params }) => {
  const session = await currentSession(context, params[0]!);
  return { status: 200, json: sessionJson(session) };
};

export const cancelReplay: Handler = async (context, { params }) => {
  const id = params[0]!;
  const queue = queueOf(context);
  const before = await currentSession(context, id);
  if (isTerminalStatus(before.status)) {
    if (before.status === 'cancelled') return { status: 200, json: sessionJson(before) };
    throw new HttpError(
      409,
      'session_ended',
      `replay session '${id.slice(0, 200)}' has already ended (${before.status}): there is nothing to cancel`,
    );
  }
  const session = (await withStore(context, () => queue.cancel(id)))!;
  // A queued session is cancelled now (200); a running one when its worker stops it (202).
  return { status: session.status === 'cancelled' ? 200 : 202, json: sessionJson(session) };
};

function sseFrame(event: ReplaySessionEvent): string {
  return `id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify({ ...event.data, at: event.at })}\n\n`;
}

export const replayEvents: Handler = async (context, { params, req, query }) => {
  const id = params[0]!;
  const queue = queueOf(context);
  await currentSession(context, id);
  const lastEventId = req.headers['last-event-id'] ?? query.get('after') ?? '0';
  const after =
    typeof lastEventId === 'string' && /^\d{1,9}$/.test(lastEventId) ? Number(lastEventId) : Number.NaN;
  if (Number.isNaN(after))
    throw badRequest(
      'invalid_query',
      'Last-Event-ID (or ?after=) must be the seq of the last event seen, a whole number',
    );
  return {
    status: 200,
    headers: {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache',
      'X-Accel-Buffering': 'no',
    },
    stream: (res) => followEvents(context, queue, id, after, res),
  };
};

/** Sends the session's events after `after`, then follows them until `done`, the client leaves or the server stops. */
async function followEvents(
  context: ServerContext,
  queue: ReplayQueue,
  id: string,
  after: number,
  res: ServerResponse,
): Promise<void> {
  const { pollMs, keepAliveMs } = context.replays;
  let seen = after;
  let lastWrite = Date.now();
  let gone = false;
  const stop = () => {
    gone = true;
  };
  res.once('close', stop);
  context.closing.addEventListener('abort', stop, { once: true });
  try {
    while (!gone) {
      let events: ReplaySessionEvent[];
      try {
        events = await queue.events(id, seen, 500);
        if (events.length === 0) {
          // Nobody else may be watching a session whose worker vanished: notice it here too.
          const session = await queue.get(id);
          if (
            session?.status === 'running' &&
            session.leaseExpiresAt !== null &&
            session.leaseExpiresAt < Date.now()
          )
            await queue.failExpired();
        }
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        if (!RewindError.isInstance(error)) context.metrics.storeErrors++;
        res.write(
          `event: error\ndata: ${JSON.stringify({ error: { code: 'store_unavailable', message } })}\n\n`,
        );
        break;
      }
      let ended = false;
      for (const event of events) {
        res.write(sseFrame(event));
        seen = event.seq;
        if (event.type === 'done') ended = true;
      }
      if (events.length > 0) lastWrite = Date.now();
      if (ended) break;
      if (events.length === 500) continue;
      if (Date.now() - lastWrite >= keepAliveMs) {
        res.write(': keep-alive\n\n');
        lastWrite = Date.now();
      }
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  } finally {
    res.off('close', stop);
    context.closing.removeEventListener('abort', stop);
    if (!res.destroyed) res.end();
  }
}
