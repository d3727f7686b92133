/**
 * A rollout skips what its commit does not change: hosts whose desired system at the commit is the one
 * they run get a `pull` only (no switch), are listed unchanged, and take no wave slot; the canary is the
 * first host the commit changes.
 */
import { describe, expect, it } from "vitest";
import { PollResponse, RolloutPlanView, RolloutView, type DesiredReport, type Report } from "../../common/protocol.ts";
import { agentFetch, api, createHost, pollBody, sampleReport } from "./helpers.ts";

const sha = (n: number) => n.toString(16).padStart(2, "0").repeat(20);
const OLD = sha(0x0b);
const storePath = (name: string, generation: string) => `/nix/store/${generation.repeat(32).slice(0, 32)}-nixos-system-${name}`;

interface Agent {
  name: string;
  token: string;
  session: string;
}

/** A report at OLD, running generation `a`, with the host's desired system at `commit` (generation `desiredGeneration`). */
function report(name: string, commit: string, desiredGeneration: string, priority: number, clone = OLD): Report {
  const running = storePath(name, clone === OLD ? "a" : desiredGeneration);
  const desired: DesiredReport = {
    source: "local",
    latest: { commit, tree: null, evaluatedAt: new Date().toISOString(), outPath: storePath(name, desiredGeneration), changes: null },
    evaluating: null,
  };
  return sampleReport({
    hostname: name,
    repo: { commit: { value: clone }, branch: { value: "main" }, dirty: false },
    system: { current: { value: running }, builtFromCommit: clone },
    tests: { configured: false, autoRunAfterSwitch: false, last: null },
    rollout: { autoUpdate: true, priority, canary: false },
    desired,
  });
}

async function pollOnce(agent: Agent, extra: Parameters<typeof pollBody>[0] = {}) {
  const res = await agentFetch(agent.token, "/poll?wait=0", pollBody({ agentSession: agent.session, ...extra }));
  expect(res.status).toBe(200);
  return PollResponse.parse(await res.json());
}

/** Hosts at OLD whose desired system at `commit` is generation `b` (changed) or `a`, what they run (unchanged). */
async function fleet(prefix: string, commit: string, generations: string[]): Promise<Agent[]> {
  const agents: Agent[] = [];
  for (const [i, generation] of generations.entries()) {
    const name = `${prefix}-${i}`;
    const { token } = await createHost(name);
    const agent = { name, token, session: `session-${name}` };
    await pollOnce(agent, { report: report(name, commit, generation, i) });
    agents.push(agent);
  }
  return agents;
}

async function deploy(body: Record<string, unknown>): Promise<RolloutView> {
  const res = await api("/api/rollouts", { method: "POST", json: body });
  expect(res.status, await res.clone().text()).toBe(201);
  return RolloutView.parse((await res.json<{ rollout: unknown }>()).rollout);
}

async function rollout(id: string): Promise<RolloutView> {
  const res = await api(`/api/rollouts/${id}`);
  expect(res.status).toBe(200);
  return RolloutView.parse((await res.json<{ rollout: unknown }>()).rollout);
}

describe("a rollout over hosts its commit does not change", () => {
  it("plans the changed host as the canary and lists the other two as unchanged", async () => {
    const commit = sha(0x21);
    // Priority order: plan-0 (unchanged) first, so the canary by priority would be it.
    const agents = await fleet("plan", commit, ["a", "b", "a"]);
    const res = await api("/api/rollouts/plan", { method: "POST", json: { commit, hosts: agents.map((a) => a.name) } });
    expect(res.status).toBe(200);
    const { plan } = RolloutPlanView.pick({}).extend({ plan: RolloutPlanView }).parse(await res.json());
    expect(plan.waves).toEqual([{ index: 1, canary: true, hosts: ["plan-1"] }]);
    expect(plan.unchanged).toEqual(["plan-0", "plan-2"]);
  });

  it("switches the one changed host and only pulls the two unchanged ones, which take no wave slot", async () => {
    const commit = sha(0x22);
    const agents = await fleet("skip", commit, ["a", "b", "a"]);
    let view = await deploy({ commit, hosts: agents.map((a) => a.name) });
    expect(view.unchanged).toEqual(["skip-0", "skip-2"]);
    expect(view.total).toBe(1);
    expect(view.waves.map((w) => w.hosts.map((h) => h.name))).toEqual([["skip-1"]]);

    const pulls = new Map<Agent, string>();
    for (const agent of [agents[0]!, agents[2]!]) {
      const { commands } = await pollOnce(agent);
      expect(commands.map((c) => ({ kind: c.kind, commit: c.commit }))).toEqual([{ kind: "pull", commit }]);
      pulls.set(agent, commands[0]!.id);
    }
    const changed = agents[1]!;
    const { commands } = await pollOnce(changed);
    expect(commands.map((c) => c.kind)).toEqual(["pull-switch"]);
    const command = commands[0]!;
    const events = (body: unknown) => agentFetch(changed.token, `/commands/${command.id}/events`, body);
    expect((await events({ type: "started", at: new Date().toISOString() })).status).toBe(200);
    const finished = await events({ type: "finished", at: new Date().toISOString(), outcome: "succeeded", exitCode: 0, error: null, result: { commitBefore: OLD, commitAfter: commit } });
    expect(finished.status).toBe(200);
    // The report right after the switch: running the desired system of the rollout's commit.
    await pollOnce(changed, { acks: [command.id], report: report(changed.name, commit, "b", 1, commit) });
    view = await rollout(view.id);
    expect(view.waves[0]!.hosts[0]!.state).toMatch(/^(soaking|done)$/);
    expect(view.done).toBe(1);
    // The unchanged hosts were never sent a switch.
    for (const [agent, pull] of pulls) expect((await pollOnce(agent, { acks: [pull], activeCommands: [pull] })).commands).toEqual([]);
  });

  it("pulls every host and succeeds at once when the commit changes none of them", async () => {
    const commit = sha(0x23);
    const agents = await fleet("none", commit, ["a", "a"]);
    const view = await deploy({ commit, hosts: agents.map((a) => a.name) });
    expect(view.unchanged).toEqual(["none-0", "none-1"]);
    expect(view.total).toBe(0);
    expect(view.state).toBe("succeeded");
    for (const agent of agents) expect((await pollOnce(agent)).commands.map((c) => c.kind)).toEqual(["pull"]);
  });
});
