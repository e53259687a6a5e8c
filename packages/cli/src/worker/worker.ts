import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { ReplayResult } from '@rewind/sdk';
import type {
  OpenStoreOptions,
  ProgressUpdate,
  ReplayQueue,
  ReplaySessionError,
  ReplaySessionRecord,
  SessionOutcome,
} from '@rewind/store';
import type { ChildMessage, ChildStart } from './replay-child.ts';

// `rewind worker` (docs/orchestrator.md): claims replay sessions from the store's queue and runs
// each in a child process of its own (./replay-child.ts), up to `concurrency` at a time. It
// renews each session's lease by heartbeat, relays the child's progress into the session's
// events, and ends the session: finished with the verdict, cancelled, timed out, or failed with
// the child's exit code or signal and the tail of its stderr when it dies. A session is never
// retried: a failure is reported, not hidden by a second run.

export interface WorkerOptions {
  queue: ReplayQueue;
  /** How a replay child opens the store. */
  store: string;
  storeOptions: OpenStoreOptions;
  concurrency: number;
  /** Default `<host>:<pid>:<random>`. */
  workerId?: string;
  /** The lease a claim and each heartbeat take, ms (default 15 s); heartbeats every third of it. */
  leaseMs?: number;
  /** How often an idle worker looks for queued sessions, ms (default 250). */
  pollMs?: number;
  /** How often progress is written to the session, ms (default 100). */
  progressMs?: number;
  /** Where replay children run: rewind.config.json is read here. */
  cwd: string;
  env: Record<string, string | undefined>;
  log: (line: Record<string, unknown>) => void;
  /** Aborting stops claiming; running children are stopped and their sessions failed (`worker_stopped`). */
  signal: AbortSignal;
}

const CHILD = fileURLToPath(new URL('./replay-child.ts', import.meta.url));
const STDERR_TAIL_BYTES = 4096;

type Exit = { code: number | null; signal: NodeJS.Signals | null; error?: Error };

/** A replay process, started ahead of its session (Node's start and the SDK's imports overlap the previous session). */
interface ReplayProcess {
  child: ChildProcess;
  stderr: { tail: string };
  exited: Promise<Exit>;
}

function startReplayProcess(options: WorkerOptions): ReplayProcess {
  const child = spawn(process.execPath, [CHILD], {
    cwd: options.cwd,
    env: options.env as NodeJS.ProcessEnv,
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    serialization: 'advanced',
  });
  const stderr = { tail: '' };
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr.tail = (stderr.tail + chunk).slice(-STDERR_TAIL_BYTES);
  });
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
  });
  return { child, stderr, exited };
}

export function newWorkerId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

/** Resolves after `ms`, or at once when `signal` aborts or `wake` is called. */
function idle(ms: number, signal: AbortSignal, setWake: (wake: () => void) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    setWake(done);
  });
}

