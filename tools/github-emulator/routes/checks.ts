import { Hono } from "hono";
import { z } from "zod";
import { CHECK_CONCLUSIONS, type CheckRun } from "../checks.ts";
import { addStatus, setCheckRun } from "../ci-events.ts";
import { GitHubApiError } from "../errors.ts";
import { apiRepoUrl, checkRunJson, checkSuiteJson, repositoryJson, statusJson } from "../payloads.ts";
import type { EmulatedRepository } from "../repository.ts";
import { json, readBody, type AppEnv } from "./common.ts";
import { requireCommit } from "./repos.ts";

const DOC_STATUS = "https://docs.github.com/rest/commits/statuses#create-a-commit-status";

const CreateStatus = z.object({
  state: z.enum(["error", "failure", "pending", "success"]),
  target_url: z.string().nullable().optional(),
  description: z.string().nullable().optional(),
  context: z.string().optional(),
});

const Output = z.object({
  title: z.string().nullable().optional(),
  summary: z.string().nullable().optional(),
  text: z.string().nullable().optional(),
});

const CheckFields = {
  details_url: z.string().nullable().optional(),
  external_id: z.string().optional(),
  status: z.enum(["queued", "in_progress", "completed"]).optional(),
  conclusion: z.enum(CHECK_CONCLUSIONS).optional(),
  started_at: z.string().optional(),
  completed_at: z.string().optional(),
  output: Output.optional(),
};

const CreateCheckRun = z.object({ name: z.string().min(1), head_sha: z.string().min(1), ...CheckFields });
const UpdateCheckRun = z.object({ name: z.string().min(1).optional(), ...CheckFields });

function runJson(repo: EmulatedRepository, run: CheckRun): Record<string, unknown> {
  const pulls = repo.pulls.list().filter((pr) => pr.state === "open" && pr.headSha === run.headSha);
  return checkRunJson(repo.site, run, repo.checks.suite(run.headSha), pulls);
}

/** Commit statuses and check runs. */
export function checkRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.post("/statuses/:sha", async (c) => {
    const repo = c.var.repository;
    const body = await readBody(c, CreateStatus, "Status");
    const status = await addStatus(repo, c.req.param("sha"), {
      state: body.state,
      context: body.context,
      description: body.description,
      targetUrl: body.target_url,
    });
    return json(c, status, 201);
  });

  app.get("/commits/:ref{.+}/status", async (c) => {
    const repo = c.var.repository;
    const sha = await requireCommit(repo, c.req.param("ref"), DOC_STATUS);
    const statuses = repo.checks.latestStatuses(sha);
    const repository = repositoryJson(repo.site, "api");
    return json(c, {
      state: repo.checks.combinedState(sha),
      statuses: statuses.map((s) => statusJson(repo.site, s)),
      sha,
      total_count: statuses.length,
      repository,
      commit_url: `${apiRepoUrl(repo.site)}/commits/${sha}`,
      url: `${apiRepoUrl(repo.site)}/commits/${sha}/status`,
    });
  });

  app.get("/commits/:ref{.+}/statuses", async (c) => {
    const repo = c.var.repository;
    const sha = await requireCommit(repo, c.req.param("ref"), DOC_STATUS);
    return json(c, repo.checks.statuses(sha).map((s) => statusJson(repo.site, s)));
  });

  app.get("/commits/:ref{.+}/check-runs", async (c) => {
    const repo = c.var.repository;
    const sha = await requireCommit(repo, c.req.param("ref"));
    const name = c.req.query("check_name");
    const status = c.req.query("status");
    // filter=latest (the default) keeps the newest run of each name.
    const latest = new Map<string, CheckRun>();
    for (const run of repo.checks.runs(sha)) latest.set(run.name, run);
    const runs = (c.req.query("filter") === "all" ? repo.checks.runs(sha) : [...latest.values()])
      .filter((r) => (!name || r.name === name) && (!status || r.status === status))
      .reverse();
    return json(c, { total_count: runs.length, check_runs: runs.map((r) => runJson(repo, r)) });
  });

  app.get("/commits/:ref{.+}/check-suites", async (c) => {
    const repo = c.var.repository;
    const sha = await requireCommit(repo, c.req.param("ref"));
    const suite = repo.checks.suite(sha);
    const pulls = repo.pulls.list().filter((pr) => pr.state === "open" && pr.headSha === sha);
    return json(c, {
      total_count: suite ? 1 : 0,
      check_suites: suite ? [checkSuiteJson(repo.site, suite, pulls, { latest_check_runs_count: repo.checks.runs(sha).length })] : [],
    });
  });

  app.post("/check-runs", async (c) => {
    const repo = c.var.repository;
    const body = await readBody(c, CreateCheckRun, "CheckRun");
    const run = await setCheckRun(repo, body.head_sha, {
      name: body.name,
      status: body.status,
      conclusion: body.conclusion,
      detailsUrl: body.details_url,
      externalId: body.external_id,
      output: body.output,
    });
    return json(c, runJson(repo, run), 201);
  });

  app.get("/check-runs/:id", (c) => {
    const repo = c.var.repository;
    const run = repo.checks.run(Number(c.req.param("id")));
    if (!run) throw new GitHubApiError(404, "Not Found");
    return json(c, runJson(repo, run));
  });

  app.patch("/check-runs/:id", async (c) => {
    const repo = c.var.repository;
    const run = repo.checks.run(Number(c.req.param("id")));
    if (!run) throw new GitHubApiError(404, "Not Found");
    const body = await readBody(c, UpdateCheckRun, "CheckRun");
    const status = body.status ?? (body.conclusion ? "completed" : run.status);
    const updated = await setCheckRun(repo, run.headSha, {
      id: run.id,
      name: body.name ?? run.name,
      status,
      conclusion: status === "completed" ? (body.conclusion ?? run.conclusion) : null,
      detailsUrl: body.details_url,
      output: body.output,
    });
    return json(c, runJson(repo, updated));
  });

  return app;
}
