import { AsyncLocalStorage } from 'node:async_hooks';
import type { ReplayHooks } from '../context.ts';
import type { Recorder } from '../recorder.ts';
import type { Tape } from '../tape.ts';

// How `replay()` gets the agent it calls to start the replay's run: it calls the agent inside a
// pending-replay context, and the first agent wrapper entered there without a run claims it —
// whichever recorder made that wrapper — and records the run with the replay's recorder.

export interface PendingReplay {
  readonly recorder: Recorder;
  /** The tape to serve. */
  tape(): Tape | undefined;
  /** The run started with this id: the hooks that answer its calls. */
  started(runId: string): ReplayHooks;
  fail(error: Error): void;
}

interface Slot {
  replay: PendingReplay;
  claimed: boolean;
}

const pending = new AsyncLocalStorage<Slot>();

export function withPendingReplay<T>(replay: PendingReplay, fn: () => T): T {
  return pending.run({ replay, claimed: false }, fn);
}

/** The pending replay of this context, once (later agent calls in it are ordinary). */
export function claimReplay(): PendingReplay | undefined {
  const slot = pending.getStore();
  if (slot === undefined || slot.claimed) return undefined;
  slot.claimed = true;
  return slot.replay;
}
