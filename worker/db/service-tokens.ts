/**
 * The single-purpose tokens an admin creates and rotates: CI's, which publishes desired systems
 * (`POST /api/desired`), and the binary cache's upload token (docs/cache.md). Only a token's sha256 is
 * stored; the newest unrevoked row is in force; a rotation is audited with the write.
 */
import { and, desc, eq, isNull } from "drizzle-orm";
import { auditInsert } from "./audit.ts";
import type { Database } from "./client.ts";
import { cacheTokens, ciTokens } from "./schema.ts";

const SERVICE_TOKENS = {
  ci: { table: ciTokens, rotateAction: "ci-token.rotate" },
  cache: { table: cacheTokens, rotateAction: "cache-token.rotate" },
} as const;

export type ServiceTokenKind = keyof typeof SERVICE_TOKENS;

/** Whether `tokenHash` is the `kind` token in force. */
export async function isServiceToken(db: Database, kind: ServiceTokenKind, tokenHash: string): Promise<boolean> {
  const { table } = SERVICE_TOKENS[kind];
  const row = await db
    .select({ id: table.id })
    .from(table)
    .where(and(eq(table.tokenHash, tokenHash), isNull(table.revokedAt)))
    .get();
  return row !== undefined;
}

/** When the `kind` token in force was created and by whom; null when there is none. */
export async function serviceTokenInForce(db: Database, kind: ServiceTokenKind): Promise<{ createdAt: string; createdBy: string } | null> {
  const { table } = SERVICE_TOKENS[kind];
  const row = await db.select({ createdAt: table.createdAt, createdBy: table.createdBy }).from(table).where(isNull(table.revokedAt)).orderBy(desc(table.createdAt)).get();
  return row ?? null;
}

/** Revokes the `kind` token in force and stores the new one's hash, with the audit entry, atomically. */
export async function rotateServiceToken(db: Database, kind: ServiceTokenKind, token: { id: string; tokenHash: string; at: string; by: string }): Promise<void> {
  const { table, rotateAction } = SERVICE_TOKENS[kind];
  await db.batch([
    db.update(table).set({ revokedAt: token.at }).where(isNull(table.revokedAt)),
    db.insert(table).values({ id: token.id, tokenHash: token.tokenHash, createdAt: token.at, createdBy: token.by }),
    auditInsert(db, { at: token.at, actor: token.by, action: rotateAction, target: null, details: null, result: "ok" }),
  ]);
}
