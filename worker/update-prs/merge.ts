/**
 * Merge & Deploy (docs/automation.md): merging an update PR through the GitHub API and starting the
 * rollout of its merge commit. One path for the dashboard's Merge & Deploy and Merge buttons and
 * for the automation's auto-merge; what differs is said in the options.
 */
import { renderLockMarkdown } from "../../common/lock-diff.ts";
import type { ActivationMode, RolloutView, UpdatePr } from "../../common/protocol.ts";
import { shortSha } from "../../common/text.ts";
import { writeAudit } from "../db/audit.ts";
import { ciStates, savePullRequest, toUpdatePr, type PullRequestRecord } from "../db/github.ts";
import type { MergeMethod } from "../github/client.ts";
import { GitHubApiError } from "../github/errors.ts";
import { refuse, type Outcome, type Refusal } from "../outcome.ts";
import type { UpdatePrContext } from "./context.ts";
import { passGates, type MergeGates } from "./gates.ts";
import { requireUpdatePr } from "./require.ts";

export interface MergeOptions {
  /** Unset: the configured `automation.mergeMethod`, so a repository that allows only one method is merged with it. */
  method?: MergeMethod | undefined;
  /** The head the person (or the automation) looked at; default: the stored head. */
  expectedSha?: string;
  actor: string;
}

export interface Merged {
  sha: string;
  message: string;
  updatePr: UpdatePr;
}

/**
 * Merges an open update PR through the GitHub API, if its head is still the
 * one NixFleet showed (`expectedSha`, default: the stored head). The commit
 * message lists the updated inputs. Every attempt is written to the audit
 * log. What NixFleet refuses is a Refusal; GitHub's own failures are thrown as
 * the adapter's errors (a GitHubMergeRefusedError is a definite no, not retried).
 */
async function mergeUpdatePr(ctx: UpdatePrContext, number: number, options: MergeOptions): Promise<Outcome<Merged & { pr: PullRequestRecord }>> {
  const known = await requireUpdatePr(ctx, number, { open: true, client: true });
  if (!known.ok) return known;
  const { pr: record, repository } = known;
  const client = ctx.client!;
  const sha = options.expectedSha ?? record.headSha;
  const method = options.method ?? (await ctx.settings()).automation.mergeMethod;
  const audit = (result: string, details: Record<string, unknown> = {}) =>
    writeAudit(ctx.db, {
      at: ctx.now().toISOString(),
      actor: options.actor,
      action: "update-pr.merge",
      target: `${repository.fullName}#${number}`,
      details: { method, headSha: sha, title: record.title, ...details },
      result,
    });

  let merged: { sha: string; message: string };
  try {
    merged = await client.mergePull(number, {
      method,
      sha,
      ...(record.lockChanges && record.lockChanges.length > 0
        ? { commitMessage: `${record.title}\n\n${renderLockMarkdown(record.lockChanges, { heading: "Updated inputs:" })}` }
        : {}),
    });
  } catch (error) {
    const message = error instanceof GitHubApiError ? error.githubMessage : error instanceof Error ? error.message : String(error);
    await audit(`refused: ${message}`, error instanceof GitHubApiError ? { status: error.status } : {});
    throw error;
  }
  const now = ctx.now().toISOString();
  // updatedAt stays GitHub's: the pull_request closed webhook that follows must not look stale.
  const updated = { ...record, state: "merged" as const, mergedAt: now, mergeCommitSha: merged.sha, syncedAt: now };
  await savePullRequest(ctx.db, updated);
  await audit("merged", { mergeCommitSha: merged.sha });
  await ctx.notifyRepoChanged();
  const ci = await ciStates(ctx.db, repository.fullName, [updated.headSha]);
  return { ok: true, pr: record, sha: merged.sha, message: merged.message, updatePr: toUpdatePr(updated, ci.get(updated.headSha) ?? "unknown", false) };
}

