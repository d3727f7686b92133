/**
 * The host's safety net end to end: the control plane on workerd (wrangler dev), a real agent process
 * (`bin/nixfleet-agent.js run`) with real Nix and the nixos-rebuild shim, reaching the control plane
 * through a TCP proxy that refuses new connections from the moment of the activation while the open
 * ones go on. The watchdog is the agent package's own `watchdog` process, from its own bundle.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { z } from "zod";
import { CommandView, HostView, RolloutPlanView, RolloutView } from "../../common/protocol.ts";
import { shortSha } from "../../common/text.ts";
import { createFleetRepo, type FleetRepo } from "../../tools/fleet-kit/fleet-repo.ts";
import { isolatedHostEnv } from "../../tools/fleet-kit/host-env.ts";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import { adminApi } from "../support/admin-api.ts";
import { startControlPlane, type ControlPlane } from "../support/control-plane.ts";
import { killE2eAgents, restartE2eAgent, spawnE2eAgent, tailOfLogs, type E2eAgent } from "../support/e2e-agent.ts";
import { hostAndPort, startTcpProxy, type TcpProxy } from "../support/tcp-proxy.ts";
import { eventuallyWith } from "../support/wait.ts";
import { removeHostRoot } from "../support/host-root.ts";

vi.setConfig({ testTimeout: 120_000, hookTimeout: 180_000 });

const HOST = "edge";
/** The second wave of the rollout test: reaches the control plane directly. */
const HOST2 = "edge2";
const POLL_SECONDS = 5;
const CONFIRM_TIMEOUT_SECONDS = 5;
const AGENT_BIN = fileURLToPath(new URL("../../bin/nixfleet-agent.js", import.meta.url));

let root: string;
let cp: ControlPlane;
let fleet: FleetRepo;
let proxy: TcpProxy;
let agent: E2eAgent;
let second: E2eAgent | undefined;

const admin = adminApi(() => cp.url);
const eventually = eventuallyWith({ timeoutMs: 60_000, intervalMs: 100, details: () => tailOfLogs(second ? [agent, second] : [agent], 40) });

const hostView = () => admin(HostView, `/api/hosts/${HOST}`);
const command = async (id: string) => (await admin(z.object({ command: CommandView }), `/api/commands/${id}`)).command;
const queue = async (kind: string, extra: Record<string, unknown> = {}) =>
  (await admin(z.object({ command: CommandView }), `/api/hosts/${HOST}/commands`, { body: { kind, ...extra } })).command;
const finalState = (id: string) =>
  eventually(`command ${id} to end`, async () => {
    const view = await command(id);
    return view.finishedAt !== null ? view : null;
  });
const safetyNetFile = (id: string, name: string) => path.join(agent.dir, "state", "safety-net", id, name);
const readJson = async (file: string): Promise<unknown> => JSON.parse(await fs.readFile(file, "utf8")) as unknown;

/** Commits a new generation of the host's system; returns its store path and commit. */
async function nextGeneration(label: string): Promise<{ system: string; commit: string }> {
  const commit = await fleet.setHost(HOST, `${HOST} ${label}`);
  return { system: await fleet.systemPath(HOST), commit };
}

/** The host back on `system` within the confirmation timeout + 10 s of the activation. */
async function backOn(system: string, activatedAt: number): Promise<number> {
  await eventually(`the host back on ${system}`, async () => (await agent.shim.currentSystem()) === system, {
    timeoutMs: (CONFIRM_TIMEOUT_SECONDS + 10) * 1000,
    intervalMs: 50,
  });
  return Date.now() - activatedAt;
}

