/**
 * The coordinator Durable Object's own SQLite storage: the home of every
 * command (its state, output, acknowledgement and output high-water mark) and
 * of each host's agent session. Calls are synchronous and covered by the
 * object's input and output gates, so a check and the write that depends on
 * it cannot interleave with another request, and nothing is answered before
 * it is durable. D1 holds the catalogue (hosts, tokens, reports, audit,
 * GitHub state); commands live here only and are read through the object.
 */
import { z } from "zod";
import { CommandKind, CommandResult, CommandState, HostHold, LockChange, OutputStream, type StoredOutputChunk } from "../../common/protocol.ts";
import type { CommandPatch, CommandRecord } from "../commands/rules.ts";
import { FleetBuildRecord, isOpen } from "../fleet-build/rules.ts";
import { Rollout } from "../rollouts/engine.ts";
import { applyObjectMigrations, type ObjectMigrations } from "./object-migrations.ts";

/** Fleet builds kept, newest first: a few per update PR is all anyone reads. */
const KEEP_FLEET_BUILDS = 200;
/** Per host, finished commands kept with their output, and kept at all. */
const KEEP_OUTPUT_PER_HOST = 50;
const KEEP_COMMANDS_PER_HOST = 500;

/**
 * Upper bounds (seconds) of the command duration histogram's buckets. The
 * stored bucket counts are by position: changing these needs a migration.
 */
export const COMMAND_DURATION_BOUNDS = [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200] as const;

const MIGRATIONS: ObjectMigrations = {
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
};

type Row = Record<string, SqlStorageValue>;

const DurationBuckets = z.array(z.number().int().nonnegative()).length(COMMAND_DURATION_BOUNDS.length + 1);

/** What a rollout deployed, kept with it for the update history (the PR records are pruned; this is not). */
export const RolloutContextRecord = z.object({
  pr: z.object({ number: z.number().int().positive(), title: z.string(), url: z.string() }).nullable(),
  lockChanges: z.array(LockChange),
  /** Host name → id, so the rollout's steps need no catalogue read. */
  hostIds: z.record(z.string(), z.string()),
  /** Hosts with tests whose agent does not run them after a switch: the rollout asks for them. */
  runTestsOn: z.array(z.string()).default([]),
  /** Hosts whose turn came while they ran another command: sent when it ends. */
  deferred: z.array(z.string()).default([]),
});
export type RolloutContextRecord = z.infer<typeof RolloutContextRecord>;

export interface StoredRollout {
  rollout: Rollout;
  context: RolloutContextRecord;
}

