// One replay session, in its own process (docs/orchestrator.md): started by `rewind worker` with
// an IPC channel. It receives {session, store, storeOptions}, imports the run's agent through
// rewind.config.json in its working directory (as `rewind replay` does), runs replay() and sends
// back each step's label as it is recorded, then the result. The worker turns these into the
// session's progress and verdict; if this process dies, the worker fails the session with its
// exit code or signal and the tail of its stderr.
import { RewindError } from '@rewind/schema';
import { ReplayError, type ReplayResult, replay } from '@rewind/sdk';
import { type OpenStoreOptions, openStore, type ReplaySessionRecord, type Store } from '@rewind/store';
import { loadAgent } from '../agents.ts';

export interface ChildStart {
  session: ReplaySessionRecord;
  store: string;
  storeOptions: OpenStoreOptions;
}

export type ChildMessage =
  | {
      type: 'step';
      seq: number | null;
      label: string;
      kind: string | null;
      name: string | null;
      stepsTotal: number;
    }
  | { type: 'result'; result: ReplayResult }
  | { type: 'failed'; code: string; message: string; details?: Record<string, unknown> };

function send(message: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined) resolve();
    else process.send(message, undefined, {}, () => resolve());
  });
}

async function run(start: ChildStart): Promise<ChildMessage> {
  const { session } = start;
  let store: Store;
  try {
    store = await openStore(start.store, start.storeOptions);
  } catch (error) {
    return { type: 'failed', code: 'store_unavailable', message: (error as Error).message };
  }
  try {
    const run = await store.getRun(session.runId);
    if (run === undefined)
      return {
        type: 'failed',
        code: 'run_not_found',
        message: `no run ${session.runId} in ${store.location}`,
      };
    if (run.agent === null)
      return {
        type: 'failed',
        code: 'run_incomplete',
        message: `run ${session.runId} has no run.started event: its agent is unknown`,
      };
    let agent: Awaited<ReturnType<typeof loadAgent>>;
    try {
      agent = await loadAgent(run.agent, process.cwd());
    } catch (error) {
      return {
        type: 'failed',
        code: 'agent_not_found',
        message: `${(error as Error).message} (the worker runs in ${process.cwd()})`,
      };
    }
    const fork = session.fork ?? undefined;
    const result = await replay(agent, session.runId, {
      store,
      mode: session.mode,
      ...(fork === undefined ? {} : { fork }),
      cwd: process.cwd(),
      env: process.env,
      onStep: (step) => {
        void send({
          type: 'step',
          seq: step.seq,
          label: step.label,
          kind: step.kind,
          name: step.name,
          stepsTotal: step.stepsTotal,
        });
      },
    });
    return { type: 'result', result };
  } catch (error) {
    if (ReplayError.isInstance(error)) {
      const details = error.code === 'blobs_missing' ? { missing: error.missing } : undefined;
      return {
        type: 'failed',
        code: error.code,
        message: error.message,
        ...(details === undefined ? {} : { details }),
      };
    }
    const code = RewindError.isInstance(error) ? error.code : 'replay_failed';
    return {
      type: 'failed',
      code,
      message: `the replay failed to run: ${error instanceof Error ? error.message : String(error)}`,
    };
  } finally {
    await store.close().catch(() => {});
  }
}

// A worker that dies (even by SIGKILL) closes the channel: its replays stop with it.
process.once('disconnect', () => process.exit(70));

process.once('message', (start: ChildStart) => {
  void run(start).then(async (message) => {
    await send(message);
    // The agent's own handles (sockets, timers) must not keep a finished replay's process alive.
    process.exit(0);
  });
});
