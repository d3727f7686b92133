/**
 * The desired systems published for hosts that do not evaluate their own: by CI (`POST /api/desired`) and by
 * builder hosts (their fleet-build results). One store, one writer (`savePublication`), audited with the write.
 * A publication is found by its commit or by its git tree (a merge commit's tree usually equals the PR head's);
 * per host the newest publication of either wins (docs/fleet-build.md "Builder hosts").
 */
import { and, eq, inArray, lt, or, sql, type SQL } from "drizzle-orm";
import type { DesiredPublication } from "../../common/protocol.ts";
import { auditInsert } from "./audit.ts";
import type { Database } from "./client.ts";
import { fleetTargetStatements, loadMainHead, ofLatestRepoState, toFleetTarget, type FleetTargetState } from "./github.ts";
import { desiredPublications } from "./schema.ts";

/** How long a publication is kept: main moves on, and only its head's is read. */
const KEEP_PUBLICATIONS_DAYS = 30;

/** A publication with what else is known of it: its commit's tree (null when unknown) and who published it. */
export interface PublicationToSave extends DesiredPublication {
  tree: string | null;
  /** "ci", or "builder <host>" (the audit entry's actor). */
  by: string;
}

/** Stores a publication (a second one of a host at that commit replaces the first), audited. */
export async function savePublication(db: Database, publication: PublicationToSave, at: string): Promise<void> {
  const { commit, tree } = publication;
  const rows = Object.entries(publication.hosts).map(([hostName, outPath]) => ({ commitSha: commit, hostName, outPath, publishedAt: at, tree }));
  const before = new Date(Date.parse(at) - KEEP_PUBLICATIONS_DAYS * 86_400_000).toISOString();
  await db.batch([
    db.delete(desiredPublications).where(lt(desiredPublications.publishedAt, before)),
    ...rows.map((row) =>
      db
        .insert(desiredPublications)
        .values(row)
        .onConflictDoUpdate({ target: [desiredPublications.commitSha, desiredPublications.hostName], set: { outPath: row.outPath, publishedAt: at, tree } }),
    ),
    auditInsert(db, {
      at,
      actor: publication.by,
      action: "desired.publish",
      target: commit,
      details: { hosts: Object.keys(publication.hosts), tree },
      result: "ok",
      role: null,
    }),
  ]);
}

/** The publications `where` selects, oldest first, so that `newestPerHost` ends each host with its newest. */
const publicationsWhere = (db: Database, where: SQL | undefined) =>
  db.select({ hostName: desiredPublications.hostName, outPath: desiredPublications.outPath }).from(desiredPublications).where(where).orderBy(desiredPublications.publishedAt);

const newestPerHost = (rows: readonly { hostName: string; outPath: string }[]): Map<string, string> => new Map(rows.map((row) => [row.hostName, row.outPath]));

/** Host name → the store path published for it at `commit` or, when its tree is known, at any commit of that tree; the newest wins. */
export async function publishedAt(db: Database, commit: string, tree: string | null = null, hostNames?: readonly string[]): Promise<Map<string, string>> {
  const ofCommit: SQL = tree === null ? eq(desiredPublications.commitSha, commit) : or(eq(desiredPublications.commitSha, commit), eq(desiredPublications.tree, tree))!;
  const where = hostNames === undefined ? ofCommit : and(ofCommit, inArray(desiredPublications.hostName, [...hostNames]));
  return newestPerHost(await publicationsWhere(db, where));
}

export interface FleetTargetWithPublished extends FleetTargetState {
  /** Host name → what CI or a builder published for it at main's head or its tree. */
  published: ReadonlyMap<string, string>;
}

/**
 * The fleet target (`loadFleetTarget`) with what was published at main's head or its tree, in one D1 batch: one
 * round trip, and the publications are those of the head the same snapshot names (the head is read inside their
 * statement), never a head that moved between two reads.
 */
export async function loadFleetTargetWithPublished(db: Database): Promise<FleetTargetWithPublished> {
  const atMainHead = or(
    eq(desiredPublications.commitSha, sql`(${ofLatestRepoState(db, "headSha")})`),
    eq(desiredPublications.tree, sql`(${ofLatestRepoState(db, "headTree")})`),
  );
  // Without a head (no state, or none read yet) the subqueries are NULL, which no publication equals.
  const [repo, pulls, checks, publications] = await db.batch([...fleetTargetStatements(db), publicationsWhere(db, atMainHead)]);
  return { ...toFleetTarget([repo, pulls, checks]), published: newestPerHost(publications) };
}

/** What tells the desired systems at `commit`: its tree (known when it is main's head) and what was published for it or its tree. */
export async function readCommitDesired(db: Database, commit: string): Promise<{ commit: string; tree: string | null; published: Map<string, string> }> {
  const main = await loadMainHead(db);
  const tree = main?.commit === commit ? main.tree : null;
  return { commit, tree, published: await publishedAt(db, commit, tree) };
}

/** Commit → the desired system published for one host at it (or, for main's head, at its tree): what a rollout verifying the host judges by. */
export async function publishedForCommits(
  db: Database,
  hostName: string,
  commits: readonly string[],
  mainHead: { sha: string; tree?: string | null | undefined } | null,
): Promise<Map<string, string>> {
  const found = await Promise.all(
    commits.map(async (commit) => {
      const tree = mainHead?.sha === commit ? (mainHead.tree ?? null) : null;
      return [commit, (await publishedAt(db, commit, tree, [hostName])).get(hostName)] as const;
    }),
  );
  return new Map(found.filter((entry): entry is readonly [string, string] => entry[1] !== undefined));
}
