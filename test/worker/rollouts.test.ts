// Rollouts driven through the real coordinator: waves, gates, failure, cancel,
// holds, soaks with the alarm, and an eviction mid-rollout that resumes exactly.
import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { ErrorBody, HostView, PollResponse, RolloutPlanView, RolloutView, SettingsResponse, type Report, type Settings } from "../../common/protocol.ts";
import { openDatabase } from "../../worker/db/client.ts";
import { RolloutStore } from "../../worker/db/coordinator/rollouts.ts";
import { saveRepoState } from "../../worker/db/github.ts";
import { eventually } from "../support/wait.ts";
import { deliver, pushToMain, REPOSITORY, resetGitHubTables } from "./github-helpers.ts";
import { agentFetch, api, createHost, pollBody, sampleReport } from "./helpers.ts";

const stub = () => env.COORDINATOR.getByName("fleet");
const sha = (n: number) => n.toString(16).padStart(2, "0").repeat(20);
const OLD = sha(0x0a);

interface Agent {
  name: string;
  token: string;
  session: string;
}

function report(name: string, commit: string, overrides: { canary?: boolean; priority?: number; autoUpdate?: boolean } = {}): Report {
  const system = `/nix/store/${commit.slice(0, 32)}-nixos-system-${name}`;
  return sampleReport({
    hostname: name,
    repo: { commit: { value: commit }, branch: { value: "main" }, dirty: false },
    system: { current: { value: system }, desired: { value: system }, builtFromCommit: commit },
    tests: { configured: false, autoRunAfterSwitch: false, last: null },
    rollout: { autoUpdate: overrides.autoUpdate ?? true, priority: overrides.priority ?? 100, canary: overrides.canary ?? false },
  });
}

/** Hosts created and reporting at once (their priorities, not their order of arrival, order the waves). */
async function fleet(prefix: string, count: number, canaryIndex = 0): Promise<Agent[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const name = `${prefix}-${i}`;
      const { token } = await createHost(name);
      const agent = { name, token, session: `session-${name}` };
      const res = await agentFetch(token, "/poll?wait=0", pollBody({ agentSession: agent.session, report: report(name, OLD, { canary: i === canaryIndex, priority: i }) }));
      expect(res.status).toBe(200);
      return agent;
    }),
  );
}

async function pollOnce(agent: Agent, extra: Parameters<typeof pollBody>[0] = {}) {
  const res = await agentFetch(agent.token, "/poll?wait=0", pollBody({ agentSession: agent.session, ...extra }));
  expect(res.status).toBe(200);
  return PollResponse.parse(await res.json());
}

/** The agent's side of a pull-switch: started, finished with `commitAfter`, then the report at that commit. */
async function runSwitch(agent: Agent, commit: string, outcome: "succeeded" | "failed" = "succeeded"): Promise<string> {
  const { commands } = await pollOnce(agent);
  const command = commands.find((c) => c.kind === "pull-switch");
  expect(command, `${agent.name} received no pull-switch`).toBeDefined();
  const events = (body: unknown) => agentFetch(agent.token, `/commands/${command!.id}/events`, body);
  expect((await events({ type: "started", at: new Date().toISOString() })).status).toBe(200);
  const finished = await events({
    type: "finished",
    at: new Date().toISOString(),
    outcome,
    exitCode: outcome === "succeeded" ? 0 : 1,
    error: outcome === "failed" ? "error: builder for '/nix/store/…-nixos-system' failed" : null,
    result: { commitBefore: OLD, commitAfter: outcome === "succeeded" ? commit : OLD },
  });
  expect(finished.status).toBe(200);
  if (outcome === "succeeded") await pollOnce(agent, { acks: [command!.id], report: report(agent.name, commit) });
  return command!.id;
}

async function rollout(id: string): Promise<RolloutView> {
  const res = await api(`/api/rollouts/${id}`);
  expect(res.status).toBe(200);
  return RolloutView.parse((await res.json<{ rollout: unknown }>()).rollout);
}

async function deploy(body: Record<string, unknown>): Promise<RolloutView> {
  const res = await api("/api/rollouts", { method: "POST", json: body });
  expect(res.status, await res.clone().text()).toBe(201);
  return RolloutView.parse((await res.json<{ rollout: unknown }>()).rollout);
}

