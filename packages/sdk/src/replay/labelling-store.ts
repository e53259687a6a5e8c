import type { Store } from '@rewind/store';
import type { ReplaySession } from './session.ts';

/** A step of the new run, reported once its label is known (as its events reach the store). */
export interface ReplayStepReport {
  /** The new run's step seq, or null if its step.started was not seen by this store view. */
  seq: number | null;
  kind: string | null;
  name: string | null;
  label: string;
  status: 'ok' | 'error';
  /** How many steps the recording being replayed has. */
  stepsTotal: number;
}

// The new run of a replay goes through the ordinary recorder and pipeline; on its way into the
// store its events gain what only the replay knows: `replayOf`/`forkOf` on run.started and each
// step's label on step.finished. The store itself is the caller's: closing this view leaves it open.

export function labellingStore(
  store: Store,
  session: ReplaySession,
  onStep?: (step: ReplayStepReport) => void,
): Store {
  const started = new Map<string, { seq: number; kind: string; name: string }>();
  return {
    get location() {
      return store.location;
    },
    get blobs() {
      return store.blobs;
    },
    append(events) {
      for (const event of events) {
        const record = event as Record<string, unknown>;
        label(record, session);
        if (onStep !== undefined && record.runId === session.runId) report(record, session, started, onStep);
      }
      return store.append(events);
    },
    listRuns: (query) => store.listRuns(query),
    getRun: (runId) => store.getRun(runId),
    readTimeline: (runId, query) => store.readTimeline(runId, query),
    getStep: (runId, seq) => store.getStep(runId, seq),
    readEvents: (runId) => store.readEvents(runId),
    referencedBlobs: () => store.referencedBlobs(),
    close: () => Promise.resolve(),
  };
}

function label(event: Record<string, unknown>, session: ReplaySession): void {
  if (event.runId !== session.runId) return;
  if (event.type === 'run.started') {
    const fork = session.fork;
    if (fork === undefined) event.replayOf = { runId: session.recording.run.id, mode: session.mode };
    else event.forkOf = { runId: session.recording.run.id, atSeq: fork.atSeq, edit: fork.edit };
  } else if (event.type === 'step.finished') {
    event.label = session.labels.get(event.stepId as string) ?? 'live';
  }
}

function report(
  event: Record<string, unknown>,
  session: ReplaySession,
  started: Map<string, { seq: number; kind: string; name: string }>,
  onStep: (step: ReplayStepReport) => void,
): void {
  if (event.type === 'step.started') {
    started.set(event.stepId as string, {
      seq: event.seq as number,
      kind: event.kind as string,
      name: event.name as string,
    });
  } else if (event.type === 'step.finished') {
    const step = started.get(event.stepId as string);
    started.delete(event.stepId as string);
    try {
      onStep({
        seq: step?.seq ?? null,
        kind: step?.kind ?? null,
        name: step?.name ?? null,
        label: event.label as string,
        status: event.status as 'ok' | 'error',
        stepsTotal: session.recording.steps.length,
      });
    } catch {
      // A progress listener must not break the recording of the new run.
    }
  }
}
