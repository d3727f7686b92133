import { Hono } from "hono";
import { z } from "zod";
import { GitHubApiError } from "../errors.ts";
import { issueJson, labelJson } from "../payloads.ts";
import { json, paginate, pullNumber, readBody, type AppEnv } from "./common.ts";

/** Both shapes GitHub accepts: `{"labels": [...]}` or a bare array of names. */
const LabelNames = z.union([
  z.object({ labels: z.array(z.union([z.string().min(1), z.object({ name: z.string().min(1) })])) }),
  z.array(z.string().min(1)),
]);

function names(body: z.infer<typeof LabelNames>): string[] {
  const list = Array.isArray(body) ? body : body.labels;
  return list.map((l) => (typeof l === "string" ? l : l.name));
}

/**
 * The issues side of pull requests (labels, and `GET /issues?labels=` — the one list that filters
 * by label). The emulated repository has no plain issues, so every issue here is a pull request.
 */
export function issueRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.get("/labels", (c) => {
    const repo = c.var.repository;
    return json(c, paginate(c, repo.pulls.labels().map((l) => labelJson(repo.site, l))));
  });

  app.get("/issues", async (c) => {
    const repo = c.var.repository;
    const state = c.req.query("state") ?? "open";
    const wanted = (c.req.query("labels") ?? "").split(",").map((l) => l.trim().toLowerCase()).filter(Boolean);
    const issues = repo.pulls
      .list()
      .filter((pr) => state === "all" || pr.state === state)
      .filter((pr) => wanted.every((w) => pr.labels.some((l) => l.toLowerCase() === w)));
    if (c.req.query("direction") === "asc") issues.reverse();
    return json(c, paginate(c, issues).map((pr) => issueJson(repo.site, pr, repo.labelsOf(pr))));
  });

  app.get("/issues/:number", (c) => {
    const repo = c.var.repository;
    const pr = repo.requirePull(pullNumber(c));
    return json(c, issueJson(repo.site, pr, repo.labelsOf(pr)));
  });

  app.get("/issues/:number/labels", (c) => {
    const repo = c.var.repository;
    const pr = repo.requirePull(pullNumber(c));
    return json(c, repo.labelsOf(pr).map((l) => labelJson(repo.site, l)));
  });

  app.post("/issues/:number/labels", async (c) => {
    const repo = c.var.repository;
    const number = pullNumber(c);
    repo.requirePull(number);
    const body = await readBody(c, LabelNames, "Label");
    const labels = await repo.addLabels(number, names(body));
    return json(c, labels.map((l) => labelJson(repo.site, l)));
  });

  app.put("/issues/:number/labels", async (c) => {
    const repo = c.var.repository;
    const number = pullNumber(c);
    const pr = repo.requirePull(number);
    const wanted = names(await readBody(c, LabelNames, "Label"));
    for (const current of [...pr.labels]) {
      if (!wanted.some((w) => w.toLowerCase() === current.toLowerCase())) await repo.removeLabel(number, current);
    }
    const labels = await repo.addLabels(number, wanted);
    return json(c, labels.map((l) => labelJson(repo.site, l)));
  });

  app.delete("/issues/:number/labels/:name", async (c) => {
    const repo = c.var.repository;
    const number = pullNumber(c);
    repo.requirePull(number);
    const name = c.req.param("name");
    if (!name) throw new GitHubApiError(404, "Label does not exist");
    const labels = await repo.removeLabel(number, name);
    return json(c, labels.map((l) => labelJson(repo.site, l)));
  });

  return app;
}
