/** The followed branch's head and flake.lock: from push webhooks, and re-read on a schedule. */
import type { CommitInfo } from "../../common/protocol.ts";
import { getRepoState, saveRepoLock, saveRepoState, type RepoStateRecord } from "../db/github.ts";
import { requireClient, requireRepository } from "../github/context.ts";
import type { UpdatePrContext } from "./context.ts";
import type { PushEvent } from "../github/events.ts";
import { LOCK_PATH, readLockAt } from "../github/lock.ts";
import { refreshLockDiffs } from "./pull-sync.ts";
import type { HandlerResult } from "./webhook-result.ts";

/** lock_problem while the lock of a new head is being read: not a known lock yet. */
export const LOCK_PENDING = "reading flake.lock through the GitHub API";

const touchesLock = (files: readonly string[]): boolean => files.includes(LOCK_PATH);

/** Did any commit of the push add, change or remove flake.lock? */
export function pushTouchesLock(event: PushEvent): boolean {
  const commits = [...event.commits, ...(event.head_commit ? [event.head_commit] : [])];
  return commits.some((c) => touchesLock(c.added) || touchesLock(c.modified) || touchesLock(c.removed));
}

/**
 * A push to the followed branch moves the fleet's target. The new head is
 * stored at once; the lock hash is kept without an API call when the push
 * provably did not touch flake.lock, and read through the API otherwise.
 */
export async function applyPush(ctx: UpdatePrContext, event: PushEvent): Promise<HandlerResult> {
  const repository = requireRepository(ctx);
  const branch = ctx.config.branch;
  if (event.ref !== `refs/heads/${branch}`) return { outcome: "ignored", reason: `push to ${event.ref}, not refs/heads/${branch}` };
  if (event.deleted) return { outcome: "ignored", reason: `${branch} was deleted; the last known state stays` };

  const previous = await getRepoState(ctx.db, repository.fullName, branch);
  const now = ctx.now().toISOString();
  const head: CommitInfo | null = event.head_commit
    ? {
        sha: event.head_commit.id,
        message: event.head_commit.message,
        author: event.head_commit.author.name,
        committedAt: event.head_commit.timestamp,
        tree: event.head_commit.tree_id ?? null,
      }
    : null;
  // The previous lock still holds only if this push continues from the head we know.
  const continues = previous !== null && previous.head?.sha === event.before && !event.forced;
  const lockKnown = previous !== null && previous.lockProblem !== LOCK_PENDING && (previous.lockHash !== null || previous.lockProblem !== null);
  if (head !== null && continues && lockKnown && !pushTouchesLock(event)) {
    await saveRepoState(ctx.db, {
      ...previous,
      repository: repository.fullName,
      branch,
      head,
      updatedAt: now,
      source: "webhook",
    });
    await ctx.notifyRepoChanged();
    return { outcome: "processed" };
  }

  // The lock is unknown until read: say so rather than show the old one as current.
  await saveRepoState(ctx.db, {
    repository: repository.fullName,
    branch,
    head: head ?? previous?.head ?? null,
    lockHash: null,
    lockLastModified: {},
    lockProblem: LOCK_PENDING,
    updatedAt: now,
    source: "webhook",
  });
  await ctx.notifyRepoChanged();
  return {
    outcome: "processed",
    followUp: async () => {
      const client = requireClient(ctx);
      const current = head ?? (await client.branchHead(branch));
      if (head === null) {
        await saveRepoState(ctx.db, {
          repository: repository.fullName,
          branch,
          head: current,
          lockHash: null,
          lockLastModified: {},
          lockProblem: LOCK_PENDING,
          updatedAt: ctx.now().toISOString(),
          source: "webhook",
        });
        // The head is known now, whether or not its lock is stored below.
        await ctx.notifyRepoChanged();
      }
      await readLockForHead(ctx, current.sha, previous);
    },
  };
}

/** Reads the lock at `headSha` and stores it if the branch is still there; then refreshes PR diffs if it changed. */
async function readLockForHead(ctx: UpdatePrContext, headSha: string, previous: RepoStateRecord | null): Promise<void> {
  const repository = requireRepository(ctx);
  const lock = await readLockAt(requireClient(ctx), headSha);
  const stored = await saveRepoLock(
    ctx.db,
    { repository: repository.fullName, branch: ctx.config.branch, headSha },
    { hash: lock.hash, lastModified: lock.lastModified, problem: lock.problem, updatedAt: ctx.now().toISOString() },
  );
  if (!stored) return;
  await ctx.notifyRepoChanged();
  // The base of every update PR's lock diff just changed.
  if (previous?.lockHash !== lock.hash) await refreshLockDiffs(ctx, lock.hash);
}

/**
 * Re-reads the head, its flake.lock only when the head moved, and returns
 * whether anything changed. Throws GitHub errors to the caller.
 */
export async function syncRepoHead(ctx: UpdatePrContext, source: "schedule" | "api"): Promise<{ state: RepoStateRecord; changed: boolean }> {
  const repository = requireRepository(ctx);
  const client = requireClient(ctx);
  const branch = ctx.config.branch;
  const head = await client.branchHead(branch);
  const previous = await getRepoState(ctx.db, repository.fullName, branch);
  const sameHead = previous !== null && previous.head?.sha === head.sha && previous.lockProblem !== LOCK_PENDING;
  const lock = sameHead && previous !== null
    ? { hash: previous.lockHash, lastModified: previous.lockLastModified, problem: previous.lockProblem }
    : await readLockAt(client, head.sha);
  const state = {
    repository: repository.fullName,
    branch,
    head,
    lockHash: lock.hash,
    lockLastModified: lock.lastModified,
    lockProblem: lock.problem,
    updatedAt: ctx.now().toISOString(),
    source,
  };
  await saveRepoState(ctx.db, state);
  const changed = previous === null || previous.head?.sha !== head.sha || previous.lockHash !== lock.hash;
  return { state: { ...state, lastError: null, lastErrorAt: null }, changed };
}
