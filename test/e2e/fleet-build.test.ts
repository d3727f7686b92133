/**
 * Build before deploy end to end with real parts: the control plane on
 * workerd (`wrangler dev`), the GitHub emulator (a real bare repository sending
 * signed webhooks and keeping commit statuses), and three real agents building
 * with real Nix. The update PR opens → every host builds its head → the
 * emulator holds `nixfleet/fleet-build` success with the right description and
 * each host's closure diff shows hello 1.0 → 1.1; a PR breaking one host →
 * failure naming it; a new head cancels the old head's builds. With h0 named the builder
 * (`fleetBuild.builders`), h0 alone builds all three hosts' systems, uploads them to the binary cache
 * (local R2) signed with its key and publishes the signed manifest; each host's verdict is h0's result for
 * it, and publishes the built systems as the desired systems of the head's tree; Merge & Deploy's rollout then
 * switches h1 and h2 (substitute mode, evaluate = "ci") to the merge commit through the manifest of that tree,
 * their health checks pass from h0's publication, and a recording `nix` shows they evaluated and built nothing.
 */
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { z } from "zod";
import { AgentConfig } from "../../common/agent-config.ts";
import { CommandView, FleetBuildView, RolloutView, SettingsResponse, UpdatePr } from "../../common/protocol.ts";
import { nixSystemOf } from "../../agent/system.ts";
import type { GitHubEmulator } from "../../tools/github-emulator/emulator.ts";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import { adminApi } from "../support/admin-api.ts";
import type { ControlPlane } from "../support/control-plane.ts";
import { killE2eAgents, restartE2eAgent, tailOfLogs, type E2eAgent } from "../support/e2e-agent.ts";
import { installNixRecorder } from "../support/nix-recorder.ts";
import { deployMainEverywhere, startGitHubFleet, type GitHubFleet } from "../support/github-fleet.ts";
import { eventuallyWith } from "../support/wait.ts";
import { removeHostRoot } from "../support/host-root.ts";

vi.setConfig({ testTimeout: 180_000, hookTimeout: 240_000 });

const SECRET = "fleet-build-webhook-secret";
const TOKEN = "github_pat_fleet_build";
const HOSTS = ["h0", "h1", "h2"] as const;
const POLL_SECONDS = 5;
const CONTEXT = "nixfleet/fleet-build";

let root: string;
let cp: ControlPlane;
let emulator: GitHubEmulator;
let github: GitHubFleet | undefined;
const hosts = new Map<string, E2eAgent>();
/** The builder's key pair, made in beforeAll with `nix-store --generate-binary-cache-key`; the Worker trusts its public half. */
let builderSecretKey: string;
let builderPublicKey: string;

const call = adminApi(() => cp.url);

const eventually = eventuallyWith({ timeoutMs: 120_000, intervalMs: 250, details: () => tailOfLogs(hosts.values(), 15) });

const Status = z.object({ state: z.string(), context: z.string(), description: z.string().nullable(), target_url: z.string().nullable() });

/** The newest `nixfleet/fleet-build` status the emulator holds on `sha`, read through its API as GitHub serves it. */
async function fleetStatus(sha: string): Promise<z.infer<typeof Status> | null> {
  const res = await fetch(`${emulator.apiUrl}/repos/example/fleet/commits/${sha}/statuses`, { headers: { authorization: `token ${TOKEN}` } });
  if (!res.ok) throw new Error(`statuses of ${sha}: ${res.status}`);
  return z.array(Status).parse(await res.json()).find((s) => s.context === CONTEXT) ?? null;
}

async function fleetBuildOf(pr: number): Promise<FleetBuildView | null> {
  const { updatePrs } = await call(z.object({ updatePrs: z.array(UpdatePr) }), "/api/update-prs");
  return updatePrs.find((p) => p.number === pr)?.fleetBuild ?? null;
}

async function openUpdatePr(files: Record<string, string>): Promise<{ number: number; head: string }> {
  const pr = await emulator.openPullRequest({ head: `update-${Date.now()}`, title: "flake.lock: Update", labels: ["automated"], files, message: "flake.lock: Update" });
  await emulator.flushWebhooks();
  return { number: pr.number, head: pr.head.sha };
}

const verdictOf = (pr: number, head: string, verdict: "success" | "failure") =>
  eventually(`#${pr}'s build of ${head.slice(0, 7)} to end in ${verdict}`, async () => {
    const build = await fleetBuildOf(pr);
    return build?.headSha === head && build.verdict === verdict && build.finishedAt ? build : null;
  });

const statusOf = (head: string, state: string) =>
  eventually(`the ${CONTEXT} status ${state} on ${head.slice(0, 7)}`, async () => {
    const status = await fleetStatus(head);
    return status?.state === state ? status : null;
  });

