/**
 * Rollouts end to end with real parts: the control plane on workerd, the
 * GitHub emulator (a real bare repository sending signed webhooks), and six
 * real agent processes, each its own host with its own clone, real Nix and the
 * nixos-rebuild shim. Merge & Deploy all green; a host failing in a wave stops
 * the rollout and opens a revert PR; a failing canary; cancel; the control
 * plane killed mid-rollout resumes; an agent lost mid-switch fails the rollout.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { z } from "zod";
import { CommandView, RolloutView } from "../../common/protocol.ts";
import type { GitHubEmulator } from "../../tools/github-emulator/emulator.ts";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import { adminApi } from "../support/admin-api.ts";
import type { ControlPlane } from "../support/control-plane.ts";
import { killE2eAgents, restartE2eAgent, tailOfLogs, type E2eAgent } from "../support/e2e-agent.ts";
import { deployMainEverywhere, startGitHubFleet, type GitHubFleet } from "../support/github-fleet.ts";
import { eventuallyWith } from "../support/wait.ts";
import { removeHostRoot } from "../support/host-root.ts";

vi.setConfig({ testTimeout: 180_000, hookTimeout: 240_000 });

const exec = promisify(execFile);
const SECRET = "rollout-webhook-secret";
const TOKEN = "github_pat_rollout";
/** h0 is the canary (`canary = true` comes from the host's report; here: the lowest priority number). */
const HOSTS = ["h0", "h1", "h2", "h3", "h4", "h5"] as const;
const POLL_SECONDS = 5;

let root: string;
let cp: ControlPlane;
let emulator: GitHubEmulator;
let github: GitHubFleet | undefined;
const hosts = new Map<string, E2eAgent>();

const call = adminApi(() => cp.url);

const getRollout = async (id: string) => (await call(z.object({ rollout: RolloutView }), `/api/rollouts/${id}`)).rollout;
const hostCommands = async (name: string) => (await call(z.object({ commands: z.array(CommandView) }), `/api/hosts/${name}/commands`)).commands;

const eventually = eventuallyWith({ timeoutMs: 90_000, intervalMs: 250, details: () => tailOfLogs(hosts.values(), 15) });

const settledRollout = (id: string) =>
  eventually(`rollout ${id} to end`, async () => {
    const view = await getRollout(id);
    return ["succeeded", "failed", "cancelled"].includes(view.state) && view.finishedAt ? view : null;
  });

/** Pushes host file changes straight to main (what "Deploy main" deploys). */
async function pushToMain(files: Record<string, string>, message: string): Promise<string> {
  const { sha } = await emulator.pushCommit({ files, message });
  await emulator.flushWebhooks();
  await eventually("the pushed head to be read", async () => {
    const repo = await call(z.object({ repo: z.object({ head: z.object({ sha: z.string() }).nullable() }).nullable() }), "/api/repo");
    return repo.repo?.head?.sha === sha;
  });
  return sha;
}

/** Opens an update PR whose lock changes and whose host files are `files`, with CI green. */
async function openGreenUpdatePr(files: Record<string, string>): Promise<number> {
  const pr = await emulator.openPullRequest({ head: `update-${Date.now()}`, title: "flake.lock: Update", labels: ["automated"], files, message: "flake.lock: Update" });
  await emulator.setCheckRun(pr.head.sha, { name: "build", status: "completed", conclusion: "success" });
  await emulator.flushWebhooks();
  await eventually(`update PR #${pr.number} with CI green`, async () => {
    const { updatePrs } = await call(z.object({ updatePrs: z.array(z.object({ number: z.number(), ciState: z.string() })) }), "/api/update-prs");
    return updatePrs.some((p) => p.number === pr.number && p.ciState === "success");
  });
  return pr.number;
}

const onlyCommandsSince = async (name: string, since: string) => (await hostCommands(name)).filter((c) => c.createdAt >= since && c.kind === "pull-switch");

