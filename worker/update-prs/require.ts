/** The one check every action on an update PR starts with: GitHub configured, the PR known, open when it must be. */
import { getPullRequest, type PullRequestRecord } from "../db/github.ts";
import type { GitHubContext } from "../github/context.ts";
import type { GitHubConfig, RepositoryName } from "../github/config.ts";
import type { Database } from "../db/client.ts";
import { refuse, type Outcome, type Refusal } from "../outcome.ts";

export interface UpdatePrCheck {
  /**
   * Refuse a PR that is no longer open (409 update_pr_not_open). `because` says why it must be
   * ("update PR #7 is closed: <because>"); without it the answer is "pull request #7 is already closed".
   */
  open?: true | { because: string };
  /** The action calls the GitHub API: refuse (503) when no credentials are configured. */
  client?: boolean;
}

/** 503 github_not_configured, 404 update_pr_not_found or 409 update_pr_not_open — or the stored update PR. */
export async function requireUpdatePr(
  ctx: GitHubContext & { db: Database },
  number: number,
  check: UpdatePrCheck = {},
): Promise<Outcome<{ pr: PullRequestRecord; repository: RepositoryName }>> {
  const repository = ctx.config.repository;
  if (repository === null) return notConfigured(ctx.config, "GITHUB_REPOSITORY is not configured");
  if (check.client && ctx.client === null) return notConfigured(ctx.config, "no GitHub API credentials configured");
  const pr = await getPullRequest(ctx.db, repository.fullName, number);
  if (pr === null || !pr.isUpdatePr) return notKnown(number);
  if (check.open !== undefined && pr.state !== "open") return notOpen(pr, check.open === true ? null : check.open.because);
  return { ok: true, pr, repository };
}

/** Whatever is missing first: with a repository configured, that is its credentials. */
const notConfigured = (config: GitHubConfig, otherwise: string): Refusal => refuse(503, "github_not_configured", config.problems[0] ?? otherwise);

export const notKnown = (number: number): Refusal => refuse(404, "update_pr_not_found", `pull request #${number} is not a known update PR`);

/** `pr` as stored or as GitHub has it now (null: no longer tracked). */
export function notOpen(pr: { number: number; state: string }, because: string | null): Refusal {
  const message = because === null ? `pull request #${pr.number} is already ${pr.state}` : `update PR #${pr.number} is ${pr.state}: ${because}`;
  return refuse(409, "update_pr_not_open", message);
}
