/** The desired systems CI publishes (`POST /api/desired`, docs/api.md); audited with the write. */
import { and, desc, eq, inArray, isNull, lt } from "drizzle-orm";
import type { DesiredPublication } from "../../common/protocol.ts";
import { auditInsert } from "./audit.ts";
import type { Database } from "./client.ts";
import { loadMainHead } from "./github.ts";
import { ciTokens, desiredPublications } from "./schema.ts";

/** How long a publication is kept: main moves on, and only its head's is read. */
const KEEP_PUBLICATIONS_DAYS = 30;

/** Stores what CI published for a commit (a second publication of a host at that commit replaces the first), audited. */
export async function savePublication(db: Database, publication: DesiredPublication, at: string): Promise<void> {
  const rows = Object.entries(publication.hosts).map(([hostName, outPath]) => ({ commitSha: publication.commit, hostName, outPath, publishedAt: at }));
  const before = new Date(Date.parse(at) - KEEP_PUBLICATIONS_DAYS * 86_400_000).toISOString();
  await db.batch([
    db.delete(desiredPublications).where(lt(desiredPublications.publishedAt, before)),
    ...rows.map((row) =>
      db
        .insert(desiredPublications)
        .values(row)
        .onConflictDoUpdate({ target: [desiredPublications.commitSha, desiredPublications.hostName], set: { outPath: row.outPath, publishedAt: at } }),
    ),
    auditInsert(db, {
      at,
      actor: "ci",
      action: "desired.publish",
      target: publication.commit,
      details: { hosts: Object.keys(publication.hosts) },
      result: "ok",
      role: null,
    }),
  ]);
}

/** Host name → the store path CI published for it at `commit`. */
export async function publishedAt(db: Database, commit: string, hostNames?: readonly string[]): Promise<Map<string, string>> {
  const where =
    hostNames === undefined
      ? eq(desiredPublications.commitSha, commit)
      : and(eq(desiredPublications.commitSha, commit), inArray(desiredPublications.hostName, [...hostNames]));
  const rows = await db.select({ hostName: desiredPublications.hostName, outPath: desiredPublications.outPath }).from(desiredPublications).where(where);
  return new Map(rows.map((row) => [row.hostName, row.outPath]));
}

/** What tells the desired systems at `commit`: its tree (known when it is main's head) and CI's publication. */
export async function readCommitDesired(db: Database, commit: string): Promise<{ commit: string; tree: string | null; published: Map<string, string> }> {
  const [main, published] = await Promise.all([loadMainHead(db), publishedAt(db, commit)]);
  return { commit, tree: main?.commit === commit ? main.tree : null, published };
}
