import { Hono, type Context } from "hono";
import { z } from "zod";
import { hasRole, MergeAndDeployRequest, Sha1 } from "../../common/protocol.ts";
import { writeAudit } from "../db/audit.ts";
import { automation } from "../automation.ts";
import { coordinator } from "../coordinator.ts";
import { ciStates, getPullRequest, getRepoState, listUpdatePrs, toRepoState } from "../db/github.ts";
import type { AppEnv } from "../env.ts";
import { ApiError, errorBody } from "../errors.ts";
import { withAutomation } from "../fleet.ts";
import { readGitHubConfig } from "../github/config.ts";
import { githubContext } from "../github/context.ts";
import { GitHubApiError, GitHubMergeRefusedError, GitHubNotConfiguredError, GitHubRateLimitError } from "../github/errors.ts";
import { mergeUpdatePr, MergeRejected } from "../github/merge.ts";
import { refreshRepoState } from "../github/refresh.ts";
import { LOCK_PENDING } from "../github/repo-state.ts";
import { jsonBody, parseWith } from "../validation.ts";
import { shortSha } from "../../common/text.ts";

/** GitHub's failure as this API's error: rate limits with Retry-After, refusals as 409, the rest 502. */
function githubFailure(c: Context<AppEnv>, error: unknown): Response {
  if (error instanceof GitHubNotConfiguredError) return c.json(errorBody("github_not_configured", error.message), 503);
  if (error instanceof GitHubRateLimitError) {
    return c.json(errorBody("github_rate_limited", error.message), 429, { "retry-after": String(error.retryAfterSeconds()) });
  }
  if (error instanceof GitHubMergeRefusedError) return c.json(errorBody("merge_refused", `GitHub refused the merge: ${error.githubMessage}`), 409);
  if (error instanceof GitHubApiError) return c.json(errorBody("github_error", error.message), 502);
  throw error;
}

/**
 * `GET /api/repo`: the followed branch's state, and what keeps it from being
 * complete. Always 200: `repo` is null until the first push or sync, and
 * `problems` lists missing settings and the last failed sync in plain words.
 */
export const repoRoutes = new Hono<AppEnv>()
  .get("/", async (c) => {
    const config = readGitHubConfig(c.env);
    const problems = [...config.problems];
    const record = config.repository ? await getRepoState(c.get("db"), config.repository.fullName, config.branch) : null;
    if (config.repository && !record) {
      problems.push("the repository has not been read yet: it is read on the next push webhook or 5-minute sync (POST /api/repo/refresh reads it now)");
    }
    if (record?.lockProblem && record.lockProblem !== LOCK_PENDING) problems.push(`flake.lock: ${record.lockProblem}`);
    if (record?.lastError) problems.push(`the last sync with GitHub failed at ${record.lastErrorAt}: ${record.lastError}`);
    return c.json({
      repository: config.repository?.fullName ?? null,
      branch: config.branch,
      repo: record ? toRepoState(record) : null,
      problems,
    });
  })
  .post("/refresh", async (c) => {
    const result = await refreshRepoState(c.env, c.get("db"), { source: "api" });
    if (result.ok) return c.json({ repo: result.repo, updatePrs: result.updatePrs });
    if (result.reason === "not_configured") return c.json(errorBody("github_not_configured", result.message), 503);
    if (result.reason === "rate_limited" && result.retryAt !== null) {
      const seconds = Math.max(1, Math.ceil((Date.parse(result.retryAt) - Date.now()) / 1000));
      return c.json(errorBody("github_rate_limited", result.message), 429, { "retry-after": String(seconds) });
    }
    return c.json(errorBody("github_error", result.message), 502);
  });

const PullNumber = z.coerce.number().int().positive().max(2 ** 31);

export const MergeUpdatePrRequest = z.strictObject({
  method: z.enum(["merge", "squash", "rebase"]).default("merge"),
  /** The head the person looked at: GitHub refuses the merge if the PR moved since. */
  sha: Sha1.optional(),
});