function readJson<T extends z.ZodType>(schema: T, value: string): z.infer<T> | null {
  try {
    const parsed = schema.safeParse(JSON.parse(value));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

function toStoredRollout(row: Row): StoredRollout | null {
  const rollout = readJson(Rollout, String(row.body));
  const context = readJson(RolloutContextRecord, String(row.context));
  if (!rollout || !context) {
    console.error("a stored rollout no longer reads; it is left out");
    return null;
  }
  return { rollout, context };
}

type Cell = SqlStorageValue | undefined;
const text = (value: Cell): string => String(value);
const textOrNull = (value: Cell): string | null => (value === null || value === undefined ? null : String(value));
const number = (value: Cell): number => Number(value);

function toRecord(row: Row): CommandRecord {
  let result: CommandResult | null = null;
  if (row.result !== null && row.result !== undefined) {
    // Written by an older version, perhaps: a result we cannot read is shown as none, never a failure.
    try {
      const parsed = CommandResult.safeParse(JSON.parse(text(row.result)));
      result = parsed.success ? parsed.data : null;
    } catch {
      result = null;
    }
  }
  return {
    id: text(row.id),
    hostId: text(row.host_id),
    hostName: text(row.host_name),
    kind: CommandKind.parse(row.kind),
    state: CommandState.parse(row.state),
    target: textOrNull(row.target),
    commit: textOrNull(row.commit_sha),
    actor: text(row.actor),
    createdAt: text(row.created_at),
    deliveredAt: textOrNull(row.delivered_at),
    startedAt: textOrNull(row.started_at),
    finishedAt: textOrNull(row.finished_at),
    deadlineAt: text(row.deadline_at),
    expiresAt: text(row.expires_at),
    exitCode: row.exit_code === null || row.exit_code === undefined ? null : number(row.exit_code),
    error: textOrNull(row.error),
    result,
    outputBytes: Number(row.output_bytes),
    outputTruncated: Number(row.output_truncated) === 1,
    outputHighWater: Number(row.output_high_water),
    acked: Number(row.acked) === 1,
    rolloutId: textOrNull(row.rollout_id),
  };
}

const PATCH_COLUMNS: Record<keyof CommandPatch, string> = {
  state: "state",
  deliveredAt: "delivered_at",
  startedAt: "started_at",
  finishedAt: "finished_at",
  deadlineAt: "deadline_at",
  exitCode: "exit_code",
  error: "error",
  result: "result",
  acked: "acked",
};

function columnValue(key: keyof CommandPatch, value: CommandPatch[keyof CommandPatch]): SqlStorageValue {
  if (value === undefined || value === null) return null;
  if (key === "result") return JSON.stringify(value);
  if (typeof value === "boolean") return value ? 1 : 0;
  if (typeof value === "string" || typeof value === "number") return value;
  return JSON.stringify(value);
}

export interface AgentSession {
  session: string | null;
  reportSession: string | null;
  reportHash: string | null;
}

export class CoordinatorStorage {
  private readonly sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.sql = sql;
    applyObjectMigrations(this.sql, MIGRATIONS);
  }

  // -------------------------------------------------------------------------
  // Commands

  command(id: string): CommandRecord | null {
    const rows = this.sql.exec("SELECT * FROM commands WHERE id = ?", id).toArray();
    return rows[0] ? toRecord(rows[0]) : null;
  }

  /** Every command not yet final, oldest first. */
  activeCommands(): CommandRecord[] {
    return this.sql
      .exec("SELECT * FROM commands WHERE state IN ('queued', 'delivered', 'running') ORDER BY created_at, id")
      .toArray()
      .map(toRecord);
  }

  activeCommandsOf(hostId: string): CommandRecord[] {
    return this.sql
      .exec("SELECT * FROM commands WHERE host_id = ? AND state IN ('queued', 'delivered', 'running') ORDER BY created_at, id", hostId)
      .toArray()
      .map(toRecord);
  }

  insertCommand(record: CommandRecord): void {
    this.sql.exec(
      `INSERT INTO commands (id, host_id, host_name, kind, state, target, commit_sha, actor, created_at, delivered_at, started_at,
         finished_at, deadline_at, expires_at, exit_code, error, result, output_bytes, output_truncated, output_high_water, acked, rollout_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      record.id,
      record.hostId,
      record.hostName,
      record.kind,
      record.state,
      record.target,
      record.commit,
      record.actor,
      record.createdAt,
      record.deliveredAt,
      record.startedAt,
      record.finishedAt,
      record.deadlineAt,
      record.expiresAt,
      record.exitCode,
      record.error,
      record.result === null ? null : JSON.stringify(record.result),
      record.outputBytes,
      record.outputTruncated ? 1 : 0,
      record.outputHighWater,
      record.acked ? 1 : 0,
      record.rolloutId,
    );
  }

  /** Writes `patch` only while the command is still in `expectedState`; false when it was not. */
  updateCommand(id: string, expectedState: CommandState, patch: CommandPatch): boolean {
    const keys = (Object.keys(patch) as (keyof CommandPatch)[]).filter((key) => patch[key] !== undefined);
    if (keys.length === 0) return true;
    const assignments = keys.map((key) => `${PATCH_COLUMNS[key]} = ?`).join(", ");
    const cursor = this.sql.exec(
      `UPDATE commands SET ${assignments} WHERE id = ? AND state = ?`,
      ...keys.map((key) => columnValue(key, patch[key])),
      id,
      expectedState,
    );
    return cursor.rowsWritten > 0;
  }

  /** Marks deliveries the agent confirmed holding; only its own, only while delivered. */
  acknowledge(hostId: string, ids: readonly string[]): void {
    for (const id of ids) this.sql.exec("UPDATE commands SET acked = 1 WHERE id = ? AND host_id = ? AND acked = 0", id, hostId);
  }

  /** Stores the kept chunks and the command's new totals together (one implicit transaction). */
  appendOutput(
    commandId: string,
    kept: readonly StoredOutputChunk[],
    totals: { outputBytes: number; outputTruncated: boolean; outputHighWater: number },
  ): void {
    this.sql.exec(
      "UPDATE commands SET output_bytes = ?, output_truncated = ?, output_high_water = ? WHERE id = ?",
      totals.outputBytes,
      totals.outputTruncated ? 1 : 0,
      totals.outputHighWater,
      commandId,
    );
    for (const chunk of kept) {
      this.sql.exec(
        "INSERT OR IGNORE INTO command_output (command_id, seq, stream, data, at) VALUES (?, ?, ?, ?, ?)",
        commandId,
        chunk.seq,
        chunk.stream,
        chunk.data,
        chunk.at,
      );
    }
  }

  readOutput(commandId: string, afterSeq: number, limit: number): StoredOutputChunk[] {
    return this.sql
      .exec("SELECT seq, stream, data, at FROM command_output WHERE command_id = ? AND seq > ? ORDER BY seq LIMIT ?", commandId, afterSeq, limit)
      .toArray()
      .map((row) => ({ seq: Number(row.seq), stream: OutputStream.parse(row.stream), data: text(row.data), at: text(row.at) }));
  }

  hostCommands(hostId: string, limit: number): CommandRecord[] {
    return this.sql
      .exec("SELECT * FROM commands WHERE host_id = ? ORDER BY created_at DESC, id DESC LIMIT ?", hostId, limit)
      .toArray()
      .map(toRecord);
  }

  /** The newest `perHost` commands of every host, newest first. */
  recentCommandsByHost(perHost: number): Map<string, CommandRecord[]> {
    const rows = this.sql
      .exec(
        `SELECT * FROM (
           SELECT *, row_number() OVER (PARTITION BY host_id ORDER BY created_at DESC, id DESC) AS rank FROM commands
         ) WHERE rank <= ? ORDER BY created_at DESC, id DESC`,
        perHost,
      )
      .toArray();
    const byHost = new Map<string, CommandRecord[]>();
    for (const row of rows) {
      const record = toRecord(row);
      const list = byHost.get(record.hostId) ?? [];
      list.push(record);
      byHost.set(record.hostId, list);
    }
    return byHost;
  }

  /** Old finished commands of a host lose their output, then themselves, so storage stays bounded. */
  prune(hostId: string): void {
    this.sql.exec(
      `DELETE FROM command_output WHERE command_id IN (
         SELECT id FROM commands WHERE host_id = ? AND state NOT IN ('queued', 'delivered', 'running')
         ORDER BY created_at DESC, id DESC LIMIT -1 OFFSET ?)`,
      hostId,
      KEEP_OUTPUT_PER_HOST,
    );
    this.sql.exec(
      `DELETE FROM commands WHERE id IN (
         SELECT id FROM commands WHERE host_id = ? AND state NOT IN ('queued', 'delivered', 'running')
         ORDER BY created_at DESC, id DESC LIMIT -1 OFFSET ?)`,
      hostId,
      KEEP_COMMANDS_PER_HOST,
    );
  }

  // -------------------------------------------------------------------------
  // Agent sessions

  agentSession(hostId: string): AgentSession | null {
    const row = this.sql.exec("SELECT session, report_session, report_hash FROM agent_sessions WHERE host_id = ?", hostId).toArray()[0];
    return row ? { session: textOrNull(row.session), reportSession: textOrNull(row.report_session), reportHash: textOrNull(row.report_hash) } : null;
  }

  saveAgentSession(hostId: string, session: AgentSession): void {
    this.sql.exec(
      `INSERT INTO agent_sessions (host_id, session, report_session, report_hash) VALUES (?, ?, ?, ?)
       ON CONFLICT (host_id) DO UPDATE SET session = excluded.session, report_session = excluded.report_session, report_hash = excluded.report_hash`,
      hostId,
      session.session,
      session.reportSession,
      session.reportHash,
    );
  }

  // -------------------------------------------------------------------------
  // Rollouts and holds

  rollout(id: string): StoredRollout | null {
    const row = this.sql.exec("SELECT body, context FROM rollouts WHERE id = ?", id).toArray()[0];
    return row ? toStoredRollout(row) : null;
  }

  /** Rollouts not yet settled (running, soaking, waiting, or stopped with commands still out). */
  unsettledRollouts(): StoredRollout[] {
    return this.sql.exec("SELECT body, context FROM rollouts WHERE settled = 0 ORDER BY started_at").toArray().flatMap((row) => {
      const stored = toStoredRollout(row);
      return stored ? [stored] : [];
    });
  }

  listRollouts(limit: number, before: { startedAt: string; id: string } | null): StoredRollout[] {
    const rows = before
      ? this.sql.exec(
          "SELECT body, context FROM rollouts WHERE (started_at, id) < (?, ?) ORDER BY started_at DESC, id DESC LIMIT ?",
          before.startedAt,
          before.id,
          limit,
        )
      : this.sql.exec("SELECT body, context FROM rollouts ORDER BY started_at DESC, id DESC LIMIT ?", limit);
    return rows.toArray().flatMap((row) => {
      const stored = toStoredRollout(row);
      return stored ? [stored] : [];
    });
  }

  /** `settled`: nothing the rollout sent is out any more, so no event can move it again. */
  saveRollout(rollout: Rollout, context: RolloutContextRecord, settled: boolean): void {
    const before = this.sql.exec("SELECT json_extract(body, '$.state') AS state FROM rollouts WHERE id = ?", rollout.id).toArray()[0];
    const was = before ? textOrNull(before.state) : null;
    if (was !== rollout.state) {
      if (was !== null) this.sql.exec("UPDATE rollout_states SET count = count - 1 WHERE state = ?", was);
      this.sql.exec(
        "INSERT INTO rollout_states (state, count) VALUES (?, 1) ON CONFLICT (state) DO UPDATE SET count = count + 1",
        rollout.state,
      );
    }
    this.sql.exec(
      `INSERT INTO rollouts (id, settled, started_at, body, context) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET settled = excluded.settled, body = excluded.body, context = excluded.context`,
      rollout.id,
      settled ? 1 : 0,
      rollout.startedAt,
      JSON.stringify(rollout),
      JSON.stringify(context),
    );
  }

  /** How many rollouts are in each state, from the running counts (no scan of the history). */
  rolloutStates(): Map<string, number> {
    return new Map(this.sql.exec("SELECT state, count FROM rollout_states").toArray().map((row) => [text(row.state), number(row.count)]));
  }

  // -------------------------------------------------------------------------
  // Command totals for /metrics

  /** Counts a command that reached its final state; `seconds`, how long it ran, when it ran at all. */
  recordCommandFinished(kind: CommandKind, outcome: CommandState, seconds: number | null): void {
    this.sql.exec(
      "INSERT INTO command_totals (kind, outcome, count) VALUES (?, ?, 1) ON CONFLICT (kind, outcome) DO UPDATE SET count = count + 1",
      kind,
      outcome,
    );
    if (seconds === null) return;
    const row = this.sql.exec("SELECT buckets, sum_seconds FROM command_durations WHERE kind = ?", kind).toArray()[0];
    const buckets = (row && readJson(DurationBuckets, text(row.buckets))) || new Array<number>(COMMAND_DURATION_BOUNDS.length + 1).fill(0);
    const index = COMMAND_DURATION_BOUNDS.findIndex((bound) => seconds <= bound);
    buckets[index === -1 ? COMMAND_DURATION_BOUNDS.length : index]! += 1;
    this.sql.exec(
      `INSERT INTO command_durations (kind, buckets, sum_seconds) VALUES (?, ?, ?)
       ON CONFLICT (kind) DO UPDATE SET buckets = excluded.buckets, sum_seconds = excluded.sum_seconds`,
      kind,
      JSON.stringify(buckets),
      (row ? number(row.sum_seconds) : 0) + seconds,
    );
  }

  commandTotals(): { kind: string; outcome: string; count: number }[] {
    return this.sql
      .exec("SELECT kind, outcome, count FROM command_totals ORDER BY kind, outcome")
      .toArray()
      .map((row) => ({ kind: text(row.kind), outcome: text(row.outcome), count: number(row.count) }));
  }

  commandDurations(): { kind: string; buckets: number[]; sumSeconds: number }[] {
    return this.sql
      .exec("SELECT kind, buckets, sum_seconds FROM command_durations ORDER BY kind")
      .toArray()
      .flatMap((row) => {
        const buckets = readJson(DurationBuckets, text(row.buckets));
        return buckets ? [{ kind: text(row.kind), buckets, sumSeconds: number(row.sum_seconds) }] : [];
      });
  }

  holds(): Map<string, HostHold> {
    const holds = new Map<string, HostHold>();
    for (const row of this.sql.exec("SELECT host_name, body FROM holds").toArray()) {
      const hold = readJson(HostHold, text(row.body));
      if (hold) holds.set(text(row.host_name), hold);
    }
    return holds;
  }

  setHold(hostName: string, hold: HostHold | null): void {
    if (hold === null) this.sql.exec("DELETE FROM holds WHERE host_name = ?", hostName);
    else {
      this.sql.exec(
        "INSERT INTO holds (host_name, body) VALUES (?, ?) ON CONFLICT (host_name) DO UPDATE SET body = excluded.body",
        hostName,
        JSON.stringify(hold),
      );
    }
  }

  /** The host is gone: its commands, their output and its session go with it. */
  forgetHost(hostId: string): void {
    this.sql.exec("DELETE FROM command_output WHERE command_id IN (SELECT id FROM commands WHERE host_id = ?)", hostId);
    this.sql.exec("DELETE FROM commands WHERE host_id = ?", hostId);
    this.sql.exec("DELETE FROM agent_sessions WHERE host_id = ?", hostId);
  }

  forgetHold(hostName: string): void {
    this.sql.exec("DELETE FROM holds WHERE host_name = ?", hostName);
  }

  // -------------------------------------------------------------------------
  // Fleet builds

  fleetBuild(id: string): FleetBuildRecord | null {
    const row = this.sql.exec("SELECT body FROM fleet_builds WHERE id = ?", id).toArray()[0];
    return row ? readFleetBuild(row) : null;
  }

  /** Builds an event may still move, oldest first. */
  openFleetBuilds(): FleetBuildRecord[] {
    return this.sql.exec("SELECT body FROM fleet_builds WHERE open = 1 ORDER BY started_at, id").toArray().flatMap(fleetBuildRows);
  }

  /** The newest build of the PR (of whatever head), or null. */
  latestFleetBuild(pr: number): FleetBuildRecord | null {
    const row = this.sql.exec("SELECT body FROM fleet_builds WHERE pr = ? ORDER BY started_at DESC, id DESC LIMIT 1", pr).toArray()[0];
    return row ? readFleetBuild(row) : null;
  }

  saveFleetBuild(build: FleetBuildRecord): void {
    this.sql.exec(
      `INSERT INTO fleet_builds (id, pr, head_sha, started_at, open, body) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET open = excluded.open, body = excluded.body`,
      build.id,
      build.pr,
      build.headSha,
      build.startedAt,
      isOpen(build) ? 1 : 0,
      JSON.stringify(build),
    );
  }

  /** Keeps the newest builds; an open one is never dropped. */
  pruneFleetBuilds(): void {
    this.sql.exec(
      `DELETE FROM fleet_builds WHERE open = 0 AND id IN (
         SELECT id FROM fleet_builds ORDER BY started_at DESC, id DESC LIMIT -1 OFFSET ?)`,
      KEEP_FLEET_BUILDS,
    );
  }
}

function readFleetBuild(row: Row): FleetBuildRecord | null {
  const build = readJson(FleetBuildRecord, String(row.body));
  if (!build) console.error("a stored fleet build no longer reads; it is left out");
  return build;
}

const fleetBuildRows = (row: Row): FleetBuildRecord[] => {
  const build = readFleetBuild(row);
  return build ? [build] : [];
};
