import { createHmac } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { GitHubEmulator } from "../../tools/github-emulator/emulator.ts";
import { SECRET, startEmulator } from "./helpers.ts";

describe("github emulator: webhook deliveries", () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  it("pings the hook on start, with exactly GitHub's delivery headers", async () => {
    const env = await startEmulator();
    close = env.close;
    await env.emulator.flushWebhooks();
    const [ping] = env.receiver.received;
    expect(ping?.event).toBe("ping");
    expect(z.object({ zen: z.string(), hook_id: z.number(), hook: z.object({ config: z.object({ url: z.string() }) }) }).parse(ping?.payload)).toBeTruthy();
    const headers = ping?.headers ?? {};
    expect(headers["content-type"]).toBe("application/json");
    expect(headers["user-agent"]).toMatch(/^GitHub-Hookshot\/[0-9a-f]{7}$/);
    expect(headers["x-github-delivery"]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(headers["x-github-hook-id"]).toMatch(/^\d+$/);
    expect(headers["x-github-hook-installation-target-type"]).toBe("repository");
    expect(headers["x-github-hook-installation-target-id"]).toMatch(/^\d+$/);
    expect(ping?.signatureValid).toBe(true);
    expect(headers["x-hub-signature"]).toBe(`sha1=${createHmac("sha1", SECRET).update(ping?.body ?? "").digest("hex")}`);
  });

  it("redelivers with the same delivery id and byte-identical body", async () => {
    const env = await startEmulator();
    close = env.close;
    await env.emulator.seed({ "flake.nix": "{ }\n" });
    await env.emulator.flushWebhooks();
    const original = env.emulator.deliveries.find((d) => d.event === "push");
    expect(original?.status).toBe(200);
    const again = await env.emulator.redeliver(original?.id ?? "");
    expect(again).toMatchObject({ id: original?.id, event: "push", redelivery: true, status: 200 });
    const received = env.receiver.of("push");
    expect(received).toHaveLength(2);
    expect(received[1]?.deliveryId).toBe(received[0]?.deliveryId);
    expect(received[1]?.body).toBe(received[0]?.body);
    expect(received[1]?.signatureValid).toBe(true);
  });

  it("records failed deliveries (receiver 500, nothing listening) instead of throwing at the caller", async () => {
    const env = await startEmulator();
    close = env.close;
    env.receiver.status = 500;
    await env.emulator.seed({ "flake.nix": "{ }\n" });
    await env.emulator.flushWebhooks();
    expect(env.emulator.deliveries.at(-1)).toMatchObject({ event: "push", status: 500, error: "receiver answered 500" });

    const workDir = await mkdtemp(join(tmpdir(), "github-emulator-test-"));
    const unreachable = new GitHubEmulator({ owner: "example", repo: "fleet", workDir, webhookUrl: "http://127.0.0.1:9/hook", webhookSecret: SECRET });
    try {
      await unreachable.start();
      await unreachable.seed({ "flake.nix": "{ }\n" });
      await unreachable.flushWebhooks();
      expect(unreachable.deliveries.map((d) => [d.event, d.status])).toEqual([
        ["ping", null],
        ["push", null],
      ]);
      expect(unreachable.deliveries.every((d) => d.error !== null)).toBe(true);
    } finally {
      await unreachable.stop();
      await rm(workDir, { recursive: true, force: true });
    }
  });

  it("sends status, check_run, check_suite and workflow_run events shaped like GitHub's", async () => {
    const env = await startEmulator();
    close = env.close;
    const sha = await env.emulator.seed({ "flake.nix": "{ }\n" });
    await env.emulator.setCommitStatus(sha, "success", "nix-build", { description: "all hosts build" });
    await env.emulator.workflowRun(sha, "failure", { name: "CI" });
    await env.emulator.flushWebhooks();

    const status = z
      .object({ sha: z.string(), state: z.string(), context: z.string(), description: z.string().nullable(), branches: z.array(z.object({ name: z.string() })) })
      .parse(env.receiver.of("status")[0]?.payload);
    expect(status).toMatchObject({ sha, state: "success", context: "nix-build", description: "all hosts build", branches: [{ name: "main" }] });

    const order = env.receiver.received
      .filter((r) => r.event !== "ping" && r.event !== "push" && r.event !== "status")
      .map((r) => `${r.event}.${z.object({ action: z.string() }).parse(r.payload).action}`);
    expect(order).toEqual([
      "workflow_run.requested",
      "workflow_run.in_progress",
      "check_run.created",
      "check_run.completed",
      "check_suite.completed",
      "workflow_run.completed",
    ]);
    const completed = z
      .object({ workflow_run: z.object({ head_sha: z.string(), conclusion: z.string().nullable(), status: z.string(), head_branch: z.string().nullable(), name: z.string() }) })
      .parse(env.receiver.of("workflow_run").at(-1)?.payload);
    expect(completed.workflow_run).toEqual({ head_sha: sha, conclusion: "failure", status: "completed", head_branch: "main", name: "CI" });

    const combined = await fetch(`${env.emulator.apiUrl}/repos/example/fleet/commits/main/status`);
    expect(await combined.json()).toMatchObject({ state: "success", total_count: 1, statuses: [{ context: "nix-build", state: "success" }] });
    const runs = await fetch(`${env.emulator.apiUrl}/repos/example/fleet/commits/${sha}/check-runs`);
    expect(await runs.json()).toMatchObject({ total_count: 1, check_runs: [{ name: "build", status: "completed", conclusion: "failure" }] });
  });

  it("creates check runs and statuses through the REST API too", async () => {
    const env = await startEmulator();
    close = env.close;
    const sha = await env.emulator.seed({ "flake.nix": "{ }\n" });
    const post = (path: string, body: unknown) =>
      fetch(`${env.emulator.apiUrl}/repos/example/fleet${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    const status = await post(`/statuses/${sha}`, { state: "pending", context: "ci" });
    expect(status.status).toBe(201);
    const run = await post("/check-runs", { name: "eval", head_sha: sha, status: "in_progress" });
    expect(run.status).toBe(201);
    const id = z.object({ id: z.number() }).parse(await run.json()).id;
    const done = await fetch(`${env.emulator.apiUrl}/repos/example/fleet/check-runs/${id}`, {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ conclusion: "success" }),
    });
    expect(await done.json()).toMatchObject({ id, status: "completed", conclusion: "success" });
    const combined = await fetch(`${env.emulator.apiUrl}/repos/example/fleet/commits/${sha}/status`);
    expect(await combined.json()).toMatchObject({ state: "pending" });
    const missing = await post("/statuses/0123456789012345678901234567890123456789", { state: "success" });
    expect(missing.status).toBe(422);
    await env.emulator.flushWebhooks();
    expect(env.receiver.of("check_run").map((r) => z.object({ action: z.string() }).parse(r.payload).action)).toEqual(["created", "completed"]);
  });
});