describeWithNix("the host's safety net against the real control plane, cut off by a proxy", () => {
  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-safety-net-"));
    [cp, fleet] = await Promise.all([
      startControlPlane({ vars: { POLL_TIMEOUT_SECONDS: String(POLL_SECONDS) } }),
      createFleetRepo({ root: path.join(root, "fleet"), hosts: [HOST, HOST2], env: isolatedHostEnv(path.join(root, "fleet-env")) }),
    ]);
    proxy = await startTcpProxy(hostAndPort(cp.url));
    const { token } = await admin(z.object({ token: z.string() }), "/api/hosts", { body: { name: HOST, platform: "nixos" } });
    agent = await spawnE2eAgent({
      dir: path.join(root, HOST),
      name: HOST,
      token,
      url: proxy.url,
      repoUrl: fleet.origin,
      branch: fleet.branch,
      pollTimeoutSeconds: POLL_SECONDS,
      safetyNet: { confirmTimeoutSeconds: CONFIRM_TIMEOUT_SECONDS },
      logLevel: "debug",
    });
    // The first switch has no previous system to go back to.
    const first = await finalState((await queue("pull-switch")).id);
    expect(first.state, first.error ?? "").toBe("succeeded");
  }, 180_000);

  afterAll(async () => {
    if (agent) await killE2eAgents(second ? [agent, second] : [agent]);
    await proxy?.close();
    await cp?.stop();
    if (root) await removeHostRoot(root);
  });

  it("with the proxy open, the new agent confirms, the control plane records it, and nothing is rolled back", async () => {
    const gen = await nextGeneration("generation 2");
    const done = await finalState((await queue("pull-switch")).id);
    expect(done.state, done.error ?? "").toBe("succeeded");
    expect(done.result?.systemAfter).toBe(gen.system);
    expect(await readJson(safetyNetFile(done.id, "decision.json"))).toMatchObject({ decision: "confirmed", by: "agent" });
    await eventually("the watchdog to end", () => fs.readFile(safetyNetFile(done.id, "watchdog.exit"), "utf8"));
    expect(await agent.shim.currentSystem()).toBe(gen.system);
    const { entries } = await admin(z.object({ entries: z.array(z.object({ action: z.string(), actor: z.string(), details: z.unknown() })) }), "/api/audit");
    expect(entries).toContainEqual(expect.objectContaining({ action: "command.confirm", actor: `host ${HOST}`, details: { commandId: done.id, system: gen.system } }));
  });

  it("cut off at the activation: back on the recorded previous system within the timeout + 10 s; once the proxy reopens the command ends failed saying so, and the control plane refuses that commit again without force", async () => {
    const previous = await agent.shim.currentSystem();
    const gen = await nextGeneration("generation 3");
    const activated = agent.shim.activated(gen.system).then((at) => {
      proxy.refuseNew();
      return at;
    });
    const queued = await queue("pull-switch", { commit: gen.commit });
    const tookMs = await backOn(String(previous), await activated);
    expect(tookMs).toBeGreaterThanOrEqual(CONFIRM_TIMEOUT_SECONDS * 1000);
    expect(proxy.counts().refused).toBeGreaterThan(0);

    proxy.reopen();
    const done = await finalState(queued.id);
    expect(done.state).toBe("failed");
    expect(done.host).toBe(HOST);
    expect(done.error).toBe(`rolled back on the host: no confirmation within ${CONFIRM_TIMEOUT_SECONDS} s after switching to ${shortSha(gen.commit)}`);
    expect(done.result?.hostRollback).toMatchObject({ from: gen.system, to: previous, commit: gen.commit, outcome: "rolled-back" });
    const output = (await admin(z.object({ chunks: z.array(z.object({ data: z.string() })) }), `/api/commands/${queued.id}/output`)).chunks.map((c) => c.data).join("");
    expect(output).toContain(`safety net: recorded the previous system ${previous}`);
    expect(output).toMatch(/watchdog: \S+ no confirmation within 5 s after switching to [0-9a-f]{7}: activating the recorded previous system/);

    const view = await eventually("a report with the rollback", async () => {
      const current = await hostView();
      return current.report?.safetyNet?.lastRollback?.from === gen.system ? current : null;
    });
    expect(view.report?.safetyNet?.rejected).toEqual([expect.objectContaining({ storePath: gen.system, commit: gen.commit })]);
    expect(view.report?.system.current.value).toBe(previous);
    const { entries } = await admin(z.object({ entries: z.array(z.object({ action: z.string(), target: z.string().nullable(), details: z.unknown() })) }), "/api/audit");
    expect(entries).toContainEqual(expect.objectContaining({ action: "host.rolled-back", target: HOST, details: expect.objectContaining({ commandId: queued.id, from: gen.system, to: previous }) }));

    // That commit is not sent to this host again unless forced.
    const refused = await fetch(`${cp.url}/api/hosts/${HOST}/commands`, {
      method: "POST",
      headers: { origin: cp.url, "content-type": "application/json" },
      body: JSON.stringify({ kind: "pull-switch", commit: gen.commit }),
    });
    expect(refused.status).toBe(409);
    const body = z.object({ error: z.object({ code: z.string(), message: z.string() }) }).parse(await refused.json());
    expect(body.error.code).toBe("system_rolled_back");
    expect(body.error.message).toContain(`(commit ${shortSha(gen.commit)})`);
    expect(body.error.message).toContain('"force": true');
    const forced = await queue("pull-switch", { commit: gen.commit, force: true });
    const forcedDone = await finalState(forced.id);
    expect(forcedDone.state, forcedDone.error ?? "").toBe("succeeded");
    expect(await agent.shim.currentSystem()).toBe(gen.system);
  });

  it("a new generation whose agent cannot start at all is rolled back by the watchdog; the agent that starts next reports it", async () => {
    const previous = await agent.shim.currentSystem();
    const gen = await nextGeneration("generation 4");
    const activated = agent.shim.activated(gen.system).then(async (at) => {
      proxy.refuseNew();
      // The activation restarts the agent's unit: the old process goes…
      await killE2eAgents([agent]);
      return at;
    });
    const queued = await queue("pull-switch");
    const activatedAt = await activated;
    // …and the new generation's agent exits at start: its token file moved.
    const broken = path.join(agent.dir, "broken-agent.json");
    const config = z.record(z.string(), z.unknown()).parse(await readJson(agent.configFile));
    await fs.writeFile(broken, JSON.stringify({ ...config, tokenFile: path.join(agent.dir, "moved-token") }));
    const exited = await new Promise<number | null>((resolve) => {
      spawn(process.execPath, [AGENT_BIN, "run", "--config", broken], { env: agent.env, stdio: "ignore" }).once("exit", resolve);
    });
    expect(exited).toBe(78);
    await backOn(String(previous), activatedAt);

    proxy.reopen();
    restartE2eAgent(agent);
    const done = await finalState(queued.id);
    expect(done.state).toBe("failed");
    expect(done.error).toBe(`rolled back on the host: no confirmation within ${CONFIRM_TIMEOUT_SECONDS} s after switching to ${shortSha(gen.commit)}`);
    expect(await readJson(safetyNetFile(queued.id, "decision.json"))).toMatchObject({ decision: "rollback", by: "watchdog" });
  });

  it("the agent and its watchdog killed right after the activation: the agent restarted past the deadline rolls back at start", async () => {
    const previous = await agent.shim.currentSystem();
    const gen = await nextGeneration("generation 5");
    const activated = agent.shim.activated(gen.system).then(async () => {
      proxy.refuseNew();
      await killE2eAgents([agent]);
    });
    const queued = await queue("pull-switch");
    await activated;
    const handle = z.object({ mode: z.literal("process-group"), pgid: z.number() }).parse(await readJson(safetyNetFile(queued.id, "watchdog.json")));
    // The agent ran from its bundle (bin/nixfleet-agent.js imports it): the watchdog from the smaller bundle beside it.
    expect((await fs.readFile(`/proc/${handle.pgid}/cmdline`, "utf8")).split("\0")).toContain(fileURLToPath(new URL("../../dist/agent/nixfleet-watchdog.mjs", import.meta.url)));
    process.kill(-handle.pgid, "SIGKILL");
    const exitFile = path.join(agent.dir, "state", "jobs", queued.id, "exit");
    const endedAt = await eventually("the switch job to end", () => fs.stat(exitFile).then((stat) => stat.mtimeMs));
    await eventually("the deadline to pass", () => Date.now() > endedAt + CONFIRM_TIMEOUT_SECONDS * 1000 + 500);
    expect(await agent.shim.currentSystem()).toBe(gen.system);

    proxy.reopen();
    restartE2eAgent(agent);
    const done = await finalState(queued.id);
    expect(await agent.shim.currentSystem()).toBe(previous);
    expect(done.state).toBe("failed");
    expect(done.error).toBe(`rolled back on the host: no confirmation within ${CONFIRM_TIMEOUT_SECONDS} s after switching to ${shortSha(gen.commit)}`);
    expect(await readJson(safetyNetFile(queued.id, "decision.json"))).toMatchObject({ decision: "rollback", by: "agent" });
  });

  it("a rollout of two waves whose first host is cut off at the activation: once the proxy reopens the report says so, the rollout ends failed naming the host, the second wave never starts, and a new plan of that commit leaves the host out", async () => {
    const { token } = await admin(z.object({ token: z.string() }), "/api/hosts", { body: { name: HOST2, platform: "nixos" } });
    // Priority 200: after edge (100), which is the canary, alone in wave 1.
    second = await spawnE2eAgent({ dir: path.join(root, HOST2), name: HOST2, token, url: cp.url, repoUrl: fleet.origin, branch: fleet.branch, pollTimeoutSeconds: POLL_SECONDS, priority: 200 });
    await eventually(`${HOST2}'s first report`, async () => (await admin(HostView, `/api/hosts/${HOST2}`)).report !== null);
    const previous = await agent.shim.currentSystem();
    await fleet.setHost(HOST2, `${HOST2} generation 2`);
    const gen = await nextGeneration("generation 6");
    const activated = agent.shim.activated(gen.system).then((at) => {
      proxy.refuseNew();
      return at;
    });
    const { rollout } = await admin(z.object({ rollout: RolloutView }), "/api/rollouts", { body: { commit: gen.commit, hosts: [HOST, HOST2] } });
    expect(rollout.waves.map((wave) => wave.hosts.map((h) => h.name))).toEqual([[HOST], [HOST2]]);
    await backOn(String(previous), await activated);

    proxy.reopen();
    const ended = await eventually("the rollout to end", async () => {
      const view = (await admin(z.object({ rollout: RolloutView }), `/api/rollouts/${rollout.id}`)).rollout;
      return view.finishedAt !== undefined ? view : null;
    });
    expect(ended.state).toBe("failed");
    expect(ended.failure).toMatchObject({ host: HOST, reason: expect.stringContaining(`rolled back on the host: no confirmation within ${CONFIRM_TIMEOUT_SECONDS} s after switching to ${shortSha(gen.commit)}`) });
    expect(ended.waves[1]?.hosts).toEqual([expect.objectContaining({ name: HOST2, state: "skipped" })]);
    const sent = (await admin(z.object({ commands: z.array(CommandView) }), `/api/hosts/${HOST2}/commands`)).commands;
    expect(sent.filter((c) => c.actor === `rollout ${rollout.id}`)).toEqual([]);
    const view = await hostView();
    expect(view.report?.safetyNet?.lastRollback).toMatchObject({ from: gen.system, to: previous, commit: gen.commit, outcome: "rolled-back" });

    // The control plane does not send the rejected system again: the next rollout of that commit leaves edge out.
    const { plan } = await admin(z.object({ plan: RolloutPlanView }), "/api/rollouts/plan", { body: { commit: gen.commit, hosts: [HOST, HOST2] } });
    expect(plan.leftOut).toEqual([{ name: HOST, reason: expect.stringContaining(`(commit ${shortSha(gen.commit)}) back at`) }]);
    expect(plan.waves.map((wave) => wave.hosts)).toEqual([[HOST2]]);
  });
});
