/** Update PRs: from pull_request webhooks, and re-read with their lock diff, mergeability and CI. */
import {
  deletePullRequest,
  getPullRequest,
  getRepoState,
  listOpenPullRequests,
  saveCommitCheck,
  savePullLockDiff,
  savePullRequest,
  type PullRequestRecord,
} from "../db/github.ts";
import { FLEET_BUILD_CONTEXT } from "../fleet-build/rules.ts";
import { checkRunKey, checkRunOrdinal, conclusionOutcome, statusOutcome, timeOrdinal } from "../github/ci.ts";
import type { PullRequestData } from "../github/client.ts";
import { requireClient, requireRepository } from "../github/context.ts";
import type { UpdatePrContext } from "./context.ts";
import { GitHubApiError, GitHubRateLimitError } from "../github/errors.ts";
import { HANDLED_PULL_REQUEST_ACTIONS, type PullRequestEvent } from "../github/events.ts";
import { pullLockDiff } from "../github/lock.ts";
import { isRevertPull } from "../github/revert-pull.ts";
import type { HandlerResult } from "./webhook-result.ts";
import { isStale, pullRecord } from "./records.ts";

export async function applyPullRequest(ctx: UpdatePrContext, event: PullRequestEvent): Promise<HandlerResult> {
  const repository = requireRepository(ctx);
  if (!HANDLED_PULL_REQUEST_ACTIONS.has(event.action)) {
    return { outcome: "ignored", reason: `pull_request ${event.action} does not change update PRs` };
  }
  const pr = event.pull_request;
  const branch = ctx.config.branch;
  const existing = await getPullRequest(ctx.db, repository.fullName, pr.number);
  if (pr.base.ref !== branch) {
    if (existing === null) return { outcome: "ignored", reason: `pull request #${pr.number} targets ${pr.base.ref}, not ${branch}` };
    await deletePullRequest(ctx.db, repository.fullName, pr.number);
    await ctx.notifyRepoChanged();
    return { outcome: "processed" };
  }
  if (isStale(pr, existing)) return { outcome: "ignored", reason: `an older state of pull request #${pr.number} than the one stored` };
  const record = pullRecord(repository.fullName, pr, ctx.config.updatePrRule, existing, ctx.now().toISOString());
  if (!record.isUpdatePr && existing === null) {
    const rule = ctx.config.updatePrRule;
    const why = isRevertPull(record) ? "a revert PR NixFleet opened" : `no label "${rule.label}", title without "${rule.titlePattern}"`;
    return { outcome: "ignored", reason: `pull request #${pr.number} is not an update PR (${why})` };
  }
  await savePullRequest(ctx.db, record);
  await ctx.notifyRepoChanged();
  await ctx.updatePrChanged(record);
  // Every update PR: a new one supersedes the older ones, a closed or unlabelled one cancels its schedule.
  await ctx.reconsiderAutomation(null);
  if (record.isUpdatePr && record.state === "open" && (record.lockHeadSha !== record.headSha || record.mergeable === null)) {
    return {
      outcome: "processed",
      followUp: async () => {
        await syncPullDetails(ctx, record);
        await ctx.notifyRepoChanged();
      },
    };
  }
  return { outcome: "processed" };
}

/**
 * The slow part of an update PR: its lock diff against the followed branch,
 * and its mergeability when GitHub had not computed it yet. The caller notifies.
 */
export async function syncPullDetails(ctx: UpdatePrContext, record: PullRequestRecord): Promise<void> {
  const client = requireClient(ctx);
  if (record.lockHeadSha !== record.headSha || record.lockBaseHash !== (await currentLockHash(ctx))) {
    const diff = await pullLockDiff(client, ctx.config.branch, record.headSha);
    await savePullLockDiff(ctx.db, { repository: record.repository, number: record.number, headSha: record.headSha }, diff);
  }
  if (record.mergeable === null) {
    const latest = await client.pull(record.number);
    await storePull(ctx, latest);
  }
}

/**
 * Re-reads one pull request and its head's CI from GitHub and stores them:
 * what the automation's alarm trusts before it merges. Returns what is stored
 * (null when it is no longer tracked).
 */
export async function rereadPull(ctx: UpdatePrContext, number: number): Promise<PullRequestRecord | null> {
  const record = await storePull(ctx, await requireClient(ctx).pull(number));
  if (record !== null && record.state === "open") await syncChecks(ctx, record.headSha);
  // The PR may have merged or moved: the coordinator judges against the stored state, not its copy.
  await ctx.notifyRepoChanged();
  return record;
}

