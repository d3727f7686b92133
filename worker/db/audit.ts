import { desc, lt, sql, type SQL } from "drizzle-orm";
import { tryGetContext } from "hono/context-storage";
import type { Role } from "../../common/protocol.ts";
import type { AppEnv } from "../env.ts";
import type { Database } from "./client.ts";
import { auditLog } from "./schema.ts";

export interface AuditEntry {
  id: number;
  at: string;
  actor: string;
  action: string;
  target: string | null;
  details: Record<string, unknown> | null;
  result: string;
  /** The actor's role when it acted; null before roles existed and for the scheduled sync. */
  role: Role | null;
}

export type NewAuditEntry = Omit<AuditEntry, "id" | "role"> & { role?: Role | null };

/**
 * The role of whoever made the request being served (worker/index.ts keeps the
 * request's context with hono/context-storage), so every audit entry written
 * for a request carries it without each writer passing it along.
 */
function requestRole(): Role | null {
  return tryGetContext<AppEnv>()?.var.role ?? null;
}

export function auditInsert(db: Database, entry: NewAuditEntry) {
  return db.insert(auditLog).values({
    ...entry,
    role: entry.role === undefined ? requestRole() : entry.role,
    details: entry.details === null ? null : JSON.stringify(entry.details),
  });
}

/**
 * An audit entry written only when `condition` holds as the statement runs: in a `db.batch` after a
 * conditional write, the entry exists exactly when the write happened (no window between the two).
 */
export function auditInsertWhen(db: Database, entry: NewAuditEntry, condition: SQL) {
  const role = entry.role === undefined ? requestRole() : entry.role;
  const details = entry.details === null ? null : JSON.stringify(entry.details);
  // Every column in the table's order (drizzle's insert … select); a NULL id takes the next rowid.
  return db
    .insert(auditLog)
    .select(sql`SELECT NULL, ${entry.at}, ${entry.actor}, ${entry.action}, ${entry.target}, ${details}, ${entry.result}, ${role}, NULL WHERE ${condition}`);
}

export async function writeAudit(db: Database, entry: NewAuditEntry): Promise<void> {
  await auditInsert(db, entry);
}

/**
 * Entries of the coordinator's outbox (worker/coordinator/outbox.ts), in one batch and in the order
 * given (one transaction: their ids follow that order), each written once per `effectKey`, so carrying
 * them out again after an eviction adds no second row.
 */
export async function writeAuditOnce(db: Database, entries: Array<{ effectKey: string; entry: NewAuditEntry }>): Promise<void> {
  const [first, ...rest] = entries.map(({ effectKey, entry }) =>
    db
      .insert(auditLog)
      .values({ ...entry, role: entry.role ?? null, details: entry.details === null ? null : JSON.stringify(entry.details), effectKey })
      .onConflictDoNothing({ target: auditLog.effectKey }),
  );
  if (first !== undefined) await db.batch([first, ...rest]);
}

export async function listAudit(db: Database, options: { limit: number; beforeId?: number }): Promise<AuditEntry[]> {
  const query = db.select().from(auditLog);
  const rows = await (options.beforeId === undefined ? query : query.where(lt(auditLog.id, options.beforeId)))
    .orderBy(desc(auditLog.id))
    .limit(options.limit);
  return rows.map(({ effectKey: _effectKey, ...row }) => ({ ...row, details: row.details === null ? null : parseDetails(row.details) }));
}

function parseDetails(text: string): Record<string, unknown> {
  const value: unknown = JSON.parse(text);
  return typeof value === "object" && value !== null && !Array.isArray(value) ? Object.fromEntries(Object.entries(value)) : { value };
}
