import { Hono } from "hono";
import { z } from "zod";
import { hasRole, MergeAndDeployRequest, MergeMethod, Sha1 } from "../../common/protocol.ts";
import { writeAudit } from "../db/audit.ts";
import { automation } from "../automation.ts";
import { coordinator } from "../coordinator.ts";
import { getRepoState, listUpdatePrs, toRepoState } from "../db/github.ts";
import type { AppEnv } from "../env.ts";
import { refused } from "../errors.ts";
import { withAutomation } from "../fleet.ts";
import { readGitHubConfig } from "../github/config.ts";
import { refuse } from "../outcome.ts";
import { treeOf, updatePrContext } from "../update-prs/context.ts";
import { mergeAndDeploy, notDeployed } from "../update-prs/merge.ts";
import { refreshRefusal, refreshRepoState } from "../update-prs/refresh.ts";
import { orGitHubRefusal } from "../update-prs/refusals.ts";
import { LOCK_PENDING } from "../update-prs/repo-state.ts";
import { requireUpdatePr } from "../update-prs/require.ts";
import { jsonBody, parseWith } from "../validation.ts";

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
    if (!result.ok) throw refused(refreshRefusal(result));
    return c.json({ repo: result.repo, updatePrs: result.updatePrs });
  });

const PullNumber = z.coerce.number().int().positive().max(2 ** 31);

export const MergeUpdatePrRequest = z.strictObject({
  /** Unset: the configured `automation.mergeMethod`. */
  method: MergeMethod.optional(),
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
    const known = await requireUpdatePr(updatePrContext(c.env, db), number, { open: { because: "only an open PR's head is built" } });
    if (!known.ok) throw refused(known);
    const { pr, repository } = known;
    const headTree = await treeOf(updatePrContext(c.env, db).client, pr.headSha);
    const started = await coordinator(c.env).startFleetBuild({ pr: number, headSha: pr.headSha, headTree, actor, force: true });
    await writeAudit(db, {
      at: new Date().toISOString(),
      actor,
      action: "update-pr.build",
      target: `${repository.fullName}#${number}`,
      details: { headSha: pr.headSha, ...(started.ok ? { build: started.build.id } : { code: started.code }) },
      result: started.ok ? "started" : `refused: ${started.message}`,
    });
    if (!started.ok) throw refused(started);
    return c.json({ fleetBuild: started.build }, 201);
  })
  /** Merge now: the automation's own merge (and rollout) without the delay; 409 while CI is not green. */
  .post("/:number/merge-now", async (c) => {
    const number = parseWith(PullNumber, c.req.param("number"), "invalid pull request number");
    const outcome = await automation(c.env).mergeNow(number, c.get("actor"));
    if (!outcome.ok) throw refused(outcome);
    return c.json({ automation: outcome.automation });
  })
  /** Skip this PR: the automation leaves its current head alone (a new commit is considered again). */
  .post("/:number/skip", async (c) => {
    const number = parseWith(PullNumber, c.req.param("number"), "invalid pull request number");
    const outcome = await automation(c.env).skip(number, c.get("actor"));
    if (!outcome.ok) throw refused(outcome);
    return c.json({ automation: outcome.automation });
  })
  .post("/:number/merge", ...jsonBody(MergeUpdatePrRequest, { emptyMeansDefaults: true }), async (c) => {
    const number = parseWith(PullNumber, c.req.param("number"), "invalid pull request number");
    const request = c.req.valid("json");
    const ctx = updatePrContext(c.env, c.get("db"));
    const outcome = await orGitHubRefusal(() => mergeAndDeploy(ctx, number, { method: request.method, expectedSha: request.sha, actor: c.get("actor"), deploy: null }));
    if (!outcome.ok) throw refused(outcome);
    const { merged } = outcome;
    return c.json({ merged: true, sha: merged.sha, message: merged.message, updatePr: merged.updatePr });
  })
  /**
   * Merge & Deploy: merges the update PR (refused while CI is not green, or while the fleet build
   * failed on a host in scope, unless an admin overrides with a reason; worker/update-prs/gates.ts)
   * and starts a rollout of the merge commit, to the chosen hosts if named, taken from GitHub's
   * answer — no waiting for the push webhook.
   */
  .post("/:number/merge-and-deploy", ...jsonBody(MergeAndDeployRequest, { emptyMeansDefaults: true }), async (c) => {
    const number = parseWith(PullNumber, c.req.param("number"), "invalid pull request number");
    const request = c.req.valid("json");
    const actor = c.get("actor");
    const role = c.get("role");
    const ctx = updatePrContext(c.env, c.get("db"));
    const outcome = await orGitHubRefusal(() =>
      mergeAndDeploy(ctx, number, {
        method: request.method,
        expectedSha: request.sha,
        actor,
        // Overriding a gate is an admin's call.
        gates: {
          ciOverride: request.override,
          fleetBuildOverride: request.overrideFleetBuild,
          overrideRefused: hasRole(role, "admin") ? null : refuse(403, "role_required", `${actor} is an ${role}; overriding a merge gate needs the admin role`),
        },
        deploy: { automatic: false, ignoreWindows: request.ignoreWindows, includeFailedBuilds: request.includeFailedBuilds, hosts: request.hosts, activation: request.activation },
      }),
    );
    if (!outcome.ok) throw refused(outcome);
    const { merged, deployed } = outcome;
    if (!deployed.ok) throw refused(notDeployed(number, merged.sha, deployed));
    return c.json({ rollout: deployed.rollout, merged: { sha: merged.sha } }, 201);
  });