/** `GET /api/update-prs` (open update PRs, newest first) and `POST /api/update-prs/:number/merge`. */
export const updatePrRoutes = new Hono<AppEnv>()
  .get("/", async (c) => {
    const config = readGitHubConfig(c.env);
    if (config.repository === null) return c.json({ updatePrs: [] });
    const updatePrs = await listUpdatePrs(c.get("db"), config.repository.fullName, config.branch);
    if (updatePrs.length === 0) return c.json({ updatePrs });
    // The coordinator is the fleet builds' only home; a build of an older head is not this PR's.
    const builds = await coordinator(c.env).fleetBuildsFor(updatePrs.map((pr) => pr.number));
    const withBuilds = updatePrs.map((pr) => {
      const build = builds[pr.number];
      return { ...pr, fleetBuild: build !== undefined && build.headSha === pr.headSha ? build : null };
    });
    return c.json({ updatePrs: await withAutomation(c.env, withBuilds) });
  })
  /** Build on all hosts: (re-)runs the fleet build of the update PR's current head (docs/fleet-build.md). */
  .post("/:number/build", async (c) => {
    const number = parseWith(PullNumber, c.req.param("number"), "invalid pull request number");
    const db = c.get("db");
    const actor = c.get("actor");
    const config = readGitHubConfig(c.env);
    if (config.repository === null) throw new ApiError(503, "github_not_configured", config.problems[0] ?? "GITHUB_REPOSITORY is not configured");
    const pr = await getPullRequest(db, config.repository.fullName, number);
    if (pr === null || !pr.isUpdatePr) throw new ApiError(404, "update_pr_not_found", `pull request #${number} is not a known update PR`);
    if (pr.state !== "open") throw new ApiError(409, "update_pr_not_open", `update PR #${number} is ${pr.state}: only an open PR's head is built`);
    const started = await coordinator(c.env).startFleetBuild({ pr: number, headSha: pr.headSha, actor, force: true });
    await writeAudit(db, {
      at: new Date().toISOString(),
      actor,
      action: "update-pr.build",
      target: `${config.repository.fullName}#${number}`,
      details: { headSha: pr.headSha, ...(started.ok ? { build: started.build.id } : { code: started.code }) },
      result: started.ok ? "started" : `refused: ${started.message}`,
    });
    if (!started.ok) throw new ApiError(started.status, started.code, started.message);
    return c.json({ fleetBuild: started.build }, 201);

  })
  /** Merge now: the automation's own merge (and rollout) without the delay; 409 while CI is not green. */
  .post("/:number/merge-now", async (c) => {
    const number = parseWith(PullNumber, c.req.param("number"), "invalid pull request number");
    const outcome = await automation(c.env).mergeNow(number, c.get("actor"));
    if (!outcome.ok) throw new ApiError(outcome.status, outcome.code, outcome.message);
    return c.json({ automation: outcome.automation });
  })
  /** Skip this PR: the automation leaves its current head alone (a new commit is considered again). */
  .post("/:number/skip", async (c) => {
    const number = parseWith(PullNumber, c.req.param("number"), "invalid pull request number");
    const outcome = await automation(c.env).skip(number, c.get("actor"));
    if (!outcome.ok) throw new ApiError(outcome.status, outcome.code, outcome.message);
    return c.json({ automation: outcome.automation });
  })
  .post("/:number/merge", ...jsonBody(MergeUpdatePrRequest, { emptyMeansDefaults: true }), async (c) => {
    const number = parseWith(PullNumber, c.req.param("number"), "invalid pull request number");
    const request = c.req.valid("json");
    const ctx = githubContext(c.env, c.get("db"));
    try {
      const merged = await mergeUpdatePr(ctx, number, { method: request.method, expectedSha: request.sha, actor: c.get("actor") });
      return c.json({ merged: true, sha: merged.sha, message: merged.message, updatePr: merged.updatePr });
    } catch (error) {
      if (error instanceof MergeRejected) throw new ApiError(error.status, error.code, error.message);
      return githubFailure(c, error);
    }
  })
  /**
   * Merge & Deploy: merges the update PR (refused while CI is not green,
   * unless overridden with a reason) and starts a rollout of the merge commit
   * taken from GitHub's answer — no waiting for the push webhook.
   */
  .post("/:number/merge-and-deploy", ...jsonBody(MergeAndDeployRequest, { emptyMeansDefaults: true }), async (c) => {
    const number = parseWith(PullNumber, c.req.param("number"), "invalid pull request number");
    const request = c.req.valid("json");
    const db = c.get("db");
    const actor = c.get("actor");
    const config = readGitHubConfig(c.env);
    if (config.repository === null) throw new ApiError(503, "github_not_configured", config.problems[0] ?? "GITHUB_REPOSITORY is not configured");
    const pr = await getPullRequest(db, config.repository.fullName, number);
    if (pr === null || !pr.isUpdatePr) throw new ApiError(404, "update_pr_not_found", `pull request #${number} is not a known update PR`);
    const ci = (await ciStates(db, config.repository.fullName, [pr.headSha])).get(pr.headSha) ?? "unknown";
    if (ci !== "success" && request.override === undefined) {
      throw new ApiError(409, "ci_not_green", `CI is ${ci} on #${number}'s head ${shortSha(pr.headSha)}: wait for it to pass, or override with a reason`);
    }
    if (request.override !== undefined) {
      // Overriding a gate is an admin's call.
      if (!hasRole(c.get("role"), "admin")) {
        throw new ApiError(403, "role_required", `${actor} is an ${c.get("role")}; overriding CI needs the admin role`);
      }
      await writeAudit(db, {
        at: new Date().toISOString(),
        actor,
        action: "update-pr.override-ci",
        target: `${config.repository.fullName}#${number}`,
        details: { ci, reason: request.override.reason },
        result: "ok",
      });
    }
    const ctx = githubContext(c.env, db);
    let merged: { sha: string };
    try {
      merged = await mergeUpdatePr(ctx, number, { method: request.method ?? "merge", expectedSha: request.sha, actor });
    } catch (error) {
      if (error instanceof MergeRejected) throw new ApiError(error.status, error.code, error.message);
      return githubFailure(c, error);
    }
    const started = await coordinator(c.env).startRollout({
      commit: merged.sha,
      pr: { number, title: pr.title, url: pr.url },
      lockChanges: pr.lockChanges ?? [],
      automatic: false,
      ignoreWindows: request.ignoreWindows,
      actor,
      // The merge commit's content is the head's: hosts whose build of the head failed stay out unless insisted on.
      buildOf: { pr: number, headSha: pr.headSha },
      includeFailedBuilds: request.includeFailedBuilds,
    });
    if (!started.ok) {
      throw new ApiError(409, "merged_not_deployed", `merged #${number} as ${shortSha(merged.sha)}, but no rollout started: ${started.message}`);
    }
    return c.json({ rollout: started.rollout, merged: { sha: merged.sha } }, 201);
  });
