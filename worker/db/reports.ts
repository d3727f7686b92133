import { eq } from "drizzle-orm";
import { Report } from "../../common/protocol.ts";
import type { Database } from "./client.ts";
import { readStoredJson } from "./stored-json.ts";
import { reports } from "./schema.ts";

export interface StoredReport {
  hostId: string;
  report: Report;
  reportHash: string;
  agentSession: string;
  receivedAt: string;
}

type ReportRow = typeof reports.$inferSelect;

/** A report that no longer reads (an older agent's, a damaged row) is no report: that host shows unknown, the fleet still loads. */
function toStored(row: ReportRow): StoredReport | null {
  const report = readStoredJson(Report, row.report, `the report of host ${row.hostId}`);
  return report === null ? null : { ...row, report };
}

export async function getReport(db: Database, hostId: string): Promise<StoredReport | null> {
  const row = await db.select().from(reports).where(eq(reports.hostId, hostId)).get();
  return row ? toStored(row) : null;
}

export async function listReports(db: Database): Promise<Map<string, StoredReport>> {
  const rows = await db.select().from(reports);
  const stored = new Map<string, StoredReport>();
  for (const row of rows) {
    const report = toStored(row);
    if (report) stored.set(row.hostId, report);
  }
  return stored;
}

/** The latest report only: history lives in commands and the audit log. */
export async function upsertReport(db: Database, stored: StoredReport): Promise<void> {
  const values = { ...stored, report: JSON.stringify(stored.report) };
  await db.insert(reports).values(values).onConflictDoUpdate({ target: reports.hostId, set: values });
}