const hostState = (view: RolloutView, name: string) => view.waves.flatMap((w) => w.hosts).find((h) => h.name === name)?.state;

describe("a rollout through the real coordinator", () => {
  it("plans canary first, then waves by priority, and leaves held hosts out with the reason", async () => {
    const agents = await fleet("plan", 5, 2);
    await api(`/api/hosts/plan-4/hold`, { method: "PUT", json: { reason: "disk replacement" } });
    const res = await api("/api/rollouts/plan", { method: "POST", json: { commit: sha(1), hosts: agents.map((a) => a.name) } });
    expect(res.status).toBe(200);
    const { plan } = RolloutPlanView.pick({}).extend({ plan: RolloutPlanView }).parse(await res.json());
    expect(plan.waves[0]).toMatchObject({ canary: true, hosts: ["plan-2"] });
    expect(plan.waves.slice(1).flatMap((w) => w.hosts)).toEqual(["plan-0", "plan-1", "plan-3"]);
    expect(plan.leftOut).toEqual([{ name: "plan-4", reason: expect.stringContaining("disk replacement") }]);
    const fleetView = await (await api("/api/hosts")).json<{ hosts: { name: string; hold: { reason: string } | null }[] }>();
    expect(fleetView.hosts.find((h) => h.name === "plan-4")?.hold?.reason).toBe("disk replacement");
  });

  it("deploys wave by wave: no host of wave 2 gets its command before wave 1 is verified; all green succeeds", async () => {
    const agents = await fleet("waves", 3);
    const commit = sha(2);
    let view = await deploy({ commit, hosts: agents.map((a) => a.name) });
    expect(view.state).toBe("running");
    expect(view.waves[0]!.canary).toBe(true);
    // Only the canary has a command.
    expect((await pollOnce(agents[1]!)).commands).toEqual([]);
    await runSwitch(agents[0]!, commit);
    view = await rollout(view.id);
    expect(hostState(view, "waves-0")).toBe("soaking");
    expect(view.state).toBe("soaking");
    // The canary soak ends by the alarm (moved to now), then the next wave starts.
    await runInDurableObject(stub(), (_instance, state) => {
      const row = state.storage.sql.exec("select body from rollouts where id = ?", view.id).one();
      const body = JSON.parse(String(row.body)) as { waves: { soakUntil: string | null }[]; wakeAt: string | null };
      const past = new Date(Date.now() - 1000).toISOString();
      for (const wave of body.waves) if (wave.soakUntil) wave.soakUntil = past;
      body.wakeAt = past;
      state.storage.sql.exec("update rollouts set body = ? where id = ?", JSON.stringify(body), view.id);
    });
    await runDurableObjectAlarm(stub());
    view = await rollout(view.id);
    expect(view.currentWave).toBe(2);
    for (const agent of agents.slice(1)) await runSwitch(agent, commit);
    view = await rollout(view.id);
    expect(view.state).toBe("succeeded");
    expect(view.done).toBe(3);
  });

  it("stops at the first failure: hosts not yet started never receive a command, and the failure names the host and its command", async () => {
    const agents = await fleet("fails", 4);
    const commit = sha(3);
    let view = await deploy({ commit, hosts: agents.map((a) => a.name) });
    const failing = await runSwitch(agents[0]!, commit, "failed");
    view = await rollout(view.id);
    expect(view.state).toBe("failed");
    expect(view.failure).toMatchObject({ host: "fails-0", commandId: failing });
    for (const agent of agents.slice(1)) {
      expect((await pollOnce(agent)).commands).toEqual([]);
      expect(hostState(view, agent.name)).toBe("skipped");
    }
  });

  it("a report that arrives before the agent's finished event still verifies the host", async () => {
    const [agent] = await fleet("report-first", 1);
    const commit = sha(11);
    const view = await deploy({ commit, hosts: [agent!.name] });
    const { commands } = await pollOnce(agent!);
    const id = commands[0]!.id;
    const events = (body: unknown) => agentFetch(agent!.token, `/commands/${id}/events`, body);
    await events({ type: "started", at: new Date().toISOString() });
    await pollOnce(agent!, { acks: [id], activeCommands: [id], report: report(agent!.name, commit) });
    await events({ type: "finished", at: new Date().toISOString(), outcome: "succeeded", exitCode: 0, result: { commitAfter: commit } });
    // Verified (a canary soaks next) once the earlier report is judged after the finished event.
    let after = await rollout(view.id);
    for (let i = 0; i < 50 && hostState(after, agent!.name) !== "soaking"; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      after = await rollout(view.id);
    }
    expect(hostState(after, agent!.name), JSON.stringify(after.waves)).toBe("soaking");
  });

  it("a finished event that carries the post-switch report (and the last output lines) verifies the host in that same request, before any poll", async () => {
    const [agent] = await fleet("end-report", 1);
    const commit = sha(12);
    const view = await deploy({ commit, hosts: [agent!.name] });
    const { commands } = await pollOnce(agent!);
    const id = commands[0]!.id;
    const events = (body: unknown) => agentFetch(agent!.token, `/commands/${id}/events`, body);
    await events({ type: "started", at: new Date().toISOString() });
    const finished = await events({
      type: "finished",
      at: new Date().toISOString(),
      outcome: "succeeded",
      exitCode: 0,
      result: { commitAfter: commit },
      output: [{ seq: 0, stream: "stdout", data: "running system is the rollout's\n" }],
      report: { agentSession: agent!.session, report: report(agent!.name, commit) },
    });
    expect(finished.status).toBe(200);
    // Read right after the answer: verified (a canary soaks next) without a poll or the outbox's re-check.
    expect(hostState(await rollout(view.id), agent!.name)).toBe("soaking");
    // The last lines that came with the end are the command's output.
    const output = await (await api(`/api/commands/${id}/output`)).json<{ chunks: { data: string }[] }>();
    expect(output.chunks.map((c) => c.data).join("")).toBe("running system is the rollout's\n");
  });

  it("after a switch confirmed by the host's safety net, the confirmation's report verifies the host with the finished event that follows it", async () => {
    const [agent] = await fleet("confirm-report", 1);
    const commit = sha(13);
    const view = await deploy({ commit, hosts: [agent!.name] });
    const { commands } = await pollOnce(agent!);
    const id = commands[0]!.id;
    const events = (body: unknown) => agentFetch(agent!.token, `/commands/${id}/events`, body);
    await events({ type: "started", at: new Date().toISOString() });
    const post = report(agent!.name, commit);
    const confirmed = await agentFetch(agent!.token, "/confirm", { protocol: post.protocol, agentSession: agent!.session, commandId: id, system: post.system.current.value, report: post });
    expect(confirmed.status).toBe(200);
    // Confirmed is not verified: the switch has not ended yet.
    expect(hostState(await rollout(view.id), agent!.name)).toBe("pulling");
    await events({ type: "finished", at: new Date().toISOString(), outcome: "succeeded", exitCode: 0, result: { commitAfter: commit } });
    expect(hostState(await rollout(view.id), agent!.name)).toBe("soaking");
  });

  it("leaves out a host whose safety net rolled back the commit's system, in the plan and in the rollout, and switches the others", async () => {
    const agents = await fleet("rejected", 3);
    const commit = sha(14);
    const rejecting = agents[0]!;
    const base = report(rejecting.name, OLD, { canary: true, priority: 0 });
    const rejected = { storePath: `/nix/store/${"r".repeat(32)}-nixos-system-${rejecting.name}`, commit, at: "2026-12-06T21:00:00.000Z" };
    await pollOnce(rejecting, { report: { ...base, safetyNet: { enabled: true, confirmTimeoutSeconds: 120, pending: null, lastRollback: null, rejected: [rejected] } } });
    const reason = `its safety net rolled nixos-system-${rejecting.name} (commit ${commit.slice(0, 7)}) back at ${rejected.at}: not sent again without force`;

    const planned = await api("/api/rollouts/plan", { method: "POST", json: { commit, hosts: agents.map((a) => a.name) } });
    const { plan } = RolloutPlanView.pick({}).extend({ plan: RolloutPlanView }).parse(await planned.json());
    // Hosts of the other tests are left out too, as not selected.
    const ours = (leftOut: { name: string; reason: string }[]) => leftOut.filter((l) => l.name.startsWith("rejected-"));
    expect(ours(plan.leftOut)).toEqual([{ name: rejecting.name, reason }]);
    expect(plan.waves.map((w) => w.hosts)).toEqual([["rejected-1"], ["rejected-2"]]);

    const view = await deploy({ commit, hosts: agents.map((a) => a.name) });
    expect(ours(view.leftOut)).toEqual([{ name: rejecting.name, reason }]);
    expect((await pollOnce(rejecting)).commands).toEqual([]);
    await runSwitch(agents[1]!, commit);
    expect(hostState(await rollout(view.id), "rejected-1")).toBe("soaking");
  });

  it("asks for the tests of a host whose agent does not run them, and judges the host once they end, even when the report came first", async () => {
    const { token } = await createHost("tested");
    const agent = { name: "tested", token, session: "session-tested" };
    const withTests = (commit: string, passedAt: string | null): Report => ({
      ...report("tested", commit),
      tests: {
        configured: true,
        autoRunAfterSwitch: false,
        last: passedAt === null ? null : { system: report("tested", commit).system.current.value, finishedAt: passedAt, results: [{ name: "ok", passed: true, exitCode: 0, durationMs: 1, output: "" }] },
      },
    });
    await pollOnce(agent, { report: withTests(OLD, null) });
    const commit = sha(12);
    const view = await deploy({ commit, hosts: ["tested"] });
    await runSwitch(agent, commit);
    const { commands } = await pollOnce(agent, { report: withTests(commit, null) });
    const test = commands.find((c) => c.kind === "test");
    expect(test, "the rollout asked for the tests").toBeDefined();
    const events = (body: unknown) => agentFetch(token, `/commands/${test!.id}/events`, body);
    await events({ type: "started", at: new Date().toISOString() });
    // The report with the passed run arrives while the test command still counts as running…
    await pollOnce(agent, { acks: [test!.id], activeCommands: [test!.id], report: withTests(commit, new Date().toISOString()) });
    // …and only then its finished event.
    await events({ type: "finished", at: new Date().toISOString(), outcome: "succeeded", exitCode: 0, result: {} });
    let after = await rollout(view.id);
    for (let i = 0; i < 50 && hostState(after, "tested") !== "soaking"; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      after = await rollout(view.id);
    }
    expect(hostState(after, "tested"), JSON.stringify(after.waves)).toBe("soaking");
  });

  it("a switch to another commit than the rollout's is a failure: exit code 0 is not proof", async () => {
    const [agent] = await fleet("wrong-commit", 1);
    const view = await deploy({ commit: sha(4), hosts: [agent!.name] });
    await runSwitch(agent!, sha(5));
    const after = await rollout(view.id);
    expect(after.state).toBe("failed");
    expect(after.failure?.reason).toContain("not the rollout's");
  });

  it("cancel: unstarted hosts are cancelled and their queued commands never delivered", async () => {
    const agents = await fleet("cancel", 2);
    const view = await deploy({ commit: sha(6), hosts: agents.map((a) => a.name) });
    const res = await api(`/api/rollouts/${view.id}/cancel`, { method: "POST" });
    expect(res.status).toBe(200);
    const after = await rollout(view.id);
    expect(after.state).toBe("cancelled");
    expect((await pollOnce(agents[0]!)).commands).toEqual([]);
    const again = await api(`/api/rollouts/${view.id}/cancel`, { method: "POST" });
    expect(again.status).toBe(409);
    expect(ErrorBody.parse(await again.json()).error.code).toBe("rollout_not_running");
  });

  it("20 simultaneous cancels of one rollout: one accepted, the rest 409, and its audit entries reach D1 through the outbox once each", async () => {
    const agents = await fleet("cancel-race", 2);
    const view = await deploy({ commit: sha(9), hosts: agents.map((a) => a.name) });
    const answers = await Promise.all(Array.from({ length: 20 }, () => api(`/api/rollouts/${view.id}/cancel`, { method: "POST" })));
    expect(answers.map((res) => res.status).sort()).toEqual([200, ...Array<number>(19).fill(409)]);
    for (const refused of answers.filter((res) => res.status === 409)) {
      expect(ErrorBody.parse(await refused.json()).error.code).toBe("rollout_not_running");
    }
    const outboxSize = () => runInDurableObject(stub(), (_instance, state) => Number(state.storage.sql.exec("SELECT count(*) AS n FROM outbox").one().n));
    await eventually("the outbox to empty", async () => (await outboxSize()) === 0);
    const audited = await env.DB.prepare("SELECT action, count(*) AS n FROM audit_log WHERE target = ? GROUP BY action ORDER BY action")
      .bind(view.id)
      .all<{ action: string; n: number }>();
    expect(audited.results).toEqual([
      { action: "rollout.cancel", n: 1 },
      { action: "rollout.cancelled", n: 1 },
      { action: "rollout.start", n: 1 },
      { action: "rollout.started", n: 1 },
    ]);
  });

  it("a newer rollout supersedes the running one", async () => {
    const agents = await fleet("supersede", 2);
    const first = await deploy({ commit: sha(7), hosts: agents.map((a) => a.name) });
    const second = await deploy({ commit: sha(8), hosts: agents.map((a) => a.name) });
    expect((await rollout(first.id)).stoppedBecause).toContain(second.id);
    const delivered = await pollOnce(agents[0]!);
    expect(delivered.commands).toHaveLength(1);
    expect((await rollout(second.id)).state).toBe("running");
  });

  it("an evicted coordinator resumes the rollout exactly: nothing sent twice, no wave skipped", async () => {
    const agents = await fleet("evict", 3);
    const commit = sha(9);
    const view = await deploy({ commit, hosts: agents.map((a) => a.name) });
    const canaryCommand = (await pollOnce(agents[0]!)).commands[0]!;
    await evictDurableObject(stub());
    // Redelivered (never acknowledged), not queued a second time.
    const again = (await pollOnce(agents[0]!)).commands;
    expect(again.map((c) => c.id)).toEqual([canaryCommand.id]);
    const after = await rollout(view.id);
    expect(after.currentWave).toBe(1);
    expect(hostState(after, "evict-1")).toBe("waiting");
    const history = await (await api("/api/hosts/evict-0/commands")).json<{ commands: { kind: string }[] }>();
    expect(history.commands.filter((c) => c.kind === "pull-switch")).toHaveLength(1);
  });

  it("a stored rollout read again unchanged is not parsed again, is handed out as a copy, is parsed anew once its row changes, and is read back as saved without a parse", async () => {
    const agents = await fleet("parsed", 2);
    const view = await deploy({ commit: sha(0x40), hosts: agents.map((a) => a.name) });
    await runInDurableObject(stub(), (_instance, state) => {
      const store = new RolloutStore(state.storage.sql);
      // Every unsettled rollout parsed once, this one among them.
      const unsettled = store.unsettledRollouts();
      expect(unsettled.map((stored) => stored.rollout.id)).toContain(view.id);
      expect(store.parses).toBe(unsettled.length);
      const first = store.rollout(view.id)!;
      first.rollout.commit = sha(0x41);
      first.context.deferred.push(agents[0]!.name);
      const again = store.rollout(view.id)!;
      expect(again.rollout.commit).toBe(sha(0x40));
      expect(again.context.deferred).toEqual([]);
      expect(store.unsettledRollouts().find((stored) => stored.rollout.id === view.id)).toEqual(again);
      expect(store.parses).toBe(unsettled.length);
      const body = String(state.storage.sql.exec("SELECT body FROM rollouts WHERE id = ?", view.id).one().body);
      state.storage.sql.exec("UPDATE rollouts SET body = json_set(body, '$.commit', ?) WHERE id = ?", sha(0x42), view.id);
      expect(store.rollout(view.id)!.rollout.commit).toBe(sha(0x42));
      expect(store.parses).toBe(unsettled.length + 1);
      state.storage.sql.exec("UPDATE rollouts SET body = ? WHERE id = ?", body, view.id);
      // A rollout saved is read back as saved, without a parse, a copy again, and equal to what a parse of its row gives.
      const saved = store.rollout(view.id)!;
      expect(store.parses).toBe(unsettled.length + 2);
      saved.context.deferred.push(agents[1]!.name);
      store.saveRollout(saved.rollout, saved.context, false);
      const read = store.rollout(view.id)!;
      expect(read.context.deferred).toEqual([agents[1]!.name]);
      expect(store.parses).toBe(unsettled.length + 2);
      read.context.deferred.push(agents[0]!.name);
      expect(store.rollout(view.id)!.context.deferred).toEqual([agents[1]!.name]);
      expect(new RolloutStore(state.storage.sql).rollout(view.id)).toEqual(store.rollout(view.id));
      saved.context.deferred = [];
      store.saveRollout(saved.rollout, saved.context, false);
    });
    await api(`/api/rollouts/${view.id}/cancel`, { method: "POST", json: {} });
  });

  it("lists rollouts newest first and pages with before", async () => {
    const res = await api("/api/rollouts?limit=2");
    expect(res.status).toBe(200);
    const { rollouts } = await res.json<{ rollouts: RolloutView[] }>();
    expect(rollouts).toHaveLength(2);
    const next = await (await api(`/api/rollouts?limit=2&before=${rollouts[1]!.id}`)).json<{ rollouts: RolloutView[] }>();
    expect(next.rollouts[0]!.startedAt <= rollouts[1]!.startedAt).toBe(true);
    expect(next.rollouts.map((r) => r.id)).not.toContain(rollouts[1]!.id);
  });

  it("refuses a deploy with no host in scope, and a bad hold, with clear errors", async () => {
    const res = await api("/api/rollouts", { method: "POST", json: { commit: sha(10), hosts: ["no-such-host"] } });
    expect(res.status).toBe(409);
    expect(ErrorBody.parse(await res.json()).error.code).toBe("nothing_to_deploy");
    const hold = await api("/api/hosts/no-such-host/hold", { method: "PUT", json: { reason: "x" } });
    expect(hold.status).toBe(404);
    const empty = await api("/api/hosts/plan-0/hold", { method: "PUT", json: { reason: " " } });
    expect(empty.status).toBe(400);
  });
});

