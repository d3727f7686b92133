/**
 * Every query on the GitHub tables (migrations/0002_github.sql). The tables
 * hold one repository and branch at a time: writes for the configured one
 * drop whatever an earlier configuration left behind.
 */
import { and, desc, eq, gt, inArray, lt, ne, or, sql } from "drizzle-orm";
import { z } from "zod";
import { CiState, LockChange, type RepoState, type UpdatePr } from "../../common/protocol.ts";
import { combineCiState, type CommitCheck } from "../github/ci.ts";
import type { Database } from "./client.ts";
import { readStoredJson } from "./stored-json.ts";
import { githubCommitChecks, githubDeliveries, githubPullRequests, githubRepoState } from "./schema-github.ts";

// ---------------------------------------------------------------------------
// Webhook deliveries

export type DeliveryOutcome = "processing" | "processed" | "ignored" | "rejected" | "failed";

export interface Delivery {
  id: string;
  event: string;
  action: string | null;
  receivedAt: string;
  outcome: DeliveryOutcome;
  error: string | null;
  attempts: number;
}

/** Outcomes a redelivery may try again: the first attempt had no effect. */
const RETRYABLE: DeliveryOutcome[] = ["failed", "rejected"];
/** A delivery that failed this often is not processed again: replaying it would only repeat the failure's side effects. */
export const MAX_DELIVERY_ATTEMPTS = 3;

/**
 * Records a delivery before anything acts on it. `new` and `retry` go ahead;
 * `duplicate` means an earlier attempt was (or is being) processed, so this
 * one must have no effect; `exhausted`, that it failed MAX_DELIVERY_ATTEMPTS
 * times already. Atomic: two copies arriving together cannot both win.
 */
export async function claimDelivery(
  db: Database,
  delivery: { id: string; event: string; action: string | null; receivedAt: string },
): Promise<"new" | "retry" | "duplicate" | "exhausted"> {
  const inserted = await db
    .insert(githubDeliveries)
    .values({ ...delivery, outcome: "processing", error: null, attempts: 1 })
    .onConflictDoNothing()
    .returning({ id: githubDeliveries.id });
  if (inserted.length > 0) return "new";
  const retried = await db
    .update(githubDeliveries)
    .set({ outcome: "processing", error: null, receivedAt: delivery.receivedAt, attempts: sql`${githubDeliveries.attempts} + 1` })
    .where(
      and(
        eq(githubDeliveries.id, delivery.id),
        inArray(githubDeliveries.outcome, RETRYABLE),
        lt(githubDeliveries.attempts, MAX_DELIVERY_ATTEMPTS),
      ),
    )
    .returning({ id: githubDeliveries.id });
  if (retried.length > 0) return "retry";
  const known = await db.select({ outcome: githubDeliveries.outcome }).from(githubDeliveries).where(eq(githubDeliveries.id, delivery.id)).get();
  return known && RETRYABLE.includes(known.outcome) ? "exhausted" : "duplicate";
}

export async function finishDelivery(db: Database, id: string, outcome: DeliveryOutcome, error: string | null = null): Promise<void> {
  await db.update(githubDeliveries).set({ outcome, error: error === null ? null : error.slice(0, 2000) }).where(eq(githubDeliveries.id, id));
}

/** When the newest webhook delivery arrived, or null when none is kept (an index read: github_deliveries_received). */
export async function lastDeliveryAt(db: Database): Promise<string | null> {
  const row = await db.select({ at: sql<string | null>`max(${githubDeliveries.receivedAt})` }).from(githubDeliveries).get();
  return row?.at ?? null;
}

// ---------------------------------------------------------------------------
// Repository state

export interface RepoStateRecord {
  repository: string;
  branch: string;
  head: { sha: string; message: string; author: string; committedAt: string; tree?: string | null } | null;
  lockHash: string | null;
  lockLastModified: Record<string, number>;
  lockProblem: string | null;
  updatedAt: string;
  source: RepoState["source"];
  lastError: string | null;
  lastErrorAt: string | null;
}

const LastModified = z.record(z.string(), z.number().int());

type RepoRow = typeof githubRepoState.$inferSelect;