/** Stores a pull request read from the API (unless a newer state is stored). */
async function storePull(ctx: UpdatePrContext, pr: PullRequestData): Promise<PullRequestRecord | null> {
  const repository = requireRepository(ctx);
  const existing = await getPullRequest(ctx.db, repository.fullName, pr.number);
  if (isStale(pr, existing)) return existing;
  if (pr.base.ref !== ctx.config.branch) {
    if (existing !== null) await deletePullRequest(ctx.db, repository.fullName, pr.number);
    return null;
  }
  const record = pullRecord(repository.fullName, pr, ctx.config.updatePrRule, existing, ctx.now().toISOString());
  if (!record.isUpdatePr && existing === null) return null;
  await savePullRequest(ctx.db, record);
  await ctx.updatePrChanged(record);
  return record;
}

async function currentLockHash(ctx: UpdatePrContext): Promise<string | null> {
  const repository = requireRepository(ctx);
  return (await getRepoState(ctx.db, repository.fullName, ctx.config.branch))?.lockHash ?? null;
}

/** The base lock changed: recompute the lock diff of every open update PR computed against another one. */
export async function refreshLockDiffs(ctx: UpdatePrContext, baseHash: string | null): Promise<void> {
  const repository = requireRepository(ctx);
  const open = (await listOpenPullRequests(ctx.db, repository.fullName)).filter((pr) => pr.isUpdatePr);
  for (const pr of open) {
    if (pr.lockHeadSha === pr.headSha && pr.lockBaseHash === baseHash) continue;
    const diff = await pullLockDiff(requireClient(ctx), ctx.config.branch, pr.headSha);
    await savePullLockDiff(ctx.db, { repository: pr.repository, number: pr.number, headSha: pr.headSha }, diff);
  }
  if (open.length > 0) await ctx.notifyRepoChanged();
}

/**
 * Re-reads every open pull request against the followed branch, the ones
 * stored as open that GitHub closed meanwhile, and the CI of each update PR's
 * head — what webhooks would have told us, had none been missed.
 */
export async function syncPullRequests(ctx: UpdatePrContext): Promise<void> {
  const repository = requireRepository(ctx);
  const client = requireClient(ctx);
  const open = await client.openPulls(ctx.config.branch);
  const seen = new Set<number>();
  for (const pr of open) {
    seen.add(pr.number);
    const record = await storePull(ctx, pr);
    if (record === null || !record.isUpdatePr) continue;
    await syncPullDetails(ctx, record);
    await syncChecks(ctx, record.headSha);
  }
  for (const stored of await listOpenPullRequests(ctx.db, repository.fullName)) {
    if (seen.has(stored.number)) continue;
    try {
      await storePull(ctx, await client.pull(stored.number));
    } catch (error) {
      if (!(error instanceof GitHubApiError) || error.status !== 404) throw error;
      await deletePullRequest(ctx.db, repository.fullName, stored.number);
    }
  }
}

/**
 * CI of a commit from the API: check runs and commit statuses. Best effort —
 * a token without Checks or Commit statuses read access still gets the rest.
 */
export async function syncChecks(ctx: UpdatePrContext, sha: string): Promise<void> {
  const repository = requireRepository(ctx);
  const client = requireClient(ctx);
  const receivedAt = ctx.now();
  const updatedAt = receivedAt.toISOString();
  try {
    for (const run of await client.checkRuns(sha)) {
      await saveCommitCheck(ctx.db, repository.fullName, {
        sha,
        kind: "check_run",
        name: checkRunKey(run),
        outcome: conclusionOutcome(run.status, run.conclusion),
        ordinal: checkRunOrdinal(run.id, run.status),
        updatedAt,
      });
    }
  } catch (error) {
    if (error instanceof GitHubRateLimitError) throw error;
    console.warn("github: could not read check runs", error instanceof Error ? error.message : error);
  }
  try {
    for (const status of await client.statuses(sha)) {
      // Our own verdict is not the PR's CI (it would wait for itself).
      if (status.context === FLEET_BUILD_CONTEXT) continue;
      await saveCommitCheck(ctx.db, repository.fullName, {
        sha,
        kind: "status",
        name: status.context,
        outcome: statusOutcome(status.state),
        ordinal: timeOrdinal(status.updatedAt, receivedAt),
        updatedAt,
      });
    }
  } catch (error) {
    if (error instanceof GitHubRateLimitError) throw error;
    console.warn("github: could not read commit statuses", error instanceof Error ? error.message : error);
  }
}