describe("a wave's ends judged at once, against the fleet's target as GitHub last set it", () => {
  let before: Settings;
  const saveSettings = async (settings: Settings) => {
    const res = await api("/api/settings", { method: "PUT", json: settings });
    expect(res.status, await res.clone().text()).toBe(200);
  };
  const fleetTargetReads = async () => z.object({ counters: z.object({ fleetTargetReads: z.number() }) }).parse(await (await api("/api/stats")).json()).counters.fleetTargetReads;
  const judgements = async () => z.object({ counters: z.object({ hostJudgements: z.number(), rechecksMoot: z.number() }) }).parse(await (await api("/api/stats")).json()).counters;
  /** Re-checks after a command's end still waiting in the coordinator's outbox. */
  const pendingRechecks = () => runInDurableObject(stub(), (_instance, state) => Number(state.storage.sql.exec("SELECT count(*) AS n FROM outbox WHERE key LIKE 'health:%'").one().n));

  beforeAll(async () => {
    before = SettingsResponse.parse(await (await api("/api/settings")).json()).settings;
    // One wave of ten, no canary: the wave's ends are the rollout's.
    await saveSettings({ ...before, rollout: { ...before.rollout, canary: 0, waveSize: 10 } });
  });
  afterAll(async () => {
    await resetGitHubTables();
    await stub().notify({ type: "repo" });
    await saveSettings({ ...SettingsResponse.parse(await (await api("/api/settings")).json()).settings, rollout: before.rollout });
  });

  it("ten hosts of a wave ending at the same moment are each judged once, by their ends (the re-checks the ends leave find them judged), the fleet's target read from D1 once for all ten", async () => {
    const agents = await fleet("burst", 10, -1);
    const commit = sha(0x30);
    const view = await deploy({ commit, hosts: agents.map((a) => a.name) });
    expect(view.waves.map((w) => w.hosts.length)).toEqual([10]);
    const ids = await Promise.all(
      agents.map(async (agent) => {
        const id = (await pollOnce(agent)).commands.find((c) => c.kind === "pull-switch")!.id;
        expect((await agentFetch(agent.token, `/commands/${id}/events`, { type: "started", at: new Date().toISOString() })).status).toBe(200);
        return id;
      }),
    );
    // Half of them confirm through the safety net (their end carries no report), half send the report with the end.
    const confirming = agents.slice(0, 5);
    const confirmed = await Promise.all(
      confirming.map((agent, i) => {
        const post = report(agent.name, commit);
        return agentFetch(agent.token, "/confirm", { protocol: post.protocol, agentSession: agent.session, commandId: ids[i], system: post.system.current.value, report: post });
      }),
    );
    expect(confirmed.map((res) => res.status)).toEqual(confirming.map(() => 200));
    // GitHub's state changed: the coordinator's copy is dropped, so the ten ends below need one read.
    await stub().notify({ type: "repo" });
    const readsBefore = await fleetTargetReads();
    // Nothing else re-judged meanwhile: the earlier tests' re-checks are carried out.
    await eventually("the earlier re-checks carried out", async () => (await pendingRechecks()) === 0);
    const judgedBefore = await judgements();
    const ends = await Promise.all(
      agents.map((agent, i) =>
        agentFetch(agent.token, `/commands/${ids[i]}/events`, {
          type: "finished",
          at: new Date().toISOString(),
          outcome: "succeeded",
          exitCode: 0,
          result: { commitBefore: OLD, commitAfter: commit },
          ...(i < confirming.length ? {} : { report: { agentSession: agent.session, report: report(agent.name, commit) } }),
        }),
      ),
    );
    expect(ends.map((res) => res.status)).toEqual(agents.map(() => 200));
    // Read right after the answers: every host verified by its end, no poll in between.
    const after = await rollout(view.id);
    expect(after.waves[0]!.hosts.map((h) => [h.name, h.state])).toEqual(agents.map((a) => [a.name, "done"]));
    expect(after.state).toBe("succeeded");
    expect(await fleetTargetReads()).toBe(readsBefore + 1);
    // The reports judged before D1 stored them are D1's by the time the ends were answered.
    const { hosts } = z.object({ hosts: z.array(HostView.pick({ name: true, report: true })) }).parse(await (await api("/api/hosts")).json());
    const burst = hosts.filter((h) => h.name.startsWith("burst-"));
    expect(burst.map((h) => [h.name, h.report?.repo.commit.value])).toEqual(agents.map((a) => [a.name, commit]));
    // One verdict per end: each end wrote its host's durable re-check, which, carried after the verdict, finds it judged and judges nothing again.
    await eventually("the ends' re-checks carried out", async () => (await pendingRechecks()) === 0);
    const judgedAfter = await judgements();
    expect(judgedAfter.rechecksMoot - judgedBefore.rechecksMoot).toBe(agents.length);
    expect(judgedAfter.hostJudgements - judgedBefore.hostJudgements).toBe(agents.length);
  });

  it("a verdict after a push to main uses the new head: the copy of the target the coordinator held is dropped by the webhook", async () => {
    const earlier = sha(0x31);
    const head = sha(0x32);
    const prHead = sha(0x33);
    const tree = sha(0x34);
    await resetGitHubTables();
    await saveRepoState(openDatabase(env.DB), {
      repository: REPOSITORY,
      branch: "main",
      head: { sha: earlier, message: "earlier", author: "Codertocat", committedAt: "2019-05-15T15:00:00Z", tree: sha(0x35) },
      lockHash: "c".repeat(64),
      lockLastModified: { nixpkgs: 1_702_234_567 },
      lockProblem: null,
      updatedAt: "2019-05-15T15:00:00.000Z",
      source: "schedule",
    });
    await stub().notify({ type: "repo" });
    // The host's first report is judged against `earlier`: the coordinator now holds that copy.
    const readsBefore = await fleetTargetReads();
    const [agent] = await fleet("new-head", 1, -1);
    expect(await fleetTargetReads()).toBe(readsBefore + 1);
    const view = await deploy({ commit: head, hosts: [agent!.name] });
    const { response } = await deliver("push", pushToMain(earlier, head, tree));
    expect(response.status).toBe(200);

    const id = (await pollOnce(agent!)).commands.find((c) => c.kind === "pull-switch")!.id;
    const events = (body: unknown) => agentFetch(agent!.token, `/commands/${id}/events`, body);
    expect((await events({ type: "started", at: new Date().toISOString() })).status).toBe(200);
    // The host evaluated the update PR's head, whose tree main's new head has: the same system, so System is
    // green at the new head. Against the copy of `earlier` the tree is not main's and System would stay gray.
    const post = report(agent!.name, head);
    const desired: Report["desired"] = {
      source: "local",
      latest: { commit: prHead, tree, evaluatedAt: new Date().toISOString(), outPath: post.system.current.value!, changes: null },
      evaluating: null,
    };
    const finished = await events({
      type: "finished",
      at: new Date().toISOString(),
      outcome: "succeeded",
      exitCode: 0,
      result: { commitBefore: OLD, commitAfter: head },
      report: { agentSession: agent!.session, report: { ...post, desired } },
    });
    expect(finished.status).toBe(200);
    const after = await rollout(view.id);
    expect(hostState(after, agent!.name), JSON.stringify(after.waves)).toBe("done");
    expect(after.state).toBe("succeeded");
  });
});