/** Runs until `signal` aborts; resolves once every session it held has ended. */
export async function runWorker(options: WorkerOptions): Promise<void> {
  const workerId = options.workerId ?? newWorkerId();
  const leaseMs = options.leaseMs ?? 15_000;
  const pollMs = options.pollMs ?? 250;
  const { queue, log, signal } = options;
  const active = new Map<string, Promise<void>>();
  let wake: () => void = () => {};
  let spare: ReplayProcess | undefined;
  const takeProcess = (): ReplayProcess => {
    const usable = spare !== undefined && spare.child.exitCode === null && spare.child.signalCode === null;
    const taken = usable ? spare! : startReplayProcess(options);
    if (!usable) spare?.child.kill('SIGKILL');
    spare = signal.aborted ? undefined : startReplayProcess(options);
    return taken;
  };
  log({ level: 'info', msg: 'worker started', workerId, concurrency: options.concurrency });
  while (!signal.aborted) {
    try {
      const failed = await queue.failExpired();
      for (const id of failed)
        log({ level: 'warn', msg: 'failed a session whose lease expired', sessionId: id });
      while (active.size < options.concurrency && !signal.aborted) {
        const session = await queue.claim(workerId, leaseMs);
        if (session === undefined) break;
        log({
          level: 'info',
          msg: 'claimed',
          workerId,
          sessionId: session.id,
          runId: session.runId,
          attempt: session.attempts,
        });
        let replayProcess: ReplayProcess;
        try {
          replayProcess = takeProcess();
        } catch (error) {
          await queue.finish(session.id, workerId, {
            status: 'failed',
            error: {
              code: 'worker_spawn_failed',
              message: `cannot start a replay process: ${(error as Error).message}`,
            },
          });
          continue;
        }
        const done = runSession(session, replayProcess, workerId, leaseMs, options)
          .catch((error: unknown) =>
            log({
              level: 'error',
              msg: 'session not ended',
              workerId,
              sessionId: session.id,
              error: String(error),
            }),
          )
          .finally(() => {
            active.delete(session.id);
            wake();
          });
        active.set(session.id, done);
      }
    } catch (error) {
      log({ level: 'error', msg: 'queue unavailable', workerId, error: (error as Error).message });
    }
    await idle(pollMs, signal, (done) => {
      wake = done;
    });
  }
  spare?.child.kill('SIGKILL');
  await Promise.allSettled(active.values());
  log({ level: 'info', msg: 'worker stopped', workerId });
}

function labelCounts(labels: Map<string, number>): Record<string, number> {
  return Object.fromEntries(labels);
}

