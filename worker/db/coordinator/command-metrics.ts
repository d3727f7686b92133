/** Running totals of finished commands for GET /metrics, kept in the step that makes a command final. */
import { z } from "zod";
import type { CommandKind, CommandState } from "../../../common/protocol.ts";
import { readJson, text, number } from "./sql.ts";

/**
 * Upper bounds (seconds) of the command duration histogram's buckets. The
 * stored bucket counts are by position: changing these needs a migration.
 */
export const COMMAND_DURATION_BOUNDS = [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200] as const;

const DurationBuckets = z.array(z.number().int().nonnegative()).length(COMMAND_DURATION_BOUNDS.length + 1);

export class CommandMetricsStore {
  private readonly sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.sql = sql;
  }

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
}
