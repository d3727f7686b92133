/** GitHub's failures in the refusal vocabulary (worker/outcome.ts), for the dashboard's update-PR actions. */
import { GitHubApiError, GitHubMergeRefusedError, GitHubNotConfiguredError, GitHubRateLimitError } from "../github/errors.ts";
import { refuse, type Refusal } from "../outcome.ts";

/** Rate limits with their wait, a refused merge as 409, a missing set-up as 503, the rest 502; null: not GitHub's. */
export function githubRefusal(error: unknown): Refusal | null {
  if (error instanceof GitHubNotConfiguredError) return refuse(503, "github_not_configured", error.message);
  if (error instanceof GitHubRateLimitError) return refuse(429, "github_rate_limited", error.message, error.retryAfterSeconds());
  if (error instanceof GitHubMergeRefusedError) return refuse(409, "merge_refused", `GitHub refused the merge: ${error.githubMessage}`);
  if (error instanceof GitHubApiError) return refuse(502, "github_error", error.message);
  return null;
}

/** Runs `work`; GitHub's failures come back as refusals, anything else is thrown on. */
export async function orGitHubRefusal<T>(work: () => Promise<T>): Promise<T | Refusal> {
  try {
    return await work();
  } catch (error) {
    const refusal = githubRefusal(error);
    if (refusal === null) throw error;
    return refusal;
  }
}
