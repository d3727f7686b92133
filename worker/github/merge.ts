/** Merging an update PR from the dashboard, Merge & Deploy's first half (see docs/rollouts.md "The API"). */
import { renderLockMarkdown } from "../../common/lock-diff.ts";
import type { UpdatePr } from "../../common/protocol.ts";
import { writeAudit } from "../db/audit.ts";
import { ciStates, getPullRequest, savePullRequest, toUpdatePr } from "../db/github.ts";
import type { MergeMethod } from "./client.ts";
import { requireClient, requireRepository, type GitHubContext } from "./context.ts";
import { GitHubApiError } from "./errors.ts";

/** Why a merge was not even attempted: answered as an API error with this status and code. */
export class MergeRejected extends Error {
  override name = "MergeRejected";
  readonly status: 404 | 409;
  readonly code: string;
  constructor(status: 404 | 409, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * Merges an open update PR through the GitHub API, if its head is still the
 * one NixFleet showed (`expectedSha`, default: the stored head). The commit
 * message lists the updated inputs. Every attempt is written to the audit
 * log; a refusal by GitHub (GitHubMergeRefusedError) is not retried.
 */
export async function mergeUpdatePr(
  ctx: GitHubContext,
  number: number,
  options: { method: MergeMethod; expectedSha?: string; actor: string },
): Promise<{ sha: string; message: string; updatePr: UpdatePr }> {
  const repository = requireRepository(ctx);
  const record = await getPullRequest(ctx.db, repository.fullName, number);
  if (record === null || !record.isUpdatePr) {
    throw new MergeRejected(404, "update_pr_not_found", `pull request #${number} is not a known update PR of ${repository.fullName}`);
  }
  if (record.state !== "open") throw new MergeRejected(409, "update_pr_not_open", `pull request #${number} is already ${record.state}`);
  const client = requireClient(ctx);
  const sha = options.expectedSha ?? record.headSha;
  const audit = (result: string, details: Record<string, unknown> = {}) =>
    writeAudit(ctx.db, {
      at: ctx.now().toISOString(),
      actor: options.actor,
      action: "update-pr.merge",
      target: `${repository.fullName}#${number}`,
      details: { method: options.method, headSha: sha, title: record.title, ...details },
      result,
    });

  let merged: { sha: string; message: string };
  try {
    merged = await client.mergePull(number, {
      method: options.method,
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
  return { sha: merged.sha, message: merged.message, updatePr: toUpdatePr(updated, ci.get(updated.headSha) ?? "unknown", false) };
}
