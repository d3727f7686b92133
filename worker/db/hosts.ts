import { and, eq, isNull } from "drizzle-orm";
import type { Platform } from "../../common/protocol.ts";
import type { Database } from "./client.ts";
import { agentTokens, hosts } from "./schema.ts";

export interface Host {
  id: string;
  name: string;
  platform: Platform;
  flakeAttr: string;
  createdAt: string;
  lastSeenAt: string | null;
}

export async function listHosts(db: Database): Promise<Host[]> {
  return db.select().from(hosts).orderBy(hosts.name);
}

export async function findHostByName(db: Database, name: string): Promise<Host | null> {
  return (await db.select().from(hosts).where(eq(hosts.name, name)).get()) ?? null;
}

/** Creates the host and its first token in one batch, so neither exists without the other. */
export async function insertHostWithToken(
  db: Database,
  host: Host,
  token: { id: string; tokenHash: string },
): Promise<void> {
  await db.batch([
    db.insert(hosts).values(host),
    db.insert(agentTokens).values({ id: token.id, hostId: host.id, tokenHash: token.tokenHash, createdAt: host.createdAt }),
  ]);
}

export async function deleteHost(db: Database, id: string): Promise<void> {
  await db.delete(hosts).where(eq(hosts.id, id));
}

/** Revokes every live token of the host and adds the new one, atomically. */
export async function rotateHostToken(
  db: Database,
  hostId: string,
  token: { id: string; tokenHash: string },
  at: string,
): Promise<void> {
  await db.batch([
    db.update(agentTokens).set({ revokedAt: at }).where(and(eq(agentTokens.hostId, hostId), isNull(agentTokens.revokedAt))),
    db.insert(agentTokens).values({ id: token.id, hostId, tokenHash: token.tokenHash, createdAt: at }),
  ]);
}

/** The host a live (not revoked) token belongs to. */
export async function findHostByTokenHash(db: Database, tokenHash: string): Promise<Host | null> {
  const row = await db
    .select({ host: hosts })
    .from(agentTokens)
    .innerJoin(hosts, eq(hosts.id, agentTokens.hostId))
    .where(and(eq(agentTokens.tokenHash, tokenHash), isNull(agentTokens.revokedAt)))
    .get();
  return row?.host ?? null;
}

/** Each host's "last seen", in one D1 batch. */
export async function updateLastSeenOf(db: Database, seen: readonly { hostId: string; at: string }[]): Promise<void> {
  const [first, ...rest] = seen.map(({ hostId, at }) => db.update(hosts).set({ lastSeenAt: at }).where(eq(hosts.id, hostId)));
  if (first !== undefined) await db.batch([first, ...rest]);
}

/** D1's answer to a second row with a unique value (two creates of one name racing past the check). */
export function isUniqueViolation(error: unknown): boolean {
  const text = error instanceof Error ? `${error.message} ${error.cause instanceof Error ? error.cause.message : ""}` : String(error);
  return /UNIQUE constraint failed/i.test(text);
}
