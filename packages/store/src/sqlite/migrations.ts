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
  {
    version: 2,
    name: 'replay sessions',
    sql: `
-- The replay orchestrator's queue (docs/orchestrator.md): one row per replay session. A worker
-- claims a queued row (status running, worker_id, lease_expires_ms) and renews the lease by
-- heartbeat; seq orders the queue; JSON columns (fork, result, labels, error) are text.
CREATE TABLE replay_sessions (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id text UNIQUE NOT NULL,
  run_id text NOT NULL,
  mode text NOT NULL,
  fork text,
  status text NOT NULL,
  verdict text,
  new_run_id text,
  result text,
  steps_served INTEGER NOT NULL DEFAULT 0,
  steps_total INTEGER,
  labels text NOT NULL DEFAULT '{}',
  error text,
  created_at text NOT NULL,
  started_at text,
  ended_at text,
  timeout_ms INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  worker_id text,
  lease_expires_ms INTEGER,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  event_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX replay_sessions_queue ON replay_sessions (status, seq);

-- What happened to a session, in order (seq from 1): what GET /v1/replays/:id/events streams.
CREATE TABLE replay_session_events (
  session_id text NOT NULL,
  seq INTEGER NOT NULL,
  type text NOT NULL,
  data text NOT NULL,
  at text NOT NULL,
  PRIMARY KEY (session_id, seq)
);
`,
  },
];
