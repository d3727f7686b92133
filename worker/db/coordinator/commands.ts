/**
 * Commands and their output, in the coordinator's SQLite: their only home (D1 holds none). Calls
 * are synchronous and covered by the object's input and output gates, so a check and the write that
 * depends on it cannot interleave with another request.
 */
import { isActiveCommand } from "../../../common/commands.ts";
import { ActivationMode, CommandKind, CommandResult, CommandState, isFinalCommandState, OutputStream, type StoredOutputChunk } from "../../../common/protocol.ts";
import { fleetPruneCount, type HistoryBounds } from "../../commands/history.ts";
import { CommandParameters, NO_PARAMETERS, type CommandDeadlines, type CommandPatch, type CommandRecord } from "../../commands/rules.ts";
import { readJson, text, textOrNull, number, type Row } from "./sql.ts";

const FINISHED = "state NOT IN ('queued', 'delivered', 'running')";
/**
 * Finished commands outside their host's newest `?` (of any state: what the host page lists), oldest
 * first: what the fleet pass may delete. Walks the commands by age (commands_created) and asks each
 * host's index whether `?` newer ones exist, so a pass costs its batch and the kept newest it passes
 * over, not a ranking of the whole history.
 */
const FLEET_PRUNABLE = `SELECT id FROM commands c WHERE ${FINISHED} AND EXISTS (
    SELECT 1 FROM commands newer WHERE newer.host_id = c.host_id AND (newer.created_at, newer.id) > (c.created_at, c.id)
    LIMIT 1 OFFSET ? - 1
  ) ORDER BY created_at, id LIMIT ?`;
/** A host's finished commands past its newest `?`. */
const HOST_PRUNABLE = `SELECT id FROM commands WHERE host_id = ? AND ${FINISHED} ORDER BY created_at DESC, id DESC LIMIT -1 OFFSET ?`;

/** What the history's bounds pruned of one host: how many commands, and the newest of them. */
export interface PrunedHistory {
  count: number;
  newestCreatedAt: string;
}

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
    parameters: row.parameters === null || row.parameters === undefined ? NO_PARAMETERS : (readJson(CommandParameters, text(row.parameters)) ?? NO_PARAMETERS),
    activation: row.activation === null || row.activation === undefined ? null : ActivationMode.parse(row.activation),
    rebootingAt: textOrNull(row.rebooting_at),
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
  rebootingAt: "rebooting_at",
};

function columnValue(key: keyof CommandPatch, value: CommandPatch[keyof CommandPatch]): SqlStorageValue {
  if (value === undefined || value === null) return null;
  if (key === "result") return JSON.stringify(value);
  if (typeof value === "boolean") return value ? 1 : 0;
  if (typeof value === "string" || typeof value === "number") return value;
  return JSON.stringify(value);
}

export class CommandStore {
  private readonly sql: SqlStorage;
  private readonly bounds: HistoryBounds;
  /** Finished commands the last fleet pass left (in memory: after a restart the first end passes again). */
  private leftByLastFleetPass = 0;
  /**
   * Finished commands stored, kept by the writes below so an end does not count the history; counted
   * from the table when unknown (at start, after a host's removal) and again after each fleet pass.
   */
  private finished: number | null = null;
  /**
   * How many times this store changed commands (in memory): a reader holding a host's commands read
   * earlier in the same synchronous step knows by it whether they are still what is stored.
   */
  changes = 0;

  constructor(sql: SqlStorage, bounds: HistoryBounds) {
    this.sql = sql;
    this.bounds = bounds;
  }

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

  /** The clock times of every command not yet final: every scheduling reads them, so no whole record is parsed. */
  activeDeadlines(): CommandDeadlines[] {
    return this.sql
      .exec("SELECT state, expires_at, deadline_at FROM commands WHERE state IN ('queued', 'delivered', 'running')")
      .toArray()
      .map((row) => ({ state: CommandState.parse(row.state), expiresAt: text(row.expires_at), deadlineAt: text(row.deadline_at) }));
  }

  activeCommandsOf(hostId: string): CommandRecord[] {
    return this.sql
      .exec("SELECT * FROM commands WHERE host_id = ? AND state IN ('queued', 'delivered', 'running') ORDER BY created_at, id", hostId)
      .toArray()
      .map(toRecord);
  }

