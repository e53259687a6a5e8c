import type { Store } from '@rewind/store';
import type { ReplaySession } from './session.ts';

// The new run of a replay goes through the ordinary recorder and pipeline; on its way into the
// store its events gain what only the replay knows: `replayOf`/`forkOf` on run.started and each
// step's label on step.finished. The store itself is the caller's: closing this view leaves it open.

export function labellingStore(store: Store, session: ReplaySession): Store {
  return {
    get location() {
      return store.location;
    },
    get blobs() {
      return store.blobs;
    },
    append(events) {
      for (const event of events) label(event as Record<string, unknown>, session);
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