describeWithNix("build before deploy with three real agents, the GitHub emulator and the real control plane", () => {
  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-fleet-build-"));
    builderSecretKey = path.join(root, "builder.secret");
    await promisify(execFile)("nix-store", ["--generate-binary-cache-key", "e2e-fleet-builder-1", builderSecretKey, path.join(root, "builder.public")]);
    builderPublicKey = (await fs.readFile(path.join(root, "builder.public"), "utf8")).trim();
    // The fleet repository of tools/fleet-kit: a system per host, each depending on hello 1.0 and greeter 2.0.
    github = await startGitHubFleet({
      root,
      hosts: HOSTS,
      webhookSecret: SECRET,
      token: TOKEN,
      pollTimeoutSeconds: POLL_SECONDS,
      vars: { DASHBOARD_URL: "https://fleet.example.com", ROLLOUT_CANARY_SOAK_SECONDS: "0", CACHE_TRUSTED_KEYS: builderPublicKey },
    });
    ({ cp, emulator } = github);
    for (const agent of github.agents) hosts.set(agent.name, agent);
    // Every host runs the fleet's configuration first, so a build has a running system to compare with.
    await deployMainEverywhere(github, eventually);
  }, 300_000);

  afterAll(async () => {
    await github?.stop();
    if (root) await removeHostRoot(root);
  });

  it("the update PR opens, every host builds it, and GitHub holds success with each host's closure diff", async () => {
    const { number, head } = await openUpdatePr({ "packages/hello.txt": "1.1 12\n" });
    const build = await verdictOf(number, head, "success");
    expect(build).toMatchObject({ built: 3, counted: 3, description: "3/3 hosts built" });
    for (const host of build.hosts) {
      expect(host.state).toBe("built");
      expect(host.storePath).toMatch(/^\/nix\/store\/.+-nixos-system-h\d$/);
      expect(host.closureDiff?.entries).toContainEqual(expect.objectContaining({ name: "hello", old: ["1.0"], new: ["1.1"] }));
    }
    const status = await statusOf(head, "success");
    expect(status).toMatchObject({ description: "3/3 hosts built", target_url: "https://fleet.example.com/" });
    // Our own status did not become the PR's CI.
    const { updatePrs } = await call(z.object({ updatePrs: z.array(UpdatePr) }), "/api/update-prs");
    expect(updatePrs.find((p) => p.number === number)?.ciState).toBe("unknown");
    await emulator.closePullRequest(number);
    await emulator.flushWebhooks();
  });

  it("a PR that breaks one host's build fails, naming the host and nix's error", async () => {
    const { number, head } = await openUpdatePr({ "hosts/h1.txt": "fail: h1 cannot build this", "packages/hello.txt": "1.2 12\n" });
    const build = await verdictOf(number, head, "failure");
    expect(build.hosts.map((h) => [h.name, h.state])).toEqual([["h0", "built"], ["h1", "failed"], ["h2", "built"]]);
    const failed = build.hosts.find((h) => h.name === "h1")!;
    expect(failed.errorTail).toContain("h1 cannot build this");
    expect(build.description).toMatch(/^2\/3 hosts built, h1 failed: error: /);
    // The failure is posted as soon as h1 fails ("0/3 hosts built, …" when the others are still building);
    // each later end posts the new count.
    const status = await eventually("the status to carry the final count", async () => {
      const posted = await fleetStatus(head);
      return posted?.state === "failure" && posted.description === build.description ? posted : null;
    });
    expect(status.description?.length).toBeLessThanOrEqual(140);
    await emulator.closePullRequest(number);
    await emulator.flushWebhooks();
  });

  it("a new head cancels the old head's builds", async () => {
    const gate = path.join(root, "gate-h0");
    const { number, head: oldHead } = await openUpdatePr({ "hosts/h0.txt": `wait:${gate}`, "packages/hello.txt": "1.3 12\n" });
    // h0's old build runs until the gate opens, which it never does: only the new head can end it.
    await eventually("h0 to build the old head", async () => (await fleetBuildOf(number))?.hosts.find((h) => h.name === "h0")?.state === "building");
    await eventually("h0's builder to wait at its gate", () => fs.access(`${gate}.pid`).then(() => true));
    const old = (await fleetBuildOf(number))!;

    const newHead = await emulator.updatePullRequest(number, { files: { "hosts/h0.txt": "h0 generation 4" }, message: "flake.lock: Update again" });
    await emulator.flushWebhooks();
    const build = await verdictOf(number, newHead, "success");
    expect(build.id).not.toBe(old.id);
    expect(build.description).toBe("3/3 hosts built");
    await statusOf(newHead, "success");

    const oldId = old.hosts.find((h) => h.name === "h0")!.commandId;
    await eventually("h0's old build cancelled by a stop", async () => {
      const { commands } = await call(z.object({ commands: z.array(CommandView) }), "/api/hosts/h0/commands");
      const stopped = commands.find((c) => c.id === oldId)?.state === "cancelled";
      return stopped && commands.some((c) => c.kind === "stop" && c.target === oldId && c.state === "succeeded");
    });
    // The old head's status stays pending: no verdict is posted for a build a newer head replaced.
    expect((await fleetStatus(oldHead))?.state).toBe("pending");
    expect(oldHead).not.toBe(newHead);
  });

  it("a builder host builds all three hosts' systems into the cache with a signed manifest, each host's verdict is its result, and Merge & Deploy brings every host to done, hosts in substitute mode taking their health from its publication without evaluating", async () => {
    const system = nixSystemOf(process.platform, process.arch)!;
    const { settings } = await call(SettingsResponse, "/api/settings");
    await call(z.unknown(), "/api/settings", { method: "PUT", body: { ...settings, fleetBuild: { ...settings.fleetBuild, builders: [{ system, host: "h0" }] } } });
    const { token: cacheToken } = await call(z.object({ token: z.string() }), "/api/cache-token", { body: {} });
    const cacheTokenFile = path.join(root, "cache-token");
    await fs.writeFile(cacheTokenFile, cacheToken, { mode: 0o600 });

    // h0 becomes the builder; h1 and h2 switch by substitution, evaluating nothing, with a nix that records its runs.
    await killE2eAgents(hosts.values());
    const recorders = new Map<string, Awaited<ReturnType<typeof installNixRecorder>>>();
    for (const agent of hosts.values()) {
      const config = AgentConfig.parse(JSON.parse(await fs.readFile(agent.configFile, "utf8")));
      const changed =
        agent.name === "h0"
          ? { ...config, builder: { secretKeyFile: builderSecretKey, cacheTokenFile } }
          : { ...config, switch: "substitute" as const, substitute: { trustedKeys: [builderPublicKey], buildWithoutManifest: false }, desired: { ...config.desired, evaluate: "ci" as const } };
      await fs.writeFile(agent.configFile, JSON.stringify(changed));
      if (agent.name !== "h0") {
        const recorder = await installNixRecorder(path.join(agent.dir, "nix-recorder"));
        recorders.set(agent.name, recorder);
        agent.env = { ...agent.env, PATH: `${recorder.binDir}:${agent.env.PATH ?? ""}` };
      }
      restartE2eAgent(agent);
    }

    const { number, head } = await openUpdatePr({ "packages/hello.txt": "1.4 12\n" });
    const build = await verdictOf(number, head, "success");
    expect(build).toMatchObject({ built: 3, counted: 3, description: "3/3 hosts built" });
    expect(build.hosts.map((h) => [h.name, h.state, h.builtBy])).toEqual(HOSTS.map((name) => [name, "built", "h0"]));
    // One build command, on the builder, built every host's own system.
    expect(new Set(build.hosts.map((h) => h.commandId)).size).toBe(1);
    const { command } = await call(z.object({ command: CommandView }), `/api/commands/${build.hosts[0]!.commandId}`);
    expect(command).toMatchObject({ host: "h0", kind: "build", state: "succeeded" });
    const paths = Object.fromEntries(build.hosts.map((h) => [h.name, h.storePath!]));
    for (const name of HOSTS) expect(paths[name]).toMatch(new RegExp(`^/nix/store/\\w{32}-nixos-system-${name}$`));
    await statusOf(head, "success");

    // Merge & Deploy from the dashboard: the merge commit has no manifest or publication of its own, its tree is the
    // head's. h1 and h2 (evaluate = "ci") pass their health check from the systems h0 published for that tree.
    await emulator.setCheckRun(head, { name: "build", status: "completed", conclusion: "success" });
    await emulator.flushWebhooks();
    const { rollout, merged } = await call(z.object({ rollout: RolloutView, merged: z.object({ sha: z.string() }) }), `/api/update-prs/${number}/merge-and-deploy`, { body: {} });
    expect(merged.sha).not.toBe(head);
    const done = await eventually(`rollout ${rollout.id} to end`, async () => {
      const { rollout: view } = await call(z.object({ rollout: RolloutView }), `/api/rollouts/${rollout.id}`);
      return view.finishedAt ? view : null;
    });
    expect(done.state, JSON.stringify(done)).toBe("succeeded");
    expect(done.waves.flatMap((wave) => wave.hosts.map((h) => [h.name, h.state])).sort()).toEqual(HOSTS.map((name) => [name, "done"]));
    for (const name of ["h1", "h2"]) {
      const switched = done.waves.flatMap((wave) => wave.hosts).find((h) => h.name === name)!;
      const { command } = await call(z.object({ command: CommandView }), `/api/commands/${switched.commandId}`);
      expect(command, command.error ?? "").toMatchObject({ state: "succeeded", result: { commitAfter: merged.sha, systemAfter: paths[name] } });
      expect(await hosts.get(name)!.shim.currentSystem()).toBe(paths[name]);
      const runs = await recorders.get(name)!.runs();
      // The recorder is on the agent's PATH (its report asks nix for its version), and nothing evaluated or built.
      expect(runs.length).toBeGreaterThan(0);
      expect(runs.filter((args) => /(^| )(eval|build)( |$)/.test(args))).toEqual([]);
    }
  });
});
