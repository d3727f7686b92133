import { eq, sql } from "drizzle-orm";
import { z } from "zod";
import { Report } from "../../common/protocol.ts";
import type { Database } from "./client.ts";
import { readStoredJson } from "./stored-json.ts";
import { hosts, reports } from "./schema.ts";

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

const LockLastModified = z.record(z.string(), z.number()).catch({});

/**
 * Every host with a report and its lock inputs' lastModified, for the
 * coordinator's lock-age clock: one read, the report's JSON left in D1.
 */
export async function listLockAges(db: Database): Promise<{ hostId: string; name: string; lastModified: Record<string, number> }[]> {
  const rows = await db
    .select({ hostId: hosts.id, name: hosts.name, lastModified: sql<string | null>`json_extract(${reports.report}, '$.lock.lastModified')` })
    .from(reports)
    .innerJoin(hosts, eq(hosts.id, reports.hostId));
  return rows.map((row) => ({ hostId: row.hostId, name: row.name, lastModified: readLastModified(row.lastModified) }));
}

function readLastModified(json: string | null): Record<string, number> {
  if (json === null) return {};
  try {
    return LockLastModified.parse(JSON.parse(json));
  } catch {
    return {};
  }
}
