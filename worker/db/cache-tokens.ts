/** The binary cache's upload token (docs/cache.md); audited with the write. */
import { and, desc, eq, isNull } from "drizzle-orm";
import { auditInsert } from "./audit.ts";
import type { Database } from "./client.ts";
import { cacheTokens } from "./schema.ts";

/** Whether `tokenHash` is the cache token in force (the newest one, not revoked). */
export async function isCacheToken(db: Database, tokenHash: string): Promise<boolean> {
  const row = await db
    .select({ id: cacheTokens.id })
    .from(cacheTokens)
    .where(and(eq(cacheTokens.tokenHash, tokenHash), isNull(cacheTokens.revokedAt)))
    .get();
  return row !== undefined;
}

/** When the cache token in force was created and by whom; null when there is none. */
export async function cacheTokenInForce(db: Database): Promise<{ createdAt: string; createdBy: string } | null> {
  const row = await db
    .select({ createdAt: cacheTokens.createdAt, createdBy: cacheTokens.createdBy })
    .from(cacheTokens)
    .where(isNull(cacheTokens.revokedAt))
    .orderBy(desc(cacheTokens.createdAt))
    .get();
  return row ?? null;
}

/** Revokes the cache token in force and stores the new one's hash, with the audit entry, atomically. */
export async function rotateCacheToken(db: Database, token: { id: string; tokenHash: string; at: string; by: string }): Promise<void> {
  await db.batch([
    db.update(cacheTokens).set({ revokedAt: token.at }).where(isNull(cacheTokens.revokedAt)),
    db.insert(cacheTokens).values({ id: token.id, tokenHash: token.tokenHash, createdAt: token.at, createdBy: token.by }),
    auditInsert(db, { at: token.at, actor: token.by, action: "cache-token.rotate", target: null, details: null, result: "ok" }),
  ]);
}
