import { eq } from "drizzle-orm";
import { Report } from "../../common/protocol.ts";
import type { Database } from "./client.ts";
import { reports } from "./schema.ts";

export interface StoredReport {
  hostId: string;
  report: Report;
  reportHash: string;
  agentSession: string;
  receivedAt: string;
}

type ReportRow = typeof reports.$inferSelect;

const toStored = (row: ReportRow): StoredReport => ({ ...row, report: Report.parse(JSON.parse(row.report)) });

export async function getReport(db: Database, hostId: string): Promise<StoredReport | null> {
  const row = await db.select().from(reports).where(eq(reports.hostId, hostId)).get();
  return row ? toStored(row) : null;
}

export async function listReports(db: Database): Promise<Map<string, StoredReport>> {
  const rows = await db.select().from(reports);
  return new Map(rows.map((row) => [row.hostId, toStored(row)]));
}

/** The latest report only: history lives in commands and the audit log. */
export async function upsertReport(db: Database, stored: StoredReport): Promise<void> {
  const values = { ...stored, report: JSON.stringify(stored.report) };
  await db.insert(reports).values(values).onConflictDoUpdate({ target: reports.hostId, set: values });
}
