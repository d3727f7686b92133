/**
 * The coordinator's SQLite schema, by version (worker/db/object-migrations.ts runs them in its
 * constructor). Each table group has its own file beside this one; a new version is added at the end.
 */
import { applyObjectMigrations, type ObjectMigrations } from "../object-migrations.ts";

export const COORDINATOR_MIGRATIONS: ObjectMigrations = {
  1: `
    CREATE TABLE commands (
      id TEXT PRIMARY KEY,
      host_id TEXT NOT NULL,
      host_name TEXT NOT NULL,
      kind TEXT NOT NULL,
      state TEXT NOT NULL,
      target TEXT,
      commit_sha TEXT,
      actor TEXT NOT NULL,
      created_at TEXT NOT NULL,
      delivered_at TEXT,
      started_at TEXT,
      finished_at TEXT,
      deadline_at TEXT NOT NULL,
      expires_at TEXT NOT NULL,
      exit_code INTEGER,
      error TEXT,
      result TEXT,
      output_bytes INTEGER NOT NULL DEFAULT 0,
      output_truncated INTEGER NOT NULL DEFAULT 0,
      output_high_water INTEGER NOT NULL DEFAULT -1,
      acked INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX commands_host_created ON commands(host_id, created_at DESC, id DESC);
    CREATE INDEX commands_active ON commands(state) WHERE state IN ('queued', 'delivered', 'running');
    CREATE TABLE command_output (
      command_id TEXT NOT NULL,
      seq INTEGER NOT NULL,
      stream TEXT NOT NULL,
      data TEXT NOT NULL,
      at TEXT NOT NULL,
      PRIMARY KEY (command_id, seq)
    );
    CREATE TABLE agent_sessions (
      host_id TEXT PRIMARY KEY,
      -- The agent process that polled last: another one means the agent restarted.
      session TEXT,
      -- The agent process whose report D1 holds, and that report's hash.
      report_session TEXT,
      report_hash TEXT
    );
  `,
  2: `
    -- The rollout a command was sent for: its transitions drive that rollout.
    ALTER TABLE commands ADD COLUMN rollout_id TEXT;
    -- Every rollout, kept for good (the update history): the engine's record as JSON, and what it deployed.
    CREATE TABLE rollouts (
      id TEXT PRIMARY KEY,
      -- 0 while anything it sent may still move it; 1 once settled.
      settled INTEGER NOT NULL DEFAULT 0,
      started_at TEXT NOT NULL,
      body TEXT NOT NULL,
      context TEXT NOT NULL
    );
    CREATE INDEX rollouts_started ON rollouts(started_at DESC, id DESC);
    CREATE TABLE holds (
      host_name TEXT PRIMARY KEY,
      body TEXT NOT NULL
    );
  `,
  3: `
    -- Running totals for GET /metrics, kept in the step that makes a command final,
    -- so a scrape reads a few rows and never the command history.
    CREATE TABLE command_totals (
      kind TEXT NOT NULL,
      outcome TEXT NOT NULL,
      count INTEGER NOT NULL,
      PRIMARY KEY (kind, outcome)
    );
    -- Per kind: how long finished commands ran, as non-cumulative counts per bucket
    -- of COMMAND_DURATION_BOUNDS (a JSON array, the last entry above every bound), and their sum.
    CREATE TABLE command_durations (
      kind TEXT PRIMARY KEY,
      buckets TEXT NOT NULL,
      sum_seconds REAL NOT NULL
    );
    -- Rollouts by their current state, kept as each rollout is saved; rollouts are kept for good,
    -- so the count starts from the ones already stored.
    CREATE TABLE rollout_states (
      state TEXT PRIMARY KEY,
      count INTEGER NOT NULL
    );
    INSERT INTO rollout_states (state, count) SELECT json_extract(body, '$.state'), count(*) FROM rollouts GROUP BY 1;
    -- Rollouts are kept for good; the unsettled few are read on every alarm, fleet read and scrape.
    CREATE INDEX rollouts_unsettled ON rollouts(started_at) WHERE settled = 0;
  `,
  4: `
    -- Fleet builds of update PR heads (worker/fleet-build/rules.ts): the record as JSON.
    -- open = 1 while an event may still move it (a host building, or offline and the build current).
    CREATE TABLE fleet_builds (
      id TEXT PRIMARY KEY,
      pr INTEGER NOT NULL,
      head_sha TEXT NOT NULL,
      started_at TEXT NOT NULL,
      open INTEGER NOT NULL,
      body TEXT NOT NULL
    );
    CREATE INDEX fleet_builds_pr ON fleet_builds(pr, started_at DESC, id DESC);
    CREATE INDEX fleet_builds_open ON fleet_builds(started_at) WHERE open = 1;
  `,
  5: `
    -- The effects of the coordinator's steps (worker/coordinator/outbox.ts), written in the step that
    -- causes them and carried out from here in seq order: deleted when done, retried at next_at when not.
    -- key: one pending row per thing (a build's status post, a host's last-seen); a second effect of
    -- the same key replaces the body and bumps generation, so a run that began before keeps the row.
    CREATE TABLE outbox (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      key TEXT NOT NULL UNIQUE,
      body TEXT NOT NULL,
      generation INTEGER NOT NULL DEFAULT 0,
      attempts INTEGER NOT NULL DEFAULT 0,
      next_at INTEGER NOT NULL,
      last_error TEXT
    );
    CREATE INDEX outbox_next ON outbox(next_at);
  `,
  6: `
    -- Holds keyed by host id, not name. D1 knows which id a name has, and a migration cannot read D1:
    -- the rows keyed by name wait in holds_by_name until the object's first start keys them
    -- (worker/coordinator/holds.ts, adoptNamedHolds), then that table is dropped.
    ALTER TABLE holds RENAME TO holds_by_name;
    CREATE TABLE holds (
      host_id TEXT PRIMARY KEY,
      -- The catalogue's name of the host when the hold was set, for the dashboards (D1 is the truth).
      host_name TEXT NOT NULL,
      body TEXT NOT NULL
    );
  `,
  7: `
    -- Host incidents not yet closed (worker/notifications/incidents.ts): one row per host and kind
    -- (host-red, tests-failed), the state as JSON; a closed incident has no row.
    CREATE TABLE incidents (
      host_id TEXT NOT NULL,
      kind TEXT NOT NULL,
      host_name TEXT NOT NULL,
      body TEXT NOT NULL,
      PRIMARY KEY (host_id, kind)
    );
    -- The Update history's links: a host that turned red within the window after a rollout switched it.
    CREATE TABLE rollout_incidents (
      rollout_id TEXT NOT NULL,
      host_name TEXT NOT NULL,
      kind TEXT NOT NULL,
      opened_at TEXT NOT NULL,
      switched_at TEXT NOT NULL,
      reason TEXT NOT NULL,
      PRIMARY KEY (rollout_id, host_name, kind, opened_at)
    );
  `,
  8: `
    -- A rollback's target generation, a gc's dry run and fleet defaults (worker/commands/rules.ts CommandParameters), as JSON.
    ALTER TABLE commands ADD COLUMN parameters TEXT;
  `,
  9: `
    -- How a switch activates (switch, boot, boot-then-reboot-if-needed); null: the host's own mode.
    ALTER TABLE commands ADD COLUMN activation TEXT;
  `,
  10: `
    -- When the agent said it reboots the host for the command: the command then has the reboot's deadline and ends lost past it.
    ALTER TABLE commands ADD COLUMN rebooting_at TEXT;
  `,
  11: `
    -- Per host, the finished commands the history's bounds pruned (worker/commands/history.ts): how many,
    -- and the newest of them, so a host's command list says what is no longer there.
    CREATE TABLE command_history_pruned (
      host_id TEXT PRIMARY KEY,
      commands INTEGER NOT NULL,
      newest_created_at TEXT NOT NULL
    );
    -- The fleet's history by age: the bounds prune the oldest first.
    CREATE INDEX commands_created ON commands(created_at, id);
  `,
};

export const migrateCoordinator = (sql: SqlStorage): void => applyObjectMigrations(sql, COORDINATOR_MIGRATIONS);
