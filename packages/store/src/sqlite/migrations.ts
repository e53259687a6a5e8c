// Versioned migrations of the SQLite store. Append new ones; never edit a released one.
// Applied migrations are recorded in `schema_migrations (version, name, applied_at)`.

export interface SqliteMigration {
  version: number;
  name: string;
  sql: string;
}

const labelColumns = ['recorded', 'replayed', 'cached', 'live', 'overridden', 'diverged', 'redacted']
  .map((label) => `  label_${label} INTEGER NOT NULL DEFAULT 0`)
  .join(',\n');

export const SQLITE_MIGRATIONS: readonly SqliteMigration[] = [
  {
    version: 1,
    name: 'events and runs',
    sql: `
-- One row per accepted event, in its slot: (run_id, step_id, phase) with step_id '' for run
-- events and phase rs | ss | sf | rf. The event's JSON is kept whole in body.
CREATE TABLE events (
  id INTEGER PRIMARY KEY,
  event_id TEXT NOT NULL,
  run_id TEXT NOT NULL,
  step_id TEXT NOT NULL,
  phase TEXT NOT NULL,
  seq INTEGER,
  body TEXT NOT NULL
);
CREATE UNIQUE INDEX events_event_id ON events (event_id);
CREATE UNIQUE INDEX events_slot ON events (run_id, step_id, phase);
CREATE UNIQUE INDEX events_seq ON events (run_id, seq) WHERE seq IS NOT NULL;

-- The per-run projection listRuns filters and sorts on; sort_time is run.started's time, else
-- the earliest event time seen (both in the fixed-width form of sortableTime()).
CREATE TABLE runs (
  id TEXT PRIMARY KEY,
  agent TEXT,
  status TEXT NOT NULL,
  started_at TEXT,
  started_sort TEXT,
  ended_at TEXT,
  first_seen TEXT NOT NULL,
  sort_time TEXT NOT NULL,
  step_count INTEGER NOT NULL DEFAULT 0,
  error_count INTEGER NOT NULL DEFAULT 0,
${labelColumns},
  replay_of TEXT,
  fork_of TEXT
) WITHOUT ROWID;
CREATE INDEX runs_sort ON runs (sort_time, id);
CREATE INDEX runs_agent_sort ON runs (agent, sort_time, id);
CREATE INDEX runs_status_sort ON runs (status, sort_time, id);
`,
  },
];
