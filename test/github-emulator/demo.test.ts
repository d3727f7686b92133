import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { PullRequestPayload, WebhookReceiver, api, startEmulator } from "./helpers.ts";

const Lock = z.object({
  nodes: z.record(z.string(), z.object({ locked: z.object({ rev: z.string(), lastModified: z.number() }).optional() })),
});
const Snapshot = z.object({ number: z.number(), title: z.string(), labels: z.array(z.string()), head: z.object({ ref: z.string(), sha: z.string() }) });

async function lockAt(apiUrl: string, ref: string): Promise<z.infer<typeof Lock>> {
  const res = await api(apiUrl, "GET", `/repos/example/fleet/contents/flake.lock?ref=${ref}`, undefined, { accept: "application/vnd.github.raw" });
  return Lock.parse(JSON.parse(res.text));
}

describe("github emulator: demo helpers", () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  it("POST /_emulator/update-pr opens a flake.lock update PR labelled automated, then refreshes it", async () => {
    const env = await startEmulator();
    close = env.close;
    await env.emulator.seedExampleFlake();
    const before = await lockAt(env.emulator.apiUrl, "main");

    const opened = await api(env.emulator.apiUrl, "POST", "/_emulator/update-pr", {});
    expect(opened.status).toBe(201);
    const pr = Snapshot.parse(opened.json);
    expect(pr).toMatchObject({ title: "flake.lock: Update", labels: ["automated"], head: { ref: "update_flake_lock_action" } });
    const after = await lockAt(env.emulator.apiUrl, pr.head.sha);
    expect(after.nodes.nixpkgs?.locked?.rev).not.toBe(before.nodes.nixpkgs?.locked?.rev);
    expect(after.nodes["home-manager"]?.locked?.rev).not.toBe(before.nodes["home-manager"]?.locked?.rev);

    const files = await api(env.emulator.apiUrl, "GET", `/repos/example/fleet/pulls/${pr.number}/files`);
    expect(files.json).toEqual([expect.objectContaining({ filename: "flake.lock", status: "modified" })]);
    const body = z.object({ body: z.string(), user: z.object({ login: z.string() }) }).parse((await api(env.emulator.apiUrl, "GET", `/repos/example/fleet/pulls/${pr.number}`)).json);
    expect(body.body).toContain("• Updated input 'nixpkgs':");
    expect(body.user.login).toBe("github-actions[bot]");

    const refreshed = Snapshot.parse((await api(env.emulator.apiUrl, "POST", "/_emulator/update-pr", { inputs: ["nixpkgs"] })).json);
    expect(refreshed.number).toBe(pr.number);
    expect(refreshed.head.sha).not.toBe(pr.head.sha);
    await env.emulator.flushWebhooks();
    const actions = env.receiver.payloads("pull_request", PullRequestPayload).map((p) => p.action);
    expect(actions).toEqual(["opened", "labeled", "synchronize", "edited"]);
  });

  it("the next update PR after a squash merge starts afresh from main, so it merges cleanly", async () => {
    const env = await startEmulator();
    close = env.close;
    await env.emulator.seedExampleFlake();
    const first = Snapshot.parse((await api(env.emulator.apiUrl, "POST", "/_emulator/update-pr", {})).json);
    const squash = await api(env.emulator.apiUrl, "PUT", `/repos/example/fleet/pulls/${first.number}/merge`, { merge_method: "squash" });
    expect(squash.status).toBe(200);
    const main = await env.emulator.branchSha("main");

    const second = Snapshot.parse((await api(env.emulator.apiUrl, "POST", "/_emulator/update-pr", {})).json);
    expect(second.number).not.toBe(first.number);
    const commits = z.array(z.object({ parents: z.array(z.object({ sha: z.string() })) })).parse((await api(env.emulator.apiUrl, "GET", `/repos/example/fleet/pulls/${second.number}/commits`)).json);
    expect(commits.map((c) => c.parents.map((p) => p.sha))).toEqual([[main]]);
    const merged = await api(env.emulator.apiUrl, "PUT", `/repos/example/fleet/pulls/${second.number}/merge`, { merge_method: "squash" });
    expect(merged.status).toBe(200);
  });

  it("drives checks and merges over /_emulator and the API like a demo would", async () => {
    const env = await startEmulator();
    close = env.close;
    await env.emulator.seedExampleFlake();
    const pr = Snapshot.parse((await api(env.emulator.apiUrl, "POST", "/_emulator/update-pr", {})).json);
    expect((await api(env.emulator.apiUrl, "PUT", "/_emulator/require-checks", { required: ["build"] })).status).toBe(204);
    const blocked = await api(env.emulator.apiUrl, "PUT", `/repos/example/fleet/pulls/${pr.number}/merge`, {});
    expect(blocked).toMatchObject({ status: 405, json: { message: 'Required status check "build" is expected.' } });
    await api(env.emulator.apiUrl, "POST", `/_emulator/commits/${pr.head.sha}/check-runs`, { name: "build", conclusion: "success" });
    const merged = await api(env.emulator.apiUrl, "PUT", `/repos/example/fleet/pulls/${pr.number}/merge`, { merge_method: "squash" });
    expect(merged.status).toBe(200);
    const deliveries = z.array(z.object({ event: z.string(), id: z.string() })).parse((await api(env.emulator.apiUrl, "GET", "/_emulator/deliveries")).json);
    expect(deliveries.map((d) => d.event)).toContain("check_suite");
  });

  it("the CLI seeds the example flake, serves the API and delivers to --webhook", async () => {
    const receiver = new WebhookReceiver("cli-secret");
    const webhook = await receiver.start();
    const dir = await mkdtemp(join(tmpdir(), "github-emulator-cli-"));
    const cli = fileURLToPath(new URL("../../tools/github-emulator/cli.ts", import.meta.url));
    const child = spawn(process.execPath, [cli, "--repo", "example/fleet", "--port", "0", "--webhook", webhook, "--secret", "cli-secret", "--dir", dir, "--seed-example"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    close = async () => {
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("exit", resolve));
      await receiver.stop();
      await rm(dir, { recursive: true, force: true });
    };
    let output = "";
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const apiUrl = await new Promise<string>((resolve, reject) => {
      child.stdout.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        const m = /API URL \(GITHUB_API_URL\): (\S+)/.exec(output);
        if (m?.[1]) resolve(m[1]);
      });
      child.once("exit", (code) => reject(new Error(`cli exited ${code}: ${output}`)));
    });
    expect(output).toMatch(/seeded example flake: [0-9a-f]{40}/);
    expect(output).toContain(`clone URL:                ${join(dir, "repos/example/fleet.git")}`);
    const opened = await api(apiUrl, "POST", "/_emulator/update-pr", {});
    expect(opened.status).toBe(201);
    await api(apiUrl, "POST", "/_emulator/flush-webhooks");
    expect(receiver.received.map((r) => r.event)).toEqual(["ping", "push", "push", "pull_request", "pull_request"]);
    expect(receiver.received.every((r) => r.signatureValid)).toBe(true);
  });
});