describeWithNix("rollouts with six real agents, the GitHub emulator and the real control plane", () => {
  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-rollout-"));
    github = await startGitHubFleet({
      root,
      hosts: HOSTS,
      webhookSecret: SECRET,
      token: TOKEN,
      pollTimeoutSeconds: POLL_SECONDS,
      // A revert PR after a failure (the default reverts the commit on main): this file watches it open.
      vars: { ROLLOUT_CANARY_SOAK_SECONDS: "2", ROLLOUT_WAVE_SIZE: "2", ROLLBACK_STRATEGY: "revert-pr" },
      packages: {},
    });
    ({ cp, emulator } = github);
    for (const agent of github.agents) hosts.set(agent.name, agent);
    await deployMainEverywhere(github, eventually);
  }, 300_000);

  afterAll(async () => {
    await github?.stop();
    if (root) await removeHostRoot(root);
  });

  it("Merge & Deploy: the update PR merged, canary first, then waves, every host at the merge commit", async () => {
    const number = await openGreenUpdatePr(Object.fromEntries(HOSTS.map((name) => [`hosts/${name}.txt`, `${name} generation 2`])));
    const { rollout } = await call(z.object({ rollout: RolloutView, merged: z.object({ sha: z.string() }) }), `/api/update-prs/${number}/merge-and-deploy`, { body: {} });
    expect(rollout.pr).toBe(number);
    expect(rollout.waves[0]).toMatchObject({ canary: true, hosts: [expect.objectContaining({ name: "h0" })] });
    const done = await settledRollout(rollout.id);
    expect(done.state, JSON.stringify(done.failure)).toBe("succeeded");
    expect(done.done).toBe(HOSTS.length);
    // Canary before everyone: h0's command finished before any other host's was created.
    const canary = (await hostCommands("h0")).find((c) => c.actor === `rollout ${rollout.id}`)!;
    for (const name of HOSTS.slice(1)) {
      const command = (await hostCommands(name)).find((c) => c.actor === `rollout ${rollout.id}`)!;
      expect(command.createdAt >= canary.finishedAt!).toBe(true);
      expect(command.result?.commitAfter).toBe(rollout.commit);
    }
    // The update history keeps the PR and its lock diff.
    const history = await call(z.object({ context: z.object({ pr: z.object({ number: z.number() }).nullable() }) }), `/api/rollouts/${rollout.id}`);
    expect(history.context.pr?.number).toBe(number);
  });

  it("a host failing in a wave stops the rollout: later hosts never get a command, and a revert PR opens", async () => {
    const since = new Date().toISOString();
    const files = Object.fromEntries(HOSTS.map((name) => [`hosts/${name}.txt`, name === "h1" ? "fail: h1 cannot build this" : `${name} generation 3`]));
    const number = await openGreenUpdatePr(files);
    // h1's build of the PR head fails too (docs/fleet-build.md), which refuses the merge or leaves h1 out: an admin deploys to it anyway.
    const { rollout } = await call(z.object({ rollout: RolloutView }), `/api/update-prs/${number}/merge-and-deploy`, {
      body: { includeFailedBuilds: true, overrideFleetBuild: { reason: "this test deploys to the failing host" } },
    });
    const done = await settledRollout(rollout.id);
    expect(done.state).toBe("failed");
    expect(done.failure?.host).toBe("h1");
    // Waves of 2 after the canary: h1 and h2 ran; h3, h4, h5 never received a command.
    for (const name of ["h3", "h4", "h5"]) expect(await onlyCommandsSince(name, since)).toEqual([]);
    const reverted = await eventually("the revert PR", async () => {
      const view = await getRollout(rollout.id);
      return view.revert?.state === "opened" ? view.revert : null;
    });
    const open = await emulator.openPullRequests();
    expect(open.some((pr) => reverted.url === pr.htmlUrl && pr.title.startsWith("Revert"))).toBe(true);
  });

  it("a failing canary stops everything after it", async () => {
    const since = new Date().toISOString();
    await pushToMain({ "hosts/h0.txt": "fail: the canary breaks" }, "break the canary");
    const { rollout } = await call(z.object({ rollout: RolloutView }), "/api/rollouts", { body: {} });
    const done = await settledRollout(rollout.id);
    expect(done.state).toBe("failed");
    expect(done.failure?.host).toBe("h0");
    for (const name of HOSTS.slice(1)) expect(await onlyCommandsSince(name, since)).toEqual([]);
  });

  it("cancel during the canary: the rest are cancelled, nothing else is sent", async () => {
    const since = new Date().toISOString();
    await pushToMain({ "hosts/h0.txt": "h0 generation 4" }, "mend the canary");
    await hosts.get("h0")!.shim.setMode("gate");
    const { rollout } = await call(z.object({ rollout: RolloutView }), "/api/rollouts", { body: {} });
    await eventually("the canary to switch", async () => (await getRollout(rollout.id)).waves[0]!.hosts[0]!.state === "pulling");
    await call(z.object({ rollout: RolloutView }), `/api/rollouts/${rollout.id}/cancel`, { body: {} });
    await hosts.get("h0")!.shim.setMode("normal");
    await hosts.get("h0")!.shim.release();
    const done = await settledRollout(rollout.id);
    expect(done.state).toBe("cancelled");
    for (const name of HOSTS.slice(1)) expect(await onlyCommandsSince(name, since)).toEqual([]);
  });

  it("the control plane killed mid-rollout resumes exactly where it was", async () => {
    await pushToMain(Object.fromEntries(HOSTS.map((name) => [`hosts/${name}.txt`, `${name} generation 5`])), "generation 5");
    const { rollout } = await call(z.object({ rollout: RolloutView }), "/api/rollouts", { body: {} });
    await eventually("the canary wave to soak", async () => (await getRollout(rollout.id)).state === "soaking");
    await cp.restart();
    const done = await settledRollout(rollout.id);
    expect(done.state, JSON.stringify(done.failure)).toBe("succeeded");
    for (const name of HOSTS) {
      const sent = (await hostCommands(name)).filter((c) => c.actor === `rollout ${rollout.id}`);
      expect(sent, `${name} got its command once`).toHaveLength(1);
    }
  });

  it("an agent lost mid-switch ends its host lost and the rollout failed, not stuck", async () => {
    await pushToMain(Object.fromEntries(HOSTS.map((name) => [`hosts/${name}.txt`, `${name} generation 6`])), "generation 6");
    const canary = hosts.get("h0")!;
    const lastPid = path.join(canary.shim.stateDir, "last-pid");
    await fs.rm(lastPid, { force: true });
    await fs.rm(path.join(canary.shim.stateDir, "release"), { force: true });
    await canary.shim.setMode("gate");
    const { rollout } = await call(z.object({ rollout: RolloutView }), "/api/rollouts", { body: {} });
    // The switch is running (the shim waits at its gate).
    const pid = await eventually("the canary's switch to run", async () => Number(await fs.readFile(lastPid, "utf8").catch(() => "0")));
    // Lost means the control plane knew the agent held the command. Killed before its "started" reached the
    // control plane, the delivery is unconfirmed and goes to the next agent again, which is at-least-once
    // delivery working, not this scenario.
    await eventually("the control plane to know the switch runs", async () =>
      (await hostCommands("h0")).some((c) => c.actor === `rollout ${rollout.id}` && c.state === "running"),
    );
    // The host dies: the agent and its switch are gone, and it comes back without its state.
    await killE2eAgents([canary]);
    // The detached switch runs in its own process group (the job wrapper leads it): kill the group.
    const pgid = Number((await exec("ps", ["-o", "pgid=", "-p", String(pid)]).catch(() => ({ stdout: "0" }))).stdout.trim());
    for (const target of [pgid > 0 ? -pgid : 0, pid]) {
      try {
        if (target !== 0) process.kill(target, "SIGKILL");
      } catch {
        // already gone with its group
      }
    }
    await removeHostRoot(path.join(canary.dir, "state"));
    await canary.shim.setMode("normal");
    restartE2eAgent(canary);
    const done = await settledRollout(rollout.id);
    expect(done.state).toBe("failed");
    expect(done.failure).toMatchObject({ host: "h0", reason: expect.stringContaining("lost") });
  });
});
