/**
 * What can go wrong talking to GitHub, as types a caller can act on. Nothing
 * here retries: a rate limit says when to try again, a refused merge says why.
 */

/** GitHub answered with an error status (or could not be reached: status 0). */
export class GitHubApiError extends Error {
  override name = "GitHubApiError";
  readonly status: number;
  /** GitHub's `message`, e.g. "Pull Request is not mergeable". */
  readonly githubMessage: string;
  readonly documentationUrl: string | null;
  constructor(status: number, githubMessage: string, what: string, documentationUrl: string | null = null) {
    super(`${what}: GitHub answered ${status === 0 ? "nothing" : status}: ${githubMessage}`);
    this.status = status;
    this.githubMessage = githubMessage;
    this.documentationUrl = documentationUrl;
  }
}

/** 403/429 with a rate-limit signal: try again at `retryAt`, not before. */
export class GitHubRateLimitError extends GitHubApiError {
  override name = "GitHubRateLimitError";
  readonly retryAt: Date;
  constructor(status: number, githubMessage: string, what: string, retryAt: Date) {
    super(status, githubMessage, what);
    this.retryAt = retryAt;
    this.message = `${what}: GitHub rate limit reached (${githubMessage}); retry after ${retryAt.toISOString()}`;
  }

  /** Whole seconds until `retryAt`, at least 1, for a Retry-After header. */
  retryAfterSeconds(now = new Date()): number {
    return Math.max(1, Math.ceil((this.retryAt.getTime() - now.getTime()) / 1000));
  }
}

/**
 * GitHub refused to merge (405 not mergeable / checks required, 409 head or
 * base moved, 422 invalid). Retrying the same request will fail the same way.
 */
export class GitHubMergeRefusedError extends GitHubApiError {
  override name = "GitHubMergeRefusedError";
  constructor(status: number, githubMessage: string, what: string) {
    super(status, githubMessage, what);
    this.message = `${what}: GitHub refused the merge (${status}): ${githubMessage}`;
  }
}

/** The ref moved while we built on it (a non-fast-forward update was refused). */
export class GitHubConflictError extends GitHubApiError {
  override name = "GitHubConflictError";
}

/**
 * The revert does not apply: a later commit on the branch changed a file the reverted commit changed
 * (a newer update moved flake.lock again). `before` is the reverted commit's first parent, the state a
 * person could deploy instead; `paths` are the files in the way.
 */
export class GitHubRevertConflictError extends GitHubConflictError {
  override name = "GitHubRevertConflictError";
  readonly before: string;
  readonly paths: readonly string[];
  constructor(githubMessage: string, what: string, before: string, paths: readonly string[]) {
    super(409, githubMessage, what);
    this.before = before;
    this.paths = paths;
  }
}

/** GitHub refused to move the branch itself (branch protection, a ruleset): changes must go through a pull request. */
export class GitHubPushRefusedError extends GitHubApiError {
  override name = "GitHubPushRefusedError";
}

/** The Worker lacks what it needs to talk to GitHub (no token, no repository). */
export class GitHubNotConfiguredError extends Error {
  override name = "GitHubNotConfiguredError";
}
