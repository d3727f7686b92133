// The one refusal vocabulary at the HTTP edge: a refusal (worker/outcome.ts) thrown through
// worker/errors.ts's refused() is answered by the app's own error handler with its status, the
// {error:{code,message}} body and, for a rate limit, Retry-After; GitHub's failures become refusals
// in worker/update-prs/refusals.ts.
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { ErrorBody } from "../../common/protocol.ts";
import { handleError, refused } from "../../worker/errors.ts";
import { GitHubApiError, GitHubMergeRefusedError, GitHubNotConfiguredError, GitHubRateLimitError } from "../../worker/github/errors.ts";
import { refuse, type Refusal } from "../../worker/outcome.ts";
import { githubRefusal, orGitHubRefusal } from "../../worker/update-prs/refusals.ts";

/** What the Worker answers for a route that throws this refusal. */
async function answer(refusal: Refusal): Promise<{ status: number; retryAfter: string | null; body: ErrorBody }> {
  const app = new Hono().get("/", () => {
    throw refused(refusal);
  });
  app.onError(handleError);
  const res = await app.request("/");
  return { status: res.status, retryAfter: res.headers.get("retry-after"), body: ErrorBody.parse(await res.json()) };
}

describe("a refusal as the HTTP answer", () => {
  it("keeps its status, code and message, without Retry-After unless it carries a wait", async () => {
    expect(await answer(refuse(409, "update_pr_not_open", "pull request #7 is already merged"))).toEqual({
      status: 409,
      retryAfter: null,
      body: { error: { code: "update_pr_not_open", message: "pull request #7 is already merged" } },
    });
    expect(await answer(refuse(429, "github_rate_limited", "slow down", 42))).toEqual({
      status: 429,
      retryAfter: "42",
      body: { error: { code: "github_rate_limited", message: "slow down" } },
    });
  });
});

describe("GitHub's failures as refusals", () => {
  const retryAt = new Date(Date.now() + 90_000);
  it.each([
    [new GitHubNotConfiguredError("GITHUB_REPOSITORY is not configured"), 503, "github_not_configured", "GITHUB_REPOSITORY is not configured"],
    [new GitHubMergeRefusedError(405, "Pull Request is not mergeable", "merging #7"), 409, "merge_refused", "GitHub refused the merge: Pull Request is not mergeable"],
    [new GitHubApiError(500, "boom", "reading #7"), 502, "github_error", "reading #7: GitHub answered 500: boom"],
  ])("%s → %i %s", (error, status, code, message) => {
    expect(githubRefusal(error)).toEqual({ ok: false, status, code, message });
  });

  it("a rate limit is 429 with the seconds until GitHub takes requests again", async () => {
    const refusal = githubRefusal(new GitHubRateLimitError(403, "API rate limit exceeded", "reading #7", retryAt))!;
    expect(refusal).toMatchObject({ status: 429, code: "github_rate_limited" });
    expect(refusal.retryAfterSeconds).toBeGreaterThanOrEqual(80);
    expect(refusal.retryAfterSeconds).toBeLessThanOrEqual(90);
    const { status, retryAfter } = await answer(refusal);
    expect([status, retryAfter]).toEqual([429, String(refusal.retryAfterSeconds)]);
  });

  it("anything that is not GitHub's failure is thrown on, not turned into a refusal", async () => {
    expect(githubRefusal(new TypeError("a bug"))).toBeNull();
    await expect(orGitHubRefusal(() => Promise.reject(new TypeError("a bug")))).rejects.toThrow("a bug");
    expect(await orGitHubRefusal(() => Promise.reject(new GitHubApiError(0, "unreachable", "reading #7")))).toMatchObject({ status: 502, code: "github_error" });
  });
});