export interface DeployOptions {
  /** Started by the automation rather than a person. */
  automatic: boolean;
  ignoreWindows: boolean;
  /** Only these hosts (the confirmation's choice); default: the plan's own scope. */
  hosts?: string[] | undefined;
  /** Deploy to hosts whose fleet build of the merged head failed, too. */
  includeFailedBuilds?: boolean;
  /** How every switch of the rollout activates; left out, each host's own mode. */
  activation?: ActivationMode | undefined;
  actor: string;
}

/**
 * The rollout of a merge commit: the one already started for it (a merge finished before an
 * interruption), or a new one. Hosts whose fleet build of the merged head failed stay out
 * unless `includeFailedBuilds`: the merge commit's content is that head's.
 */
export async function deployMerge(
  ctx: UpdatePrContext,
  pr: PullRequestRecord,
  merge: { sha: string; headSha: string },
  options: DeployOptions,
): Promise<Outcome<{ rollout: RolloutView }>> {
  const existing = await ctx.rolloutOf(merge.sha);
  if (existing !== null) return { ok: true, rollout: existing };
  return ctx.startRollout({
    commit: merge.sha,
    pr: { number: pr.number, title: pr.title, url: pr.url },
    lockChanges: pr.lockChanges ?? [],
    automatic: options.automatic,
    ignoreWindows: options.ignoreWindows,
    actor: options.actor,
    buildOf: { pr: pr.number, headSha: merge.headSha },
    ...(options.hosts === undefined ? {} : { hosts: options.hosts }),
    ...(options.includeFailedBuilds === undefined ? {} : { includeFailedBuilds: options.includeFailedBuilds }),
    ...(options.activation === undefined ? {} : { activation: options.activation }),
  });
}

export type DeployRequest = Omit<DeployOptions, "actor">;

export interface MergeAndDeployOptions extends MergeOptions {
  /** The dashboard's gates (worker/update-prs/gates.ts); the automation has its own rules. */
  gates?: MergeGates;
  /** Null: merge only (the automation with deployStrategy none). */
  deploy: DeployRequest | null;
  /** Told the merge commit as soon as GitHub merged, before the rollout is asked for. */
  onMerged?: (merged: Merged) => void;
}

/**
 * Merges the update PR and starts the rollout of the merge commit taken from GitHub's answer —
 * no waiting for the push webhook. A rollout that cannot start leaves the merge done: `deployed`
 * then says why (see `notDeployed`).
 */
export function mergeAndDeploy(
  ctx: UpdatePrContext,
  number: number,
  options: MergeAndDeployOptions & { deploy: DeployRequest },
): Promise<Outcome<{ merged: Merged; deployed: Outcome<{ rollout: RolloutView }> }>>;
export function mergeAndDeploy(
  ctx: UpdatePrContext,
  number: number,
  options: MergeAndDeployOptions,
): Promise<Outcome<{ merged: Merged; deployed: Outcome<{ rollout: RolloutView }> | null }>>;
export async function mergeAndDeploy(
  ctx: UpdatePrContext,
  number: number,
  options: MergeAndDeployOptions,
): Promise<Outcome<{ merged: Merged; deployed: Outcome<{ rollout: RolloutView }> | null }>> {
  if (options.gates !== undefined) {
    const gated = await passGates(ctx, number, options.gates, { hosts: options.deploy?.hosts, includeFailedBuilds: options.deploy?.includeFailedBuilds ?? false }, options.actor);
    if (gated !== null) return gated;
  }
  const merged = await mergeUpdatePr(ctx, number, options);
  if (!merged.ok) return merged;
  const { pr, ...result } = merged;
  options.onMerged?.(result);
  if (options.deploy === null) return { ok: true, merged: result, deployed: null };
  const deployed = await deployMerge(ctx, pr, { sha: result.sha, headSha: options.expectedSha ?? pr.headSha }, { ...options.deploy, actor: options.actor });
  return { ok: true, merged: result, deployed };
}

/** Merged, but its rollout refused: the merge stands, the answer says so. */
export const notDeployed = (number: number, sha: string, why: Refusal): Refusal =>
  refuse(409, "merged_not_deployed", `merged #${number} as ${shortSha(sha)}, but no rollout started: ${why.message}`);
