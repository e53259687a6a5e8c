// Versioned migrations of the PostgreSQL store. Append new ones; never edit a released one.
// `{schema}` stands for the quoted schema name. Applied migrations are recorded in
// `schema_migrations (version, name, applied_at)`; runs are serialized by an advisory lock.

export interface PostgresMigration {
  version: number;
  name: string;
  sql: string;
}

const labelColumns = ['recorded', 'replayed', 'cached', 'live', 'overridden', 'diverged', 'redacted']
  .map((label) => `  label_${label} integer NOT NULL DEFAULT 0`)
  .join(',\n');

export const POSTGRES_MIGRATIONS: readonly PostgresMigration[] = [
  {
    version: 1,
    name: 'events and runs',
    sql: `
-- One row per accepted event, in its slot: (run_id, step_id, phase) with step_id '' for run
-- events and phase rs | ss | sf | rf. Ids sort bytewise (COLLATE "C") as in SQLite. Rows of a
-- few KB stay inline and uncompressed (toast_tuple_target), so writes and reads skip TOAST.
CREATE TABLE {schema}.events (
  event_id text COLLATE "C" PRIMARY KEY,
  run_id text COLLATE "C" NOT NULL,
  step_id text COLLATE "C" NOT NULL,
  phase text COLLATE "C" NOT NULL,
  seq bigint,
  body json NOT NULL
) WITH (toast_tuple_target = 8160);
CREATE UNIQUE INDEX events_slot ON {schema}.events (run_id, step_id, phase);
CREATE UNIQUE INDEX events_seq ON {schema}.events (run_id, seq) WHERE seq IS NOT NULL;

-- The per-run projection listRuns filters and sorts on; sort_time is run.started's time, else
-- the earliest event time seen (both fixed-width text that sorts as time).
CREATE TABLE {schema}.runs (
  id text COLLATE "C" PRIMARY KEY,
  agent text COLLATE "C",
  status text COLLATE "C" NOT NULL,
  started_at text,
  started_sort text COLLATE "C",
  ended_at text,
  first_seen text COLLATE "C" NOT NULL,
  sort_time text COLLATE "C" NOT NULL,
  step_count integer NOT NULL DEFAULT 0,
  error_count integer NOT NULL DEFAULT 0,
${labelColumns},
  replay_of text,
  fork_of text
);
CREATE INDEX runs_sort ON {schema}.runs (sort_time, id);
CREATE INDEX runs_agent_sort ON {schema}.runs (agent, sort_time, id);
CREATE INDEX runs_status_sort ON {schema}.runs (status, sort_time, id);
`,
  },
  {
    version: 2,
    name: 'replay sessions',
    sql: `
-- The replay orchestrator's queue (docs/orchestrator.md): one row per replay session. A worker
-- claims a queued row (status running, worker_id, lease_expires_ms) and renews the lease by
-- heartbeat; seq orders the queue; JSON columns (fork, result, labels, error) are text.
CREATE TABLE {schema}.replay_sessions (
  seq bigserial PRIMARY KEY,
  id text COLLATE "C" UNIQUE NOT NULL,
  run_id text COLLATE "C" NOT NULL,
  mode text NOT NULL,
  fork text,
  status text NOT NULL,
  verdict text,
  new_run_id text,
  result text,
  steps_served integer NOT NULL DEFAULT 0,
  steps_total integer,
  labels text NOT NULL DEFAULT '{}',
  error text,
  created_at text COLLATE "C" NOT NULL,
  started_at text,
  ended_at text,
  timeout_ms bigint NOT NULL,
  attempts integer NOT NULL DEFAULT 0,
  worker_id text,
  lease_expires_ms bigint,
  cancel_requested integer NOT NULL DEFAULT 0,
  event_count integer NOT NULL DEFAULT 0
);
CREATE INDEX replay_sessions_queue ON {schema}.replay_sessions (status, seq);

-- What happened to a session, in order (seq from 1): what GET /v1/replays/:id/events streams.
CREATE TABLE {schema}.replay_session_events (
  session_id text COLLATE "C" NOT NULL,
  seq integer NOT NULL,
  type text NOT NULL,
  data text NOT NULL,
  at text NOT NULL,
  PRIMARY KEY (session_id, seq)
);
`,
  },
];