function toRepoRecord(row: RepoRow): RepoStateRecord {
  const head =
    row.headSha === null
      ? null
      : { sha: row.headSha, message: row.headMessage ?? "", author: row.headAuthor ?? "", committedAt: row.headCommittedAt ?? "", tree: row.headTree };
  return {
    repository: row.repository,
    branch: row.branch,
    head,
    lockHash: row.lockHash,
    lockLastModified: readStoredJson(LastModified, row.lockLastModified, "repository state lock ages") ?? {},
    lockProblem: row.lockProblem,
    updatedAt: row.updatedAt,
    source: row.source,
    lastError: row.lastError,
    lastErrorAt: row.lastErrorAt,
  };
}

export function toRepoState(record: RepoStateRecord): RepoState {
  return {
    repository: record.repository,
    branch: record.branch,
    head: record.head,
    lock: { hash: record.lockHash, lastModified: record.lockLastModified },
    updatedAt: record.updatedAt,
    source: record.source,
  };
}

export async function getRepoState(db: Database, repository: string, branch: string): Promise<RepoStateRecord | null> {
  const row = await db
    .select()
    .from(githubRepoState)
    .where(and(eq(githubRepoState.repository, repository), eq(githubRepoState.branch, branch)))
    .get();
  return row ? toRepoRecord(row) : null;
}

/** Statements that drop rows of any other repository (and branch, when given) than the configured one. */
function forgetOthers(db: Database, repository: string, branch: string | null) {
  return [
    db
      .delete(githubRepoState)
      .where(branch === null ? ne(githubRepoState.repository, repository) : or(ne(githubRepoState.repository, repository), ne(githubRepoState.branch, branch))),
    db
      .delete(githubPullRequests)
      .where(branch === null ? ne(githubPullRequests.repository, repository) : or(ne(githubPullRequests.repository, repository), ne(githubPullRequests.baseRef, branch))),
    db.delete(githubCommitChecks).where(ne(githubCommitChecks.repository, repository)),
  ] as const;
}

/** Writes the whole state (head, lock, source), clearing a recorded sync error. */
export async function saveRepoState(db: Database, record: Omit<RepoStateRecord, "lastError" | "lastErrorAt">): Promise<void> {
  const values = {
    repository: record.repository,
    branch: record.branch,
    headSha: record.head?.sha ?? null,
    headMessage: record.head?.message ?? null,
    headAuthor: record.head?.author ?? null,
    headCommittedAt: record.head?.committedAt ?? null,
    headTree: record.head?.tree ?? null,
    lockHash: record.lockHash,
    lockLastModified: JSON.stringify(record.lockLastModified),
    lockProblem: record.lockProblem,
    updatedAt: record.updatedAt,
    source: record.source,
    lastError: null,
    lastErrorAt: null,
  };
  await db.batch([
    ...forgetOthers(db, record.repository, record.branch),
    db.insert(githubRepoState).values(values).onConflictDoUpdate({ target: [githubRepoState.repository, githubRepoState.branch], set: values }),
  ]);
}

/**
 * Fills in the lock of a head read earlier; does nothing when the branch has
 * moved on since (a newer push owns the row). Returns whether it wrote.
 */
export async function saveRepoLock(
  db: Database,
  where: { repository: string; branch: string; headSha: string },
  lock: { hash: string | null; lastModified: Record<string, number>; problem: string | null; updatedAt: string },
): Promise<boolean> {
  const rows = await db
    .update(githubRepoState)
    .set({
      lockHash: lock.hash,
      lockLastModified: JSON.stringify(lock.lastModified),
      lockProblem: lock.problem,
      updatedAt: lock.updatedAt,
    })
    .where(
      and(
        eq(githubRepoState.repository, where.repository),
        eq(githubRepoState.branch, where.branch),
        eq(githubRepoState.headSha, where.headSha),
      ),
    )
    .returning({ sha: githubRepoState.headSha });
  return rows.length > 0;
}

/** Remembers why the last sync failed, for GET /api/repo; the state itself stays as it was. */
export async function recordRepoError(db: Database, where: { repository: string; branch: string }, error: string, at: string): Promise<void> {
  await db
    .update(githubRepoState)
    .set({ lastError: error.slice(0, 2000), lastErrorAt: at })
    .where(and(eq(githubRepoState.repository, where.repository), eq(githubRepoState.branch, where.branch)));
}

// ---------------------------------------------------------------------------
// Pull requests

