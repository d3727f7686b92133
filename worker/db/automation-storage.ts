/**
 * The Automation object's own SQLite storage: one row per update PR it has
 * considered, with its schedule, state and timeline. The only home of these
 * facts; calls are synchronous, so a check and the write that depends on it
 * cannot interleave with another request in the object.
 */
import { z } from "zod";
import { Sha1, UpdatePrAutomation } from "../../common/protocol.ts";
import type { AutomationRecord } from "../automation/rules.ts";
import { applyObjectMigrations, type ObjectMigrations } from "./object-migrations.ts";

const MIGRATIONS: ObjectMigrations = {
  1: `
    CREATE TABLE automation_prs (
      pr INTEGER PRIMARY KEY,
      -- The record as JSON (AutomationRecord), parsed on every read.
      body TEXT NOT NULL,
      state TEXT NOT NULL,
      -- When the alarm must look at this PR again; NULL: nothing timed.
      wake_at TEXT,
      updated_at TEXT NOT NULL
    );
    CREATE INDEX automation_prs_wake ON automation_prs(wake_at) WHERE wake_at IS NOT NULL;
  `,
};

const StoredRecord = UpdatePrAutomation.extend({
  pr: z.number().int().positive(),
  wakeAt: z.string().nullable(),
  skippedHead: Sha1.nullable(),
  ciFailedHead: Sha1.nullable(),
  scheduledAnnounced: z.string().nullable(),
  headSeenAt: z.string(),
});

export class AutomationStorage {
  private readonly sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.sql = sql;
    applyObjectMigrations(this.sql, MIGRATIONS);
  }

  /** A record that no longer parses is dropped: the next reconsider builds it again from GitHub's state. */
  private parse(body: unknown, pr: number): AutomationRecord | null {
    try {
      return StoredRecord.parse(JSON.parse(String(body)));
    } catch (error) {
      console.error(`automation: the stored record of #${pr} does not read; it starts over`, error);
      return null;
    }
  }

  get(pr: number): AutomationRecord | null {
    const row = this.sql.exec("SELECT body FROM automation_prs WHERE pr = ?", pr).toArray()[0];
    return row ? this.parse(row.body, pr) : null;
  }

  put(record: AutomationRecord, now: Date): void {
    this.sql.exec(
      `INSERT INTO automation_prs (pr, body, state, wake_at, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (pr) DO UPDATE SET body = excluded.body, state = excluded.state, wake_at = excluded.wake_at, updated_at = excluded.updated_at`,
      record.pr,
      JSON.stringify(record),
      record.state,
      record.wakeAt,
      now.toISOString(),
    );
  }

  /** Records of these PRs. */
  many(prs: readonly number[]): Map<number, AutomationRecord> {
    const found = new Map<number, AutomationRecord>();
    for (const pr of prs) {
      const record = this.get(pr);
      if (record !== null) found.set(pr, record);
    }
    return found;
  }

  /** PRs the alarm must look at by `now` (a merge in flight has its recovery time as its wake-up). */
  due(now: Date): number[] {
    return this.sql
      .exec("SELECT pr FROM automation_prs WHERE wake_at IS NOT NULL AND wake_at <= ? ORDER BY pr", now.toISOString())
      .toArray()
      .map((row) => Number(row.pr));
  }

  /** The earliest wake-up of any record. */
  nextWake(): string | null {
    const row = this.sql.exec("SELECT min(wake_at) AS at FROM automation_prs WHERE wake_at IS NOT NULL").one();
    return typeof row.at === "string" ? row.at : null;
  }

  /** PRs not settled (merged, deployed, off for good are left out): the ones the cron reconsiders besides the open ones. */
  unsettled(): number[] {
    return this.sql
      .exec("SELECT pr FROM automation_prs WHERE state NOT IN ('merged', 'deployed', 'off') ORDER BY pr")
      .toArray()
      .map((row) => Number(row.pr));
  }
}
