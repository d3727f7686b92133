/**
 * What Refresh from GitHub says afterwards: what was read, or why GitHub could not be read. Loaded
 * with the Refresh from GitHub button (nf-repo-refresh.ts), after the first paint.
 */
import type { RepoState } from "../../common/protocol.ts";
import { localClock, plural } from "../../common/text.ts";
import { shortSha } from "./format.ts";

/** "Read from GitHub at 14:05: main @ 9c41b7a · 1 update PR open". */
export function refreshOutcome(repo: RepoState | null, openUpdatePrs: number, at: Date): string {
  const head = repo?.head ? `${repo.branch} @ ${shortSha(repo.head.sha)}` : `${repo?.branch ?? "the branch"} has no commit yet`;
  const prs = openUpdatePrs === 0 ? "no update PR open" : `${plural(openUpdatePrs, "update PR")} open`;
  return `Read from GitHub at ${localClock(at.toISOString())}: ${head} · ${prs}`;
}

/** The refusal in words, led by what it means for the person: wait, fix the set-up, or try again. */
export function refreshRefusal(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  // The data layer's ApiError, by its shape: this module stays apart from the data layer.
  if (!(error instanceof Error && "code" in error && "status" in error)) return `Refresh failed: ${message}`;
  switch (error.code) {
    case "github_rate_limited":
      return `GitHub is rate limiting this control plane (429): nothing was read. ${message}`;
    case "github_not_configured":
      return `GitHub is not set up (503): ${message}`;
    case "github_error":
      return `GitHub could not be read (502): ${message}`;
    default:
      return `Refresh failed (${error.status === 0 ? "no answer" : error.status}): ${message}`;
  }
}