export interface PullRequestRecord {
  repository: string;
  number: number;
  title: string;
  url: string;
  state: "open" | "closed" | "merged";
  draft: boolean;
  headSha: string;
  headRef: string;
  baseRef: string;
  labels: string[];
  isUpdatePr: boolean;
  mergeable: boolean | null;
  createdAt: string;
  updatedAt: string;
  mergedAt: string | null;
  mergeCommitSha: string | null;
  /** null until the lock diff has been computed for this head. */
  lockChanges: LockChange[] | null;
  lockHeadSha: string | null;
  lockBaseHash: string | null;
  lockProblem: string | null;
  syncedAt: string;
}

type PullRow = typeof githubPullRequests.$inferSelect;

const Labels = z.array(z.string());
const LockChanges = z.array(LockChange);

/** A stored lock diff that no longer reads is computed again on the next sync, and says so meanwhile. */
function readLockChanges(row: PullRow, stored: string): Pick<PullRequestRecord, "lockChanges" | "lockProblem" | "lockHeadSha"> {
  const changes = readStoredJson(LockChanges, stored, `pull request #${row.number} lock diff`);
  if (changes !== null) return { lockChanges: changes, lockProblem: row.lockProblem, lockHeadSha: row.lockHeadSha };
  return { lockChanges: null, lockHeadSha: null, lockProblem: "the stored lock diff could not be read; it is read again on the next sync" };
}

function toPullRecord(row: PullRow): PullRequestRecord {
  return {
    ...row,
    labels: readStoredJson(Labels, row.labels, `pull request #${row.number} labels`) ?? [],
    ...(row.lockChanges === null ? { lockChanges: null } : readLockChanges(row, row.lockChanges)),
  };
}

const pullValues = (record: PullRequestRecord) => ({
  ...record,
  labels: JSON.stringify(record.labels),
  lockChanges: record.lockChanges === null ? null : JSON.stringify(record.lockChanges),
});

export async function getPullRequest(db: Database, repository: string, number: number): Promise<PullRequestRecord | null> {
  const row = await db
    .select()
    .from(githubPullRequests)
    .where(and(eq(githubPullRequests.repository, repository), eq(githubPullRequests.number, number)))
    .get();
  return row ? toPullRecord(row) : null;
}

/** Inserts or replaces a pull request (the caller carries over what it wants to keep). */
export async function savePullRequest(db: Database, record: PullRequestRecord): Promise<void> {
  const values = pullValues(record);
  await db.batch([
    ...forgetOthers(db, record.repository, null),
    db.insert(githubPullRequests).values(values).onConflictDoUpdate({ target: [githubPullRequests.repository, githubPullRequests.number], set: values }),
  ]);
}

/** A PR that left the followed branch (its base was changed) is no longer tracked. */
export async function deletePullRequest(db: Database, repository: string, number: number): Promise<void> {
  await db.delete(githubPullRequests).where(and(eq(githubPullRequests.repository, repository), eq(githubPullRequests.number, number)));
}

/** Stores a lock diff unless the PR's head moved on meanwhile. Returns whether it wrote. */
export async function savePullLockDiff(
  db: Database,
  where: { repository: string; number: number; headSha: string },
  diff: { changes: LockChange[] | null; baseHash: string | null; problem: string | null },
): Promise<boolean> {
  const rows = await db
    .update(githubPullRequests)
    .set({
      lockChanges: diff.changes === null ? null : JSON.stringify(diff.changes),
      lockHeadSha: where.headSha,
      lockBaseHash: diff.baseHash,
      lockProblem: diff.problem,
    })
    .where(
      and(
        eq(githubPullRequests.repository, where.repository),
        eq(githubPullRequests.number, where.number),
        eq(githubPullRequests.headSha, where.headSha),
      ),
    )
    .returning({ number: githubPullRequests.number });
  return rows.length > 0;
}

/** Open pull requests of the repository, newest first. */
export async function listOpenPullRequests(db: Database, repository: string): Promise<PullRequestRecord[]> {
  const rows = await db
    .select()
    .from(githubPullRequests)
    .where(and(eq(githubPullRequests.repository, repository), eq(githubPullRequests.state, "open")))
    .orderBy(desc(githubPullRequests.createdAt), desc(githubPullRequests.number));
  return rows.map(toPullRecord);
}

// ---------------------------------------------------------------------------
// CI