  insertCommand(record: CommandRecord): void {
    this.changes++;
    this.sql.exec(
      `INSERT INTO commands (id, host_id, host_name, kind, state, target, commit_sha, actor, created_at, delivered_at, started_at,
         finished_at, deadline_at, expires_at, exit_code, error, result, output_bytes, output_truncated, output_high_water, acked, rollout_id, parameters, activation, rebooting_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
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
      JSON.stringify(record.parameters),
      record.activation,
      record.rebootingAt,
    );
    if (!isActiveCommand(record) && this.finished !== null) this.finished++;
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
    const written = cursor.rowsWritten > 0;
    if (written) this.changes++;
    const ended = patch.state !== undefined && isFinalCommandState(patch.state) && !isFinalCommandState(expectedState);
    if (written && ended && this.finished !== null) this.finished++;
    return written;
  }

  /** Marks deliveries the agent confirmed holding; only its own, only while delivered. */
  acknowledge(hostId: string, ids: readonly string[]): void {
    this.changes++;
    for (const id of ids) this.sql.exec("UPDATE commands SET acked = 1 WHERE id = ? AND host_id = ? AND acked = 0", id, hostId);
  }

  /** Stores the kept chunks and the command's new totals together (one implicit transaction). */
  appendOutput(
    commandId: string,
    kept: readonly StoredOutputChunk[],
    totals: { outputBytes: number; outputTruncated: boolean; outputHighWater: number },
  ): void {
    this.changes++;
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

  /**
   * After a command of `hostId` ended: the host's finished commands past its newest `outputPerHost` lose
   * their output and those past `perHostMax` go; then, past the fleet's limit, the oldest finished
   * commands of any host but its newest `perHostKept` (worker/commands/history.ts). Each deletion is
   * counted for its host in the same step.
   */
  prune(hostId: string): void {
    this.changes++;
    const { perHostMax, perHostKept, outputPerHost } = this.bounds;
    this.sql.exec(`DELETE FROM command_output WHERE command_id IN (SELECT id FROM (${HOST_PRUNABLE}))`, hostId, outputPerHost);
    this.deletePruned(HOST_PRUNABLE, hostId, perHostMax);
    const excess = fleetPruneCount(this.finishedCount(), this.bounds, this.leftByLastFleetPass);
    if (excess === 0) return;
    this.deletePruned(FLEET_PRUNABLE, perHostKept, excess);
    this.finished = null;
    this.leftByLastFleetPass = this.finishedCount();
  }

  /** Commands neither active nor deleted. */
  finishedCount(): number {
    if (this.finished === null) {
      const row = this.sql.exec(`SELECT (SELECT count(*) FROM commands) - (SELECT count(*) FROM commands WHERE state IN ('queued', 'delivered', 'running')) AS n`).one();
      this.finished = Number(row.n);
    }
    return this.finished;
  }

  /** What the history's bounds pruned of the host, or null when nothing. */
  prunedOf(hostId: string): PrunedHistory | null {
    const row = this.sql.exec("SELECT commands, newest_created_at FROM command_history_pruned WHERE host_id = ?", hostId).toArray()[0];
    return row ? { count: Number(row.commands), newestCreatedAt: text(row.newest_created_at) } : null;
  }

  /** Deletes what `selection` names (with its output), counting it per host first: one read of the selection, then by id. */
  private deletePruned(selection: string, ...params: SqlStorageValue[]): void {
    const chosenIds = this.sql.exec(selection, ...params).toArray().map((row) => text(row.id));
    if (chosenIds.length === 0) return;
    const ids = JSON.stringify(chosenIds);
    const chosen = "SELECT value FROM json_each(?)";
    this.sql.exec(
      `INSERT INTO command_history_pruned (host_id, commands, newest_created_at)
       SELECT host_id, count(*), max(created_at) FROM commands WHERE id IN (${chosen}) GROUP BY host_id
       ON CONFLICT (host_id) DO UPDATE SET commands = commands + excluded.commands, newest_created_at = max(newest_created_at, excluded.newest_created_at)`,
      ids,
    );
    this.sql.exec(`DELETE FROM command_output WHERE command_id IN (${chosen})`, ids);
    this.sql.exec(`DELETE FROM commands WHERE id IN (${chosen})`, ids);
    // Read in this step, so every one chosen is there and finished.
    if (this.finished !== null) this.finished -= chosenIds.length;
  }

  /** The host is gone: its commands and their output go with it. */
  forgetHost(hostId: string): void {
    this.changes++;
    this.sql.exec("DELETE FROM command_output WHERE command_id IN (SELECT id FROM commands WHERE host_id = ?)", hostId);
    this.sql.exec("DELETE FROM commands WHERE host_id = ?", hostId);
    this.sql.exec("DELETE FROM command_history_pruned WHERE host_id = ?", hostId);
    this.finished = null;
  }
}