/** Runs one claimed session in a child process and ends it. */
async function runSession(
  session: ReplaySessionRecord,
  replayProcess: ReplayProcess,
  workerId: string,
  leaseMs: number,
  options: WorkerOptions,
): Promise<void> {
  const { queue, log } = options;
  const started = Date.now();
  const { child, stderr, exited } = replayProcess;
  let result: ReplayResult | undefined;
  let childFailure: ChildMessage | undefined;
  // Set when the worker ends the session itself (cancel, timeout, lost lease, worker stopping).
  let decided: SessionOutcome | 'lost' | undefined;
  let stepsServed = 0;
  let stepsTotal: number | null = null;
  const labels = new Map<string, number>();
  let pending: ProgressUpdate['events'] = [];
  let writes = Promise.resolve();

  const flush = () => {
    if (pending.length === 0) return writes;
    const update: ProgressUpdate = { stepsServed, stepsTotal, labels: labelCounts(labels), events: pending };
    pending = [];
    writes = writes
      .then(() => queue.progress(session.id, workerId, update))
      .then(
        () => {},
        (error) =>
          log({ level: 'error', msg: 'progress not written', sessionId: session.id, error: String(error) }),
      );
    return writes;
  };

  log({ level: 'info', msg: 'replay process started', workerId, sessionId: session.id, pid: child.pid });
  const kill = (outcome: SessionOutcome | 'lost') => {
    decided ??= outcome;
    child.kill('SIGKILL');
  };
  child.on('message', (message: ChildMessage) => {
    if (message.type === 'step') {
      stepsServed++;
      stepsTotal = message.stepsTotal;
      labels.set(message.label, (labels.get(message.label) ?? 0) + 1);
      pending.push(
        {
          type: 'label',
          data: { seq: message.seq, label: message.label, kind: message.kind, name: message.name },
        },
        { type: 'progress', data: { stepsServed, stepsTotal } },
      );
    } else if (message.type === 'result') result = message.result;
    else childFailure = message;
  });
  child.send({ session, store: options.store, storeOptions: options.storeOptions } satisfies ChildStart);

  const progressTimer = setInterval(() => void flush(), options.progressMs ?? 100);
  const heartbeat = setInterval(
    () => {
      queue.heartbeat(session.id, workerId, leaseMs).then(
        (answer) => {
          if (!answer.held) kill('lost');
          else if (answer.cancelRequested)
            kill({
              status: 'cancelled',
              error: { code: 'cancelled', message: 'cancelled while it ran: its replay process was stopped' },
            });
        },
        (error) =>
          log({ level: 'error', msg: 'heartbeat failed', sessionId: session.id, error: String(error) }),
      );
    },
    Math.max(1, Math.floor(leaseMs / 3)),
  );
  const timeout = setTimeout(
    () =>
      kill({
        status: 'failed',
        error: {
          code: 'timeout',
          message: `the replay did not finish within its timeout of ${session.timeoutMs} ms; it was stopped after ${stepsServed} step(s)`,
          diagnostics: { timeoutMs: session.timeoutMs, stepsServed },
        },
      }),
    session.timeoutMs,
  );
  const onStop = () =>
    kill({
      status: 'failed',
      error: { code: 'worker_stopped', message: `worker ${workerId} was stopped while the replay ran` },
    });
  options.signal.addEventListener('abort', onStop, { once: true });

  const exit = await exited;
  clearInterval(progressTimer);
  clearInterval(heartbeat);
  clearTimeout(timeout);
  options.signal.removeEventListener('abort', onStop);
  await flush();

  let outcome: SessionOutcome | undefined;
  if (decided === 'lost') outcome = undefined;
  else if (decided !== undefined) outcome = withTail(decided, stderr.tail);
  else if (result !== undefined)
    outcome = {
      status: 'finished',
      verdict: result.verdict,
      newRunId: result.runId,
      labels: Object.fromEntries(Object.entries(result.labels).filter(([, count]) => count > 0)),
      stepsServed,
      result: { runStatus: result.status, divergence: result.divergence, output: result.output },
    };
  else if (childFailure?.type === 'failed')
    outcome = {
      status: 'failed',
      error: {
        code: childFailure.code,
        message: childFailure.message,
        ...(childFailure.details === undefined ? {} : { diagnostics: childFailure.details }),
      },
    };
  else outcome = { status: 'failed', error: diedError(exit, child.pid, stderr.tail, stepsServed) };

  if (outcome === undefined) {
    log({
      level: 'warn',
      msg: 'lost the session (its lease was taken over)',
      sessionId: session.id,
      workerId,
    });
    return;
  }
  const ended = await queue.finish(session.id, workerId, outcome);
  log({
    level: outcome.status === 'failed' ? 'warn' : 'info',
    msg: 'session ended',
    workerId,
    sessionId: session.id,
    status: outcome.status,
    ...(outcome.status === 'finished' ? { verdict: outcome.verdict, newRunId: outcome.newRunId } : {}),
    ...(outcome.status === 'failed' ? { error: outcome.error.code } : {}),
    recorded: ended,
    durationMs: Date.now() - started,
  });
}

function withTail(outcome: SessionOutcome, stderrTail: string): SessionOutcome {
  if (outcome.status !== 'failed' || stderrTail === '') return outcome;
  return {
    ...outcome,
    error: { ...outcome.error, diagnostics: { ...outcome.error.diagnostics, stderrTail } },
  };
}

function diedError(
  exit: Exit,
  pid: number | undefined,
  stderrTail: string,
  stepsServed: number,
): ReplaySessionError {
  const how =
    exit.error !== undefined
      ? `could not run (${exit.error.message})`
      : exit.signal !== null
        ? `was killed by ${exit.signal}`
        : `exited with code ${exit.code}`;
  const lastLine = stderrTail.trim().split('\n').at(-1);
  return {
    code: 'worker_died',
    message: `the replay process (pid ${pid ?? '?'}) ${how} after ${stepsServed} step(s), before the replay finished${lastLine ? `: ${lastLine.slice(0, 300)}` : ''}`,
    diagnostics: { exitCode: exit.code, signal: exit.signal, pid: pid ?? null, stderrTail },
  };
}
