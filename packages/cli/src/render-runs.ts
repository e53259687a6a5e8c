import type { RunSummary } from '@rewind/store';
import {
  durationBetween,
  formatDuration,
  formatTime,
  padEnd,
  padStart,
  type Style,
  styleStatus,
  truncate,
} from './format.ts';

// `rewind runs` for people: one row per run, newest first.

/** The public shape of one `rewind runs --json` item (external checks rely on it: keep it). */
export interface RunListItemJson {
  id: string;
  agent: string | null;
  status: RunSummary['status'];
  startedAt: string | null;
  endedAt: string | null;
  stepCount: number;
  replayOf?: RunSummary['replayOf'];
  forkOf?: RunSummary['forkOf'];
}

export function toRunListJson(run: RunSummary): RunListItemJson {
  return {
    id: run.id,
    agent: run.agent,
    status: run.status,
    startedAt: run.startedAt,
    endedAt: run.endedAt,
    stepCount: run.stepCount,
    ...(run.replayOf === undefined ? {} : { replayOf: run.replayOf }),
    ...(run.forkOf === undefined ? {} : { forkOf: run.forkOf }),
  };
}

function note(run: RunSummary): string {
  if (run.forkOf !== undefined) return `fork of ${run.forkOf.runId} at step ${run.forkOf.atSeq}`;
  if (run.replayOf !== undefined) return `${run.replayOf.mode} replay of ${run.replayOf.runId}`;
  return '';
}

export function renderRunsTable(runs: readonly RunSummary[], style: Style): string[] {
  const rows = runs.map((run) => {
    const duration = durationBetween(run.startedAt, run.endedAt);
    return {
      run,
      id: run.id,
      agent: truncate(run.agent ?? '?', 32),
      started: formatTime(run.startedAt),
      duration: duration === undefined ? (run.status === 'incomplete' ? '…' : '-') : formatDuration(duration),
      steps: run.errorCount > 0 ? `${run.stepCount} (${run.errorCount} err)` : String(run.stepCount),
      note: note(run),
    };
  });
  const width = (title: string, values: string[]): number =>
    Math.max(title.length, ...values.map((v) => v.length));
  const w = {
    id: width(
      'id',
      rows.map((r) => r.id),
    ),
    agent: width(
      'agent',
      rows.map((r) => r.agent),
    ),
    status: width(
      'status',
      rows.map((r) => r.run.status),
    ),
    started: width(
      'started',
      rows.map((r) => r.started),
    ),
    duration: width(
      'duration',
      rows.map((r) => r.duration),
    ),
    steps: width(
      'steps',
      rows.map((r) => r.steps),
    ),
  };
  const lines = [
    style.dim(
      [
        padEnd('id', w.id),
        padEnd('agent', w.agent),
        padEnd('status', w.status),
        padEnd('started', w.started),
        padStart('duration', w.duration),
        padStart('steps', w.steps),
      ]
        .join('  ')
        .trimEnd(),
    ),
  ];
  for (const row of rows) {
    lines.push(
      [
        row.id + ' '.repeat(w.id - row.id.length),
        padEnd(row.agent, w.agent),
        styleStatus(style, row.run.status) + ' '.repeat(w.status - row.run.status.length),
        padEnd(row.started, w.started),
        padStart(row.duration, w.duration),
        padStart(row.steps, w.steps),
        style.dim(row.note),
      ]
        .join('  ')
        .trimEnd(),
    );
  }
  return lines;
}
