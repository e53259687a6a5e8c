import { findPendingArtifacts, type PendingArtifact, type RunSummary, type Store } from '@rewind/store';

// `rewind doctor`: every run's pending artifacts (blobs its events refer to that the blob store
// lacks), read from the store directly. The same lookup as the server's GET /v1/runs/:id.

export interface DoctorRun {
  runId: string;
  agent: string | null;
  status: RunSummary['status'];
  pendingArtifacts: PendingArtifact[];
}

export interface DoctorReport {
  checkedRuns: number;
  pendingArtifacts: number;
  /** Only the runs with pending artifacts, newest first. */
  runs: DoctorRun[];
}

export async function diagnose(store: Store): Promise<DoctorReport> {
  const report: DoctorReport = { checkedRuns: 0, pendingArtifacts: 0, runs: [] };
  let cursor: string | undefined;
  do {
    const page = await store.listRuns({ limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
    for (const run of page.items) {
      report.checkedRuns++;
      const pending = (await findPendingArtifacts(store, run.id)) ?? [];
      if (pending.length === 0) continue;
      report.pendingArtifacts += pending.length;
      report.runs.push({ runId: run.id, agent: run.agent, status: run.status, pendingArtifacts: pending });
    }
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return report;
}
