import { Hono } from "hono";
import { z } from "zod";
import { PlanRolloutRequest, RevertRolloutRequest, StartRolloutRequest } from "../../common/protocol.ts";
import { writeAudit } from "../db/audit.ts";
import { getPullRequest, loadFleetTarget } from "../db/github.ts";
import { coordinator } from "../coordinator.ts";
import type { AppEnv } from "../env.ts";
import { ApiError, refused } from "../errors.ts";
import { readGitHubConfig } from "../github/config.ts";
import { notKnown } from "../update-prs/require.ts";
import { jsonBody, pageLimit, parseWith, readQuery } from "../validation.ts";

export const RolloutId = z.string().regex(/^ro_[A-Za-z0-9_-]{10,40}$/, "not a rollout id");

const ListQuery = z.object({ limit: pageLimit(20, 100), before: RolloutId.optional() });
/** `?ids=ro_a,ro_b`: the rollouts of a page of the Update history. */
const IncidentsQuery = z.object({ ids: z.string().transform((ids) => ids.split(",")).pipe(z.array(RolloutId).min(1).max(100)) });

/** The followed branch's head as the control plane last read it: what "Deploy main" deploys. */
async function branchHead(c: { get(key: "db"): AppEnv["Variables"]["db"] }): Promise<string> {
  const { repo } = await loadFleetTarget(c.get("db"));
  if (!repo?.head) {
    throw new ApiError(409, "branch_head_unknown", "the branch head is not known yet: it is read on the next push webhook or sync (POST /api/repo/refresh reads it now)");
  }
  return repo.head.sha;
}

/** Rollouts: plan, start (Deploy main), watch, cancel, revert, and the update history. The coordinator runs them. */
export const rolloutsRoutes = new Hono<AppEnv>()
  .get("/", async (c) => {
    const { limit, before } = readQuery(c, ListQuery);
    const listed = await coordinator(c.env).listRollouts(limit, before ?? null);
    if (!listed.ok) throw refused(listed);
    return c.json({ rollouts: listed.rollouts });
  })
  // Before "/:id", which would take "incidents" for an id.
  .get("/incidents", async (c) => {
    const { ids } = readQuery(c, IncidentsQuery);
    return c.json({ incidents: await coordinator(c.env).rolloutIncidents(ids) });
  })
  .post("/plan", ...jsonBody(PlanRolloutRequest), async (c) => {
    const request = c.req.valid("json");
    let commit = request.commit ?? null;
    let buildOf: { pr: number; headSha: string } | null = null;
    if (request.pr !== undefined) {
      const repository = readGitHubConfig(c.env).repository;
      const pr = repository ? await getPullRequest(c.get("db"), repository.fullName, request.pr) : null;
      if (!pr || !pr.isUpdatePr) throw refused(notKnown(request.pr));
      // Until the merge the PR's head stands for the commit the merge will make.
      commit ??= pr.headSha;
      buildOf = { pr: pr.number, headSha: pr.headSha };
    }
    commit ??= await branchHead(c);
    const planned = await coordinator(c.env).planRollout({
      commit,
      pr: request.pr ?? null,
      hosts: request.hosts,
      automatic: false,
      buildOf,
      includeFailedBuilds: request.includeFailedBuilds ?? false,
    });
    if (!planned.ok) throw refused(planned);
    return c.json({ plan: planned.plan });
  })
  .post("/", ...jsonBody(StartRolloutRequest), async (c) => {
    const request = c.req.valid("json");
    const commit = request.commit ?? (await branchHead(c));
    const actor = c.get("actor");
    const outcome = await coordinator(c.env).startRollout({
      commit,
      pr: null,
      lockChanges: [],
      hosts: request.hosts,
      automatic: false,
      ignoreWindows: request.ignoreWindows,
      activation: request.activation ?? null,
      actor,
    });
    await writeAudit(c.get("db"), {
      at: new Date().toISOString(),
      actor,
      action: "rollout.deploy",
      target: commit,
      details: { hosts: request.hosts ?? null, ignoreWindows: request.ignoreWindows, ...(request.activation !== undefined ? { activation: request.activation } : {}), ...(outcome.ok ? { rollout: outcome.rollout.id } : { code: outcome.code }) },
      result: outcome.ok ? "started" : `refused: ${outcome.message}`,
    });
    if (!outcome.ok) throw refused(outcome);
    return c.json({ rollout: outcome.rollout }, 201);
  })
  .get("/:id", async (c) => {
    const id = parseWith(RolloutId, c.req.param("id"), "invalid rollout id");
    const found = await coordinator(c.env).getRollout(id);
    if (!found) throw new ApiError(404, "rollout_not_found", `no rollout ${id}`);
    return c.json(found);
  })
  .post("/:id/revert", ...jsonBody(RevertRolloutRequest), async (c) => {
    const id = parseWith(RolloutId, c.req.param("id"), "invalid rollout id");
    const { strategy } = c.req.valid("json");
    const reverted = await coordinator(c.env).revertRollout(id, strategy, c.get("actor"));
    if (!reverted.ok) throw refused(reverted);
    return c.json({ rollout: reverted.rollout });
  })
  .post("/:id/cancel", async (c) => {
    const id = parseWith(RolloutId, c.req.param("id"), "invalid rollout id");
    const cancelled = await coordinator(c.env).cancelRollout(id, c.get("actor"));
    if (!cancelled.ok) throw refused(cancelled);
    return c.json({ rollout: cancelled.rollout });
  });