/** Stores one CI signal unless a later update of the same check is already stored. */
export async function saveCommitCheck(db: Database, repository: string, check: CommitCheck): Promise<void> {
  const values = { repository, ...check };
  await db
    .insert(githubCommitChecks)
    .values(values)
    .onConflictDoUpdate({
      target: [githubCommitChecks.repository, githubCommitChecks.sha, githubCommitChecks.kind, githubCommitChecks.name],
      set: { outcome: check.outcome, ordinal: check.ordinal, updatedAt: check.updatedAt },
      setWhere: sql`excluded.ordinal >= ${githubCommitChecks.ordinal}`,
    });
}

/** The combined CI state of each sha (unknown when nothing was reported). */
export async function ciStates(db: Database, repository: string, shas: string[]): Promise<Map<string, CiState>> {
  const states = new Map<string, CiState>(shas.map((sha) => [sha, "unknown"]));
  if (shas.length === 0) return states;
  const rows = await db
    .select({ sha: githubCommitChecks.sha, outcome: githubCommitChecks.outcome })
    .from(githubCommitChecks)
    .where(and(eq(githubCommitChecks.repository, repository), inArray(githubCommitChecks.sha, shas)));
  for (const sha of shas) states.set(sha, combineCiState(rows.filter((row) => row.sha === sha).map((row) => row.outcome)));
  return states;
}

/** The CI signals that failed on a commit: a status's context, or the kind and key of a check ("check run build (suite 5)"). */
export async function failingChecks(db: Database, repository: string, sha: string): Promise<string[]> {
  const rows = await db
    .select({ kind: githubCommitChecks.kind, name: githubCommitChecks.name })
    .from(githubCommitChecks)
    .where(and(eq(githubCommitChecks.repository, repository), eq(githubCommitChecks.sha, sha), eq(githubCommitChecks.outcome, "failure")));
  return rows.map((row) => (row.kind === "status" ? row.name : `${row.kind.replace("_", " ")} ${row.name}`));
}

// ---------------------------------------------------------------------------
// What the fleet is offered

/** An update PR as the API and the compartments see it. */
export function toUpdatePr(record: PullRequestRecord, ciState: CiState, superseded: boolean): UpdatePr {
  return {
    number: record.number,
    title: record.title,
    url: record.url,
    state: record.state,
    headSha: record.headSha,
    headRef: record.headRef,
    baseRef: record.baseRef,
    labels: record.labels,
    ciState,
    mergeable: record.mergeable,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    mergedAt: record.mergedAt,
    mergeCommitSha: record.mergeCommitSha,
    superseded,
    lockChanges: record.lockChanges ?? [],
    lockDiff: record.lockChanges !== null ? "ready" : record.lockProblem !== null ? "failed" : "pending",
    lockDiffProblem: record.lockChanges === null ? record.lockProblem : null,
    // Filled in by the routes from the coordinator (fleet build) and the automation object.
    fleetBuild: null,
    automation: null,
  };
}

/** Open update PRs, newest first; all but the newest are superseded. */
export async function listUpdatePrs(db: Database, repository: string, branch: string | null): Promise<UpdatePr[]> {
  const open = (await listOpenPullRequests(db, repository)).filter(
    (pr) => pr.isUpdatePr && (branch === null || pr.baseRef === branch),
  );
  const ci = await ciStates(db, repository, [...new Set(open.map((pr) => pr.headSha))]);
  return open.map((pr, index) => toUpdatePr(pr, ci.get(pr.headSha) ?? "unknown", index > 0));
}

/** Main's head as the agents are told it in every poll answer: the followed branch, its commit and tree. */
export async function loadMainHead(db: Database): Promise<{ branch: string; commit: string; tree: string | null } | null> {
  const row = await latestRepoState(db).get();
  return row && row.headSha !== null ? { branch: row.branch, commit: row.headSha, tree: row.headTree } : null;
}

/** The followed branch's state: the newest repository state row (the tables hold one repository and branch). */
function latestRepoState(db: Database) {
  return db.select().from(githubRepoState).orderBy(desc(githubRepoState.updatedAt)).limit(1);
}
/** What of the latest repository state a statement compares against, as a subquery of that statement. */
export const ofLatestRepoState = (db: Database, column: "headSha" | "headTree" | "updatedAt") =>
  db.select({ value: githubRepoState[column] }).from(githubRepoState).orderBy(desc(githubRepoState.updatedAt)).limit(1);
