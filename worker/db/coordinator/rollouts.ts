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

/** How many rollouts' parsed rows are kept: the unsettled ones (one, mostly) and a few more. */
const PARSED_KEPT = 16;

export class RolloutStore {
  private readonly sql: SqlStorage;
  /**
   * The rows last parsed, by rollout id, with the text they were parsed from: a command's end reads its
   * rollout some ten times (the step, its gate, the host's verdict, the alarm's next wake-up), and
   * parsing a rollout of many hosts with zod cost more than the rest of those reads. A row whose text
   * is unchanged is handed out again as a copy (a caller may change what it gets before saving it).
   */
  private readonly parsed = new Map<string, { body: string; context: string; stored: StoredRollout }>();
  /** Rows parsed so far by rollout() and unsettledRollouts(). */
  parses = 0;

  constructor(sql: SqlStorage) {
    this.sql = sql;
  }

  rollout(id: string): StoredRollout | null {
    const row = this.sql.exec("SELECT id, body, context FROM rollouts WHERE id = ?", id).toArray()[0];
    return row ? this.read(row) : null;
  }

  /** Rollouts not yet settled (running, soaking, waiting, or stopped with commands still out). */
  unsettledRollouts(): StoredRollout[] {
    return this.sql
      .exec("SELECT id, body, context FROM rollouts WHERE settled = 0 ORDER BY started_at")
      .toArray()
      .flatMap((row) => this.read(row) ?? []);
  }

  /** A row parsed, or its earlier parse copied when its text is the same. */
  private read(row: Row): StoredRollout | null {
    const id = String(row.id);
    const body = String(row.body);
    const context = String(row.context);
    const known = this.parsed.get(id);
    if (known !== undefined && known.body === body && known.context === context) return structuredClone(known.stored);
    const stored = toStoredRollout(row);
    this.parses++;
    if (stored === null) this.parsed.delete(id);
    else this.keep(id, body, context, stored);
    return stored;
  }

  private keep(id: string, body: string, context: string, stored: StoredRollout): void {
    this.parsed.delete(id);
    this.parsed.set(id, { body, context, stored: structuredClone(stored) });
    if (this.parsed.size > PARSED_KEPT) this.parsed.delete(this.parsed.keys().next().value!);
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

  /**
   * `settled`: nothing the rollout sent is out any more, so no event can move it again. What is saved is kept as
   * its row's parse: each host's end saves the rollout, and the reads after it (its gate, the host's verdict, the
   * alarm's next wake-up) would otherwise parse the whole rollout again.
   */
  saveRollout(rollout: Rollout, context: RolloutContextRecord, settled: boolean): void {
    const before = this.sql.exec("SELECT json_extract(body, '$.state') AS state FROM rollouts WHERE id = ?", rollout.id).toArray()[0];
    const was = before ? textOrNull(before.state) : null;
    const body = JSON.stringify(rollout);
    const contextText = JSON.stringify(context);
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
      body,
      contextText,
    );
    this.keep(rollout.id, body, contextText, { rollout, context });
  }

  /** How many rollouts are in each state, from the running counts (no scan of the history). */
  rolloutStates(): Map<string, number> {
    return new Map(this.sql.exec("SELECT state, count FROM rollout_states").toArray().map((row) => [text(row.state), number(row.count)]));
  }
}
