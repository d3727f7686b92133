import { Hono } from "hono";
import { z } from "zod";
import { CHECK_CONCLUSIONS } from "../checks.ts";
import type { GitHubEmulator } from "../emulator.ts";
import { GitHubApiError } from "../errors.ts";
import { json, readBody, type AppEnv } from "./common.ts";

const Files = z.record(z.string(), z.string().nullable());
const Author = z.object({ name: z.string().min(1), email: z.string().min(1) });

const Push = z.object({ branch: z.string().optional(), files: Files, message: z.string().min(1), author: Author.optional() });
const OpenPull = z.object({
  head: z.string().min(1),
  base: z.string().optional(),
  title: z.string().min(1),
  body: z.string().optional(),
  labels: z.array(z.string()).optional(),
  files: Files,
  message: z.string().min(1),
  user: z.string().optional(),
});
const UpdatePull = z.object({ files: Files, message: z.string().min(1) });
const UpdatePr = z.object({ inputs: z.array(z.string()).optional(), labels: z.array(z.string()).optional() });
const Status = z.object({
  state: z.enum(["error", "failure", "pending", "success"]),
  context: z.string().optional(),
  description: z.string().optional(),
  target_url: z.string().optional(),
});
const CheckRun = z.object({
  name: z.string().min(1),
  status: z.enum(["queued", "in_progress", "completed"]).optional(),
  conclusion: z.enum(CHECK_CONCLUSIONS).nullable().optional(),
});
const WorkflowRun = z.object({ conclusion: z.enum(CHECK_CONCLUSIONS), name: z.string().optional() });
const RequireChecks = z.object({ required: z.union([z.boolean(), z.array(z.string())]) });
const MergeMethods = z.object({ allowed: z.array(z.enum(["merge", "squash", "rebase"])).min(1) });
const Label = z.object({ name: z.string().min(1) });
const Fault = z.object({
  method: z.enum(["GET", "POST", "PUT", "PATCH", "DELETE"]),
  path: z.string().startsWith("/"),
  status: z.number().int().min(500).max(599).optional(),
  count: z.number().int().positive().optional(),
});

function number(raw: string | undefined): number {
  if (!raw || !/^\d+$/.test(raw)) throw new GitHubApiError(404, "Not Found");
  return Number(raw);
}

/**
 * `/_emulator/*`: drive the emulator over HTTP (demos, and tests running it in another process).
 * Each endpoint calls the test-side method of the same name; see README.md.
 */
export function controlRoutes(emulator: GitHubEmulator): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.get("/_emulator", (c) =>
    json(c, {
      owner: emulator.owner,
      repo: emulator.repo,
      defaultBranch: emulator.defaultBranch,
      apiUrl: emulator.apiUrl,
      cloneUrl: emulator.cloneUrl,
    }),
  );

  app.post("/_emulator/post-receive", async (c) => {
    await emulator.receivePush(await c.req.text());
    return c.body(null, 204);
  });

  app.get("/_emulator/deliveries", (c) => json(c, emulator.deliveries));

  app.post("/_emulator/deliveries/:id/redeliver", async (c) => {
    const id = c.req.param("id");
    if (!emulator.deliveries.some((d) => d.id === id)) throw new GitHubApiError(404, "Not Found");
    return json(c, await emulator.redeliver(id));
  });

  app.post("/_emulator/flush-webhooks", async (c) => {
    await emulator.flushWebhooks();
    return c.body(null, 204);
  });

  app.post("/_emulator/push", async (c) => {
    const body = await readBody(c, Push, "Push");
    return json(c, await emulator.pushCommit(body), 201);
  });

  app.post("/_emulator/pulls", async (c) => {
    const body = await readBody(c, OpenPull, "PullRequest");
    return json(c, await emulator.openPullRequest(body), 201);
  });

  app.post("/_emulator/pulls/:number/commits", async (c) => {
    const body = await readBody(c, UpdatePull, "PullRequest");
    const sha = await emulator.updatePullRequest(number(c.req.param("number")), body);
    return json(c, { sha }, 201);
  });

  app.post("/_emulator/pulls/:number/labels", async (c) => {
    const n = number(c.req.param("number"));
    await emulator.addLabel(n, (await readBody(c, Label, "Label")).name);
    return json(c, await emulator.pullRequest(n));
  });

  app.delete("/_emulator/pulls/:number/labels/:name", async (c) => {
    const n = number(c.req.param("number"));
    await emulator.removeLabel(n, c.req.param("name"));
    return json(c, await emulator.pullRequest(n));
  });

  app.post("/_emulator/pulls/:number/close", async (c) => {
    const n = number(c.req.param("number"));
    await emulator.closePullRequest(n);
    return json(c, await emulator.pullRequest(n));
  });

  app.post("/_emulator/update-pr", async (c) => {
    const body = await readBody(c, UpdatePr, "PullRequest");
    return json(c, await emulator.openFlakeUpdatePullRequest(body), 201);
  });

  app.post("/_emulator/commits/:sha/statuses", async (c) => {
    const body = await readBody(c, Status, "Status");
    await emulator.setCommitStatus(c.req.param("sha"), body.state, body.context, {
      description: body.description,
      targetUrl: body.target_url,
    });
    return c.body(null, 204);
  });

  app.post("/_emulator/commits/:sha/check-runs", async (c) => {
    const body = await readBody(c, CheckRun, "CheckRun");
    await emulator.setCheckRun(c.req.param("sha"), body);
    return c.body(null, 204);
  });

  app.post("/_emulator/commits/:sha/workflow-runs", async (c) => {
    const body = await readBody(c, WorkflowRun, "WorkflowRun");
    const id = await emulator.workflowRun(c.req.param("sha"), body.conclusion, { name: body.name });
    return json(c, { id }, 201);
  });

  app.put("/_emulator/require-checks", async (c) => {
    const body = await readBody(c, RequireChecks, "Settings");
    emulator.requireChecks(body.required);
    return c.body(null, 204);
  });

  app.put("/_emulator/merge-methods", async (c) => {
    const body = await readBody(c, MergeMethods, "Settings");
    emulator.allowMergeMethods(body.allowed);
    return c.body(null, 204);
  });

  app.post("/_emulator/faults", async (c) => {
    emulator.failNext(await readBody(c, Fault, "Fault"));
    return c.body(null, 204);
  });

  app.delete("/_emulator/faults", (c) => {
    emulator.clearFaults();
    return c.body(null, 204);
  });

  return app;
}
