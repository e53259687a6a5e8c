import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ReplayQueue, Store } from '@rewind/store';
import { openStoreOptions, type StoreConfig } from '../config.ts';
import { dataError, usageError } from '../errors.ts';
import type { CliContext } from '../main.ts';
import { openConfiguredStore } from '../open-store.ts';
import { newWorkerId, runWorker } from './worker.ts';

// `rewind worker` and the local workers `rewind serve` starts (docs/orchestrator.md).

const BIN = fileURLToPath(new URL('../bin.ts', import.meta.url));

export const WORKER_HELP = `Usage: rewind worker [--store <dir|postgres://…>] [--blobs <dir|s3://…>] [--concurrency 1]
                     [--lease-ms 15000]

Runs replay sessions queued through POST /v1/replays (docs/orchestrator.md), until SIGTERM or
SIGINT. Each session runs in a child process of its own that imports the run's agent through
rewind.config.json in the working directory (as \`rewind replay\` does) and reports each step's
label as it is recorded. A session is claimed by one worker only; its lease is renewed by
heartbeat. A replay process that dies fails its session with its exit code or signal and the tail
of its stderr; a worker that stops renewing fails its sessions once the lease expires. Sessions
are never retried. With a postgres:// store, workers on several machines share one queue.
Logs JSON lines on stdout: "claimed", "replay process started" (with its pid), "session ended".

Options:
  --concurrency <n>    sessions run at once (default 1)
  --lease-ms <ms>      how long a claim holds without a heartbeat (default 15000; heartbeats every third)
  --worker-id <id>     this worker's id in the sessions it claims (default <host>:<pid>:<random>)`;

export function parseCount(flag: string, value: string | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  const n = /^\d{1,6}$/.test(value) ? Number(value) : Number.NaN;
  if (!(n >= min)) throw usageError(`${flag} must be a whole number ≥ ${min}, got '${value}'`);
  return n;
}

function queueOf(store: Store, config: StoreConfig): ReplayQueue {
  const queue = store.replayQueue?.();
  if (queue === undefined) throw dataError(`the store at ${config.display} has no replay queue`);
  return queue;
}

export async function worker(
  options: { concurrency: number; leaseMs: number; workerId?: string | undefined },
  config: StoreConfig,
  context: CliContext,
): Promise<number> {
  const store = await openConfiguredStore(config, { create: true });
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  // Started by `rewind serve` (an IPC channel): stop when it goes, even if it was SIGKILLed.
  if (process.send !== undefined) process.once('disconnect', onSignal);
  try {
    await runWorker({
      queue: queueOf(store, config),
      store: config.store,
      storeOptions: openStoreOptions(config),
      concurrency: options.concurrency,
      leaseMs: options.leaseMs,
      ...(options.workerId === undefined ? {} : { workerId: options.workerId }),
      cwd: context.cwd,
      env: context.env,
      log: (line) => context.stdout(`${JSON.stringify({ time: new Date().toISOString(), ...line })}\n`),
      signal: stop.signal,
    });
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    process.off('disconnect', onSignal);
    if (process.connected) process.disconnect();
    await store.close();
  }
  return 0;
}

/** The `--store` argument that names this config's store to a child `rewind` (schema included). */
export function storeArgument(config: StoreConfig): string {
  if (config.schema === undefined) return config.store;
  const url = new URL(config.store);
  url.searchParams.set('schema', config.schema);
  return url.toString();
}

export interface LocalWorkers {
  stop(): Promise<void>;
}

/**
 * Starts `count` `rewind worker` processes on the store (`rewind serve --workers n`) and keeps
 * them running: one that exits is started again, and the sessions it held are failed at once
 * with its exit code or signal and the tail of its stderr (no wait for the lease).
 */
export function startLocalWorkers(
  count: number,
  config: StoreConfig,
  queue: ReplayQueue,
  context: CliContext,
  log: (line: Record<string, unknown>) => void,
): LocalWorkers {
  const children = new Set<ChildProcess>();
  let stopping = false;
  let started = 0;
  const start = (slot: number) => {
    const workerId = `${newWorkerId()}:w${slot}.${++started}`;
    const args = [
      BIN,
      'worker',
      '--store',
      storeArgument(config),
      '--blobs',
      config.blobs,
      '--worker-id',
      workerId,
    ];
    const child = spawn(process.execPath, args, {
      cwd: context.cwd,
      env: context.env as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    children.add(child);
    log({ level: 'info', msg: 'worker process started', slot, workerId, pid: child.pid });
    let stderrTail = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => context.stdout(chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderrTail = (stderrTail + chunk).slice(-4096);
    });
    child.once('exit', (code, signal) => {
      children.delete(child);
      if (stopping) return;
      log({ level: 'warn', msg: 'worker exited', slot, workerId, code, signal, stderrTail });
      const failed = queue.failWorker(workerId, {
        code: 'worker_died',
        message: `worker ${workerId} ${signal === null ? `exited with code ${code}` : `was killed by ${signal}`} while it ran the session`,
        diagnostics: { workerId, exitCode: code, signal, stderrTail },
      });
      void failed.then(
        (ids) =>
          ids.length > 0 &&
          log({ level: 'warn', msg: 'failed the sessions of a dead worker', sessions: ids }),
        () => {},
      );
      // A worker that cannot even start (bad store) would spin: wait a little before the next.
      setTimeout(() => !stopping && start(slot), 1000).unref();
    });
  };
  for (let slot = 0; slot < count; slot++) start(slot);
  return {
    async stop() {
      stopping = true;
      await Promise.all(
        [...children].map(
          (child) =>
            new Promise<void>((resolve) => {
              if (child.exitCode !== null || child.signalCode !== null) return resolve();
              child.once('exit', () => resolve());
              child.kill('SIGTERM');
            }),
        ),
      );
    },
  };
}
