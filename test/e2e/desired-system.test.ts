/**
 * The exact System compartment end to end (issue 21), with real parts: the control plane on workerd,
 * the GitHub emulator, and three real agents that evaluate their desired system at main's head with
 * real Nix. A commit that changes one host's configuration turns only that host yellow, and Deploy
 * main switches only it (the others' clones move with a pull); a commit that removes a host from the
 * flake turns that host red with nix's error, while the others read its commit as theirs.
 */
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { z } from "zod";
import { CommandView, HostView, RolloutView } from "../../common/protocol.ts";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import { adminApi } from "../support/admin-api.ts";
import { tailOfLogs, type E2eAgent } from "../support/e2e-agent.ts";
import { deployMainEverywhere, startGitHubFleet, type GitHubFleet } from "../support/github-fleet.ts";
import { eventuallyWith } from "../support/wait.ts";
import { removeHostRoot } from "../support/host-root.ts";

vi.setConfig({ testTimeout: 180_000, hookTimeout: 240_000 });

const HOSTS = ["h1", "h2", "h3"] as const;
let root: string;
let github: GitHubFleet;
const agents = new Map<string, E2eAgent>();
const call = adminApi(() => github.cp.url);
const eventually = eventuallyWith({ timeoutMs: 90_000, intervalMs: 250, details: () => tailOfLogs(agents.values(), 15) });

const hostViews = async () => (await call(z.object({ hosts: z.array(HostView) }), "/api/hosts")).hosts;
const systemOf = async (name: string) => (await hostViews()).find((host) => host.name === name)!.compartments.system;
const commandsOf = async (name: string) => (await call(z.object({ commands: z.array(CommandView) }), `/api/hosts/${name}/commands`)).commands;

async function pushToMain(files: Record<string, string | null>, message: string): Promise<string> {
  const { sha } = await github.emulator.pushCommit({ files, message });
  await github.emulator.flushWebhooks();
  return sha;
}

const settled = (id: string) =>
  eventually(`rollout ${id} to end`, async () => {
    const { rollout } = await call(z.object({ rollout: RolloutView }), `/api/rollouts/${id}`);
    return rollout.finishedAt ? rollout : null;
  });

describeWithNix("the desired system with three real agents, the GitHub emulator and the real control plane", () => {
  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-desired-"));
    github = await startGitHubFleet({
      root,
      hosts: HOSTS,
      webhookSecret: "desired-secret",
      token: "github_pat_desired",
      pollTimeoutSeconds: 5,
      packages: {},
      vars: { ROLLOUT_CANARY_SOAK_SECONDS: "2", ROLLOUT_WAVE_SIZE: "2" },
    });
    for (const agent of github.agents) agents.set(agent.name, agent);
    await deployMainEverywhere(github, eventually);
    for (const name of HOSTS) {
      await eventually(`${name} to run main's system`, async () => (await systemOf(name)).state === "green");
    }
  }, 300_000);

  afterAll(async () => {
    await github?.stop();
    if (root) await removeHostRoot(root);
  });

  it("a commit changing only h2's configuration: h2 yellow, h1 and h3 green; Deploy main switches h2 alone", async () => {
    const since = new Date().toISOString();
    const commit = await pushToMain({ "hosts/h2.txt": "h2 generation 2" }, "h2: generation 2");
    await eventually("h2 to read switch needed for the new commit", async () => (await systemOf("h2")).state === "yellow");
    expect((await systemOf("h2")).reason).toMatch(/^switch needed/);
    for (const name of ["h1", "h3"]) {
      // Each host evaluated the new commit and found its system unchanged: green at once, no switch asked for.
      await eventually(`${name} to have evaluated ${commit.slice(0, 7)}`, async () => {
        const host = (await hostViews()).find((h) => h.name === name)!;
        const latest = host.report?.desired?.latest;
        return latest?.commit === commit && "outPath" in latest;
      });
      expect(await systemOf(name)).toMatchObject({ state: "green", reason: "running main's system" });
    }

    const { rollout } = await call(z.object({ rollout: RolloutView }), "/api/rollouts", { body: {} });
    expect(rollout.commit).toBe(commit);
    expect([...rollout.unchanged].sort()).toEqual(["h1", "h3"]);
    expect(rollout.waves.flatMap((wave) => wave.hosts.map((host) => host.name))).toEqual(["h2"]);
    const done = await settled(rollout.id);
    expect(done.state, JSON.stringify(done.failure)).toBe("succeeded");

    const newCommands = async (name: string) => (await commandsOf(name)).filter((command) => command.createdAt >= since);
    expect((await newCommands("h2")).map((command) => command.kind)).toContain("pull-switch");
    for (const name of ["h1", "h3"]) {
      const kinds = (await newCommands(name)).map((command) => command.kind);
      expect(kinds, name).toContain("pull");
      expect(kinds.filter((kind) => kind.includes("switch")), name).toEqual([]);
    }
    for (const name of HOSTS) {
      await eventually(`${name} to run main's system after the deploy`, async () => (await systemOf(name)).state === "green");
    }
  });

  it("a commit that removes h3 from the flake: h3 red with nix's error, h1 and h2 green", async () => {
    const commit = await pushToMain({ "hosts/h3.txt": null }, "h3 leaves the flake");
    await eventually("h3 to read that main does not build on it", async () => (await systemOf("h3")).state === "red");
    expect((await systemOf("h3")).reason).toMatch(/^main does not build on this host: .*h3/);
    for (const name of ["h1", "h2"]) {
      await eventually(`${name} to have evaluated ${commit.slice(0, 7)}`, async () => {
        const host = (await hostViews()).find((h) => h.name === name)!;
        return host.report?.desired?.latest?.commit === commit;
      });
      expect((await systemOf(name)).state, name).toBe("green");
    }
  });
});
