/** Rollouts, kept for good (the update history), and their running counts by state, in the coordinator's SQLite. */
import { z } from "zod";
import { LockChange } from "../../../common/protocol.ts";
import { Rollout } from "../../rollouts/engine.ts";
import { readJson, text, textOrNull, number, type Row } from "./sql.ts";

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

function toStoredRollout(row: Row): StoredRollout | null {
  const rollout = readJson(Rollout, String(row.body));
  const context = readJson(RolloutContextRecord, String(row.context));
  if (!rollout || !context) {
    console.error("a stored rollout no longer reads; it is left out");
    return null;
  }
  return { rollout, context };
}

const storedRollouts = (row: Row): StoredRollout[] => {
  const stored = toStoredRollout(row);
  return stored ? [stored] : [];
};

export class RolloutStore {
  private readonly sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.sql = sql;
  }

  rollout(id: string): StoredRollout | null {
    const row = this.sql.exec("SELECT body, context FROM rollouts WHERE id = ?", id).toArray()[0];
    return row ? toStoredRollout(row) : null;
  }

  /** Rollouts not yet settled (running, soaking, waiting, or stopped with commands still out). */
  unsettledRollouts(): StoredRollout[] {
    return this.sql.exec("SELECT body, context FROM rollouts WHERE settled = 0 ORDER BY started_at").toArray().flatMap(storedRollouts);
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
    return rows.toArray().flatMap(storedRollouts);
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
}
