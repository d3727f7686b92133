import { Hono } from "hono";
import { z } from "zod";
import { GitHubApiError } from "../errors.ts";
import { fileJson, pullJson, restCommitJson } from "../payloads.ts";
import { json, paginate, pullNumber, readBody, type AppEnv } from "./common.ts";

const CreatePull = z.object({
  title: z.string().min(1),
  head: z.string().min(1),
  base: z.string().min(1),
  body: z.string().nullable().optional(),
  draft: z.boolean().optional(),
  maintainer_can_modify: z.boolean().optional(),
});

const UpdatePull = z.object({
  title: z.string().min(1).optional(),
  body: z.string().nullable().optional(),
  state: z.enum(["open", "closed"]).optional(),
  base: z.string().min(1).optional(),
  maintainer_can_modify: z.boolean().optional(),
});

const MergePull = z.object({
  merge_method: z.enum(["merge", "squash", "rebase"]).optional(),
  sha: z.string().optional(),
  commit_title: z.string().optional(),
  commit_message: z.string().optional(),
});

/** Pull requests: list, read, open, edit, merge, files, commits. */
export function pullRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.get("/pulls", async (c) => {
    const repo = c.var.repository;
    const state = c.req.query("state") ?? "open";
    if (!["open", "closed", "all"].includes(state)) {
      throw new GitHubApiError(422, "Validation Failed", { errors: [{ resource: "PullRequest", field: "state", code: "invalid" }] });
    }
    const head = c.req.query("head")?.replace(new RegExp(`^${repo.site.owner}:`, "i"), "");
    const base = c.req.query("base");
    const sort = c.req.query("sort") ?? "created";
    const direction = c.req.query("direction") ?? (sort === "created" || sort === "updated" ? "desc" : "asc");
    // Note: like GitHub, `labels` is not a filter of this endpoint (use the issues API for that).
    let pulls = repo.pulls.list();
    for (const pr of pulls) await repo.refreshPull(pr);
    pulls = pulls.filter(
      (pr) => (state === "all" || pr.state === state) && (!head || pr.head === head) && (!base || pr.base === base),
    );
    // Creation order is number order; "updated" (and anything else) sorts by last change.
    pulls.sort((a, b) => (sort === "created" ? a.number - b.number : a.updatedAt.localeCompare(b.updatedAt) || a.number - b.number));
    if (direction === "desc") pulls.reverse();
    return json(c, paginate(c, pulls).map((pr) => pullJson(repo.site, pr, repo.labelsOf(pr), null)));
  });

  app.post("/pulls", async (c) => {
    const repo = c.var.repository;
    const body = await readBody(c, CreatePull, "PullRequest");
    const pr = await repo.createPull({ head: body.head, base: body.base, title: body.title, body: body.body, draft: body.draft });
    c.header("location", `${c.req.url.replace(/\/pulls$/, "")}/pulls/${pr.number}`);
    return json(c, await repo.pullApiJson(pr), 201);
  });

  app.get("/pulls/:number", async (c) => {
    const repo = c.var.repository;
    const pr = await repo.refreshPull(repo.requirePull(pullNumber(c)));
    const accept = c.req.header("accept") ?? "";
    if (/vnd\.github(\.v3)?\.(diff|patch)/.test(accept)) {
      const mergeBase = await repo.git.mergeBase(pr.baseSha, pr.headSha);
      const diff = await repo.git.text(["diff", "--no-color", "--no-ext-diff", mergeBase ?? pr.baseSha, pr.headSha]);
      return c.body(`${diff}\n`, 200, { "content-type": "text/plain; charset=utf-8" });
    }
    return json(c, await repo.pullApiJson(pr));
  });

  app.patch("/pulls/:number", async (c) => {
    const repo = c.var.repository;
    const body = await readBody(c, UpdatePull, "PullRequest");
    const pr = await repo.editPull(pullNumber(c), body);
    return json(c, await repo.pullApiJson(pr));
  });

  app.get("/pulls/:number/merge", async (c) => {
    const pr = c.var.repository.requirePull(pullNumber(c));
    if (pr.mergedAt) return c.body(null, 204);
    throw new GitHubApiError(404, "Not Found");
  });

  app.put("/pulls/:number/merge", async (c) => {
    const repo = c.var.repository;
    const number = pullNumber(c);
    repo.requirePull(number);
    const body = await readBody(c, MergePull, "PullRequest");
    const result = await repo.mergePull(number, {
      method: body.merge_method,
      sha: body.sha,
      commitTitle: body.commit_title,
      commitMessage: body.commit_message,
    });
    return json(c, result);
  });

  app.get("/pulls/:number/files", async (c) => {
    const repo = c.var.repository;
    const pr = await repo.refreshPull(repo.requirePull(pullNumber(c)));
    const mergeBase = await repo.git.mergeBase(pr.baseSha, pr.headSha);
    const files = [];
    for (const change of await repo.git.diffFiles(mergeBase, pr.headSha)) {
      files.push(fileJson(repo.site, pr.headSha, change, await repo.git.filePatch(mergeBase, pr.headSha, change.path)));
    }
    return json(c, paginate(c, files));
  });

  app.get("/pulls/:number/commits", async (c) => {
    const repo = c.var.repository;
    const pr = await repo.refreshPull(repo.requirePull(pullNumber(c)));
    const items = [];
    for (const sha of await repo.git.commitsBetween(pr.headSha, [pr.baseSha], 250)) {
      const commit = await repo.git.readCommit(sha);
      if (commit) items.push(restCommitJson(repo.site, commit));
    }
    return json(c, paginate(c, items));
  });

  return app;
}