/** Update PRs open or merged after the followed branch's state was read (a day's margin: GitHub's timestamps and ours differ in format; exact below). */
const candidateUpdatePrs = (db: Database) =>
  and(
    eq(githubPullRequests.isUpdatePr, true),
    or(
      eq(githubPullRequests.state, "open"),
      and(eq(githubPullRequests.state, "merged"), gt(githubPullRequests.mergedAt, sql`strftime('%Y-%m-%dT%H:%M:%fZ', (${ofLatestRepoState(db, "updatedAt")}), '-1 day')`)),
    ),
  );

/**
 * The statements of a fleet target read, for one D1 batch (one round trip, one consistent snapshot): the repository
 * state, the update PRs that may be shown and their commits' CI signals. Nothing waits for the state to know what to
 * read: the PRs' statements compare against it in SQL, and `toFleetTarget` keeps the followed repository's and branch's.
 */
export function fleetTargetStatements(db: Database) {
  return [
    latestRepoState(db),
    db.select().from(githubPullRequests).where(candidateUpdatePrs(db)).orderBy(desc(githubPullRequests.createdAt), desc(githubPullRequests.number)),
    db
      .select({ repository: githubCommitChecks.repository, sha: githubCommitChecks.sha, outcome: githubCommitChecks.outcome })
      .from(githubCommitChecks)
      .where(inArray(githubCommitChecks.sha, db.select({ sha: githubPullRequests.headSha }).from(githubPullRequests).where(candidateUpdatePrs(db)))),
  ] as const;
}

/** The fleet's target as D1 holds it: the followed branch's state and the update PRs to show. */
export interface FleetTargetState {
  repo: RepoState | null;
  updatePrs: UpdatePr[];
}

type FleetTargetRows = readonly [RepoRow[], PullRow[], { repository: string; sha: string; outcome: CommitCheck["outcome"] }[]];

/** The fleet target from its statements' rows: the open update PRs newest first (each but the newest superseded) and the merges not yet read as the head. */
export function toFleetTarget([repoRows, pullRows, checkRows]: FleetTargetRows): FleetTargetState {
  const record = repoRows[0] ? toRepoRecord(repoRows[0]) : null;
  // No state yet (no push seen, no sync ran): the open update PRs already known, of whichever repository sent them.
  const repository = record?.repository ?? pullRows[0]?.repository ?? null;
  const ours = pullRows.filter((row) => row.repository === repository && (record === null || row.baseRef === record.branch)).map(toPullRecord);
  const ci = (sha: string) => combineCiState(checkRows.filter((row) => row.repository === repository && row.sha === sha).map((row) => row.outcome));
  const open = ours.filter((pr) => pr.state === "open").map((pr, index) => toUpdatePr(pr, ci(pr.headSha), index > 0));
  if (record === null) return { repo: null, updatePrs: open };
  // Merged after the state was read: merges the control plane has heard of but whose commit it has not read as the head.
  const merged = ours
    .filter((pr) => pr.state === "merged" && pr.mergedAt !== null && Date.parse(pr.mergedAt) > Date.parse(record.updatedAt))
    .map((pr) => toUpdatePr(pr, ci(pr.headSha), false));
  const newestFirst = (a: UpdatePr, b: UpdatePr) => b.createdAt.localeCompare(a.createdAt) || b.number - a.number;
  return { repo: toRepoState(record), updatePrs: [...open, ...merged].sort(newestFirst) };
}

/**
 * The fleet's target for the compartments (common/compartments.ts): the followed branch's state, its open update
 * PRs (newest first, older ones superseded) and any update PR merged after the state was last read. The tables only
 * hold the configured repository, so no configuration is needed. One D1 round trip: before, the state's read came
 * first and the PRs' and their CI signals' after it, three in a row before the first byte of the fleet page.
 */
export async function loadFleetTarget(db: Database): Promise<FleetTargetState> {
  return toFleetTarget(await db.batch(fleetTargetStatements(db)));
}

// ---------------------------------------------------------------------------
// Housekeeping

/**
 * Drops deliveries, CI signals and closed or merged pull requests older than
 * `before` (GitHub redelivers for a few days at most).
 */
export async function pruneGitHubHistory(db: Database, before: string): Promise<void> {
  await db.batch([
    db.delete(githubDeliveries).where(lt(githubDeliveries.receivedAt, before)),
    db.delete(githubCommitChecks).where(lt(githubCommitChecks.updatedAt, before)),
    db.delete(githubPullRequests).where(and(ne(githubPullRequests.state, "open"), lt(githubPullRequests.syncedAt, before))),
  ]);
}
