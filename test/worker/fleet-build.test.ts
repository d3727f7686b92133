/**
 * Fleet builds through the real coordinator and real local D1, with the local GitHub emulator as
 * GitHub (the `automation` project): an update PR's webhook starts a build on every host, the
 * agents' command events move each host and the verdict, the commit status reaches the emulator
 * through the coordinator's own client, a new head supersedes the old build under concurrent
 * deliveries, a redelivered webhook restarts nothing, a closed PR cancels, the re-run route, our own
 * status kept out of CI, and a failed build leaving its host out of the rollout plan.
 *
 * The webhooks are GitHub's example payloads pointed at heads that are real commits on the
 * emulator (each on a branch of its own): no pull request is opened there, so the automation
 * tests sharing the emulator see no extra update PR.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { CommandView, FleetBuildView, PollResponse, RolloutPlanView, SettingsResponse, type CommandDelivery, type CommandResult, type Settings } from "../../common/protocol.ts";
import { FLEET_BUILD_CONTEXT } from "../../worker/fleet-build/rules.ts";
import type { Coordinator } from "../../worker/objects/coordinator.ts";
import { openDatabase } from "../../worker/db/client.ts";
import { saveRepoState } from "../../worker/db/github.ts";
import { deliver, errorOf, example, getUpdatePrs, ours, pullRequest, REPOSITORY, set } from "./github-helpers.ts";
import { agentFetch, api, createHost, pollBody, sampleReport } from "./helpers.ts";

const stub = () => env.COORDINATOR.getByName("fleet");
const API = env.GITHUB_API_URL!;

async function emulator(path: string, init: { method?: string; body?: unknown } = {}): Promise<Response> {
  const method = init.method ?? (init.body === undefined ? "GET" : "POST");
  const res = await fetch(`${API}${path}`, {
    method,
    headers: { "content-type": "application/json", authorization: `token ${env.GITHUB_TOKEN}` },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res;
}

/** This file's branch on the emulator: each head is one more commit on it. */
const BRANCH = `fleet-build-test/${crypto.randomUUID().slice(0, 8)}`;

/** A new commit on the emulator: a head GitHub knows, so statuses can be posted on it. */
async function headOnGitHub(label: string): Promise<string> {
  const branch = BRANCH;
  const res = await emulator("/_emulator/push", { body: { branch, files: { "fleet-build-test.txt": `${label}\n` }, message: `fleet build test ${label}` } });
  return z.object({ sha: z.string() }).parse(await res.json()).sha;
}

const EmulatorStatus = z.object({
  state: z.string(),
  context: z.string(),
  description: z.string().nullable(),
  target_url: z.string().nullable(),
  creator: z.object({ login: z.string() }),
});

/**
 * Waits for a status post's effect (on the emulator, or its outcome on the build) to pass `check`: a post leaves the coordinator after its
 * step (waitUntil) and the emulator answers it after a few git commands, slower than vi.waitFor's 1 s
 * default on a loaded machine.
 */
const onGitHub = (check: () => Promise<void>) => vi.waitFor(check, { timeout: 30_000, interval: 100 });

/** The commit statuses GitHub holds on a head, oldest first (the API lists them newest first). */
async function statusesOn(head: string): Promise<z.infer<typeof EmulatorStatus>[]> {
  return z.array(EmulatorStatus).parse(await (await emulator(`/repos/${REPOSITORY}/commits/${head}/statuses`)).json()).reverse();
}

/** An update PR's webhook for `head`, as GitHub sends it once mergeability is known (so no follow-up re-read). */
function updatePr(action: string, options: Parameters<typeof pullRequest>[1]) {
  const payload = pullRequest(action, options);
  set(payload, "pull_request.mergeable", true);
  return payload;
}

interface Agent {
  name: string;
  token: string;
  session: string;
}

const created: string[] = [];
// A fleet build covers every host: each test removes its own, so the next one builds only its hosts.
afterEach(async () => {
  for (const name of created.splice(0)) expect((await api(`/api/hosts/${name}`, { method: "DELETE" })).status).toBe(200);
  await emulator("/_emulator/faults", { method: "DELETE" });
});

async function fleet(prefix: string, count: number, nixSystem?: string): Promise<Agent[]> {
  const agents: Agent[] = [];
  for (let i = 0; i < count; i++) {
    const name = `${prefix}-${i}`;
    const { token } = await createHost(name);
    created.push(name);
    const agent = { name, token, session: `session-${name}` };
    const report = sampleReport({ hostname: name, ...(nixSystem === undefined ? {} : { nixSystem }) });
    const res = await agentFetch(token, "/poll?wait=0", pollBody({ agentSession: agent.session, report }));
    expect(res.status).toBe(200);
    agents.push(agent);
  }
  return agents;
}

async function poll(agent: Agent, acks: string[] = []): Promise<CommandDelivery[]> {
  const res = await agentFetch(agent.token, "/poll?wait=0", pollBody({ agentSession: agent.session, acks }));
  expect(res.status).toBe(200);
  return PollResponse.parse(await res.json()).commands;
}

async function event(agent: Agent, commandId: string, body: unknown): Promise<void> {
  const res = await agentFetch(agent.token, `/commands/${commandId}/events`, body);
  expect(res.status, await res.clone().text()).toBe(200);
}

const at = () => new Date().toISOString();

/** The update PR merged: main at a merge commit of its own, whose tree is the PR head's; the coordinator told. */
async function mainMergedAt(merge: string, tree: string, pullRequest: number): Promise<void> {
  await saveRepoState(openDatabase(env.DB), {
    repository: REPOSITORY,
    branch: "main",
    head: { sha: merge, message: `Merge pull request #${pullRequest}`, author: "Codertocat", committedAt: at(), tree },
    lockHash: "c".repeat(64),
    lockLastModified: {},
    lockProblem: null,
    updatedAt: at(),
    source: "webhook",
  });
  await stub().notify({ type: "repo" });
}

function buildResult(commit: string, outcome: "built" | "failed"): CommandResult {
  return outcome === "built"
    ? {
        build: {
          commit,
          storePath: "/nix/store/aaaa-nixos-system-x",
          durationMs: 41_000,
          comparedWith: "/nix/store/bbbb-nixos-system-x",
          closureDiff: { entries: [{ name: "hello", old: ["1.0"], new: ["1.1"], sizeDelta: 28672 }], omitted: 0, totalSizeDelta: 28672 },
        },
      }
    : { build: { commit, storePath: null, durationMs: 3_000, comparedWith: null, closureDiff: null, errorTail: "building…\nerror: attribute 'hsb1' missing\n" } };
}

/** The agent's side of a build: it receives it, starts it and finishes it. */
async function runBuild(agent: Agent, commit: string, outcome: "built" | "failed"): Promise<string> {
  const build = (await poll(agent)).find((c) => c.kind === "build");
  expect(build, `${agent.name} received no build`).toBeDefined();
  expect(build!.commit).toBe(commit);
  await event(agent, build!.id, { type: "started", at: at() });
  await event(agent, build!.id, {
    type: "finished",
    at: at(),
    outcome: outcome === "built" ? "succeeded" : "failed",
    exitCode: outcome === "built" ? 0 : 1,
    error: outcome === "built" ? null : `the build of ${commit} failed`,
    result: buildResult(commit, outcome),
  });
  return build!.id;
}

async function fleetBuildOf(pr: number): Promise<FleetBuildView | null> {
  return (await getUpdatePrs()).find((p) => p.number === pr)?.fleetBuild ?? null;
}

async function hostCommands(name: string): Promise<CommandView[]> {
  const res = await api(`/api/hosts/${name}/commands`);
  expect(res.status).toBe(200);
  return z.object({ commands: z.array(CommandView) }).parse(await res.json()).commands;
}

describe("a fleet build from the update PR's webhook to the commit status", () => {
  it("builds on every host, moves with each host's events, and posts pending then failure naming the host", async () => {
    const agents = await fleet("fbv", 3);
    const head = await headOnGitHub("31");
    expect((await deliver("pull_request", updatePr("opened", { number: 31, head }))).response.ok).toBe(true);

    const started = await fleetBuildOf(31);
    expect(started).toMatchObject({ pr: 31, headSha: head, verdict: "pending", built: 0, counted: 3, startedBy: "update PR #31" });
    expect(started!.hosts.map((h) => [h.name, h.state, h.counted])).toEqual(agents.map((a) => [a.name, "queued", true]));
    await onGitHub(async () => expect((await statusesOn(head)).at(-1)).toMatchObject({ state: "pending", context: FLEET_BUILD_CONTEXT }));
    // Posted with the configured token (the emulator refuses any other, and names its user), linking the dashboard.
    expect((await statusesOn(head))[0]).toMatchObject({ target_url: "https://fleet.example.com/", creator: { login: "example" } });

    await runBuild(agents[0]!, head, "built");
    await runBuild(agents[2]!, head, "built");
    const partway = await fleetBuildOf(31);
    expect(partway).toMatchObject({ verdict: "pending", built: 2, description: "2/3 hosts built, 1 building" });
    expect(partway!.hosts[0]).toMatchObject({ state: "built", durationMs: 41_000, storePath: "/nix/store/aaaa-nixos-system-x", closureDiff: { totalSizeDelta: 28672 } });

    await runBuild(agents[1]!, head, "failed");
    const done = await fleetBuildOf(31);
    const description = "2/3 hosts built, fbv-1 failed: error: attribute 'hsb1' missing";
    expect(done).toMatchObject({ verdict: "failure", built: 2, counted: 3, description });
    expect(done!.finishedAt).toBeDefined();
    expect(done!.hosts[1]).toMatchObject({ state: "failed", reason: "error: attribute 'hsb1' missing" });
    await onGitHub(async () => expect((await statusesOn(head)).at(-1)).toMatchObject({ state: "failure", description }));
    await onGitHub(async () => expect((await fleetBuildOf(31))?.githubStatus).toMatchObject({ state: "failure", error: null }));
  });

  it("keeps a post GitHub refused, and posts it again on the next change", async () => {
    const agents = await fleet("fbr", 2);
    const head = await headOnGitHub("32");
    // GitHub's front end answers the first post on this head 502.
    await emulator("/_emulator/faults", { body: { method: "POST", path: `/repos/${REPOSITORY}/statuses/${head}`, status: 502, count: 1 } });
    await deliver("pull_request", updatePr("opened", { number: 32, head }));
    await onGitHub(async () => expect((await fleetBuildOf(32))?.githubStatus?.error).toMatch(/502|Bad Gateway/));
    expect(await statusesOn(head)).toEqual([]);
    await runBuild(agents[0]!, head, "built");
    await onGitHub(async () => expect((await statusesOn(head)).at(-1)).toMatchObject({ state: "pending", description: "1/2 hosts built, 1 building" }));
    await onGitHub(async () => expect((await fleetBuildOf(32))?.githubStatus?.error).toBeNull());
  });
});

describe("once per head, and a newer head supersedes", () => {
  it("does not restart for a redelivered webhook", async () => {
    const agents = await fleet("fbd", 2);
    const head = await headOnGitHub("33");
    await deliver("pull_request", updatePr("opened", { number: 33, head }));
    const first = await fleetBuildOf(33);
    await deliver("pull_request", updatePr("opened", { number: 33, head }));
    await deliver("pull_request", updatePr("edited", { number: 33, head, updatedAt: "2019-05-15T15:21:00Z" }));
    expect((await fleetBuildOf(33))?.id).toBe(first!.id);
    for (const agent of agents) expect((await hostCommands(agent.name)).filter((c) => c.kind === "build")).toHaveLength(1);
  });

  it("cancels the old head's queued builds and stops its running one when concurrent deliveries bring a new head", async () => {
    const agents = await fleet("fbs", 3);
    const [a, b, c] = agents as [Agent, Agent, Agent];
    const oldHead = await headOnGitHub("34");
    const newHead = await headOnGitHub("35");
    await deliver("pull_request", updatePr("opened", { number: 34, head: oldHead }));
    const old = await fleetBuildOf(34);
    // a runs the old build; b and c have theirs queued.
    const running = (await poll(a)).find((cmd) => cmd.kind === "build")!;
    await event(a, running.id, { type: "started", at: at() });

    const moved = updatePr("synchronize", { number: 34, head: newHead, updatedAt: "2019-05-15T15:25:00Z" });
    const answers = await Promise.all([deliver("pull_request", moved), deliver("pull_request", moved), api("/api/update-prs").then((r) => r.status)]);
    expect(answers.map((x) => (typeof x === "number" ? x === 200 : x.response.ok))).toEqual([true, true, true]);

    const current = await fleetBuildOf(34);
    expect(current?.headSha).toBe(newHead);
    expect(current?.id).not.toBe(old!.id);
    expect(Object.fromEntries(current!.hosts.map((h) => [h.name, h.state]))).toEqual({ [a.name]: "waiting", [b.name]: "queued", [c.name]: "queued" });
    // Exactly one new build per host, however many deliveries raced.
    for (const agent of [b, c]) {
      const builds = (await hostCommands(agent.name)).filter((cmd) => cmd.kind === "build");
      expect(builds.map((cmd) => cmd.state).sort()).toEqual(["cancelled", "queued"]);
    }

    // a gets the stop for its running old build, and ends that build cancelled.
    const stop = (await poll(a)).find((cmd) => cmd.kind === "stop");
    expect(stop?.target).toBe(running.id);
    await event(a, running.id, { type: "finished", at: at(), outcome: "cancelled", exitCode: null, error: "stopped", result: {} });
    await event(a, stop!.id, { type: "finished", at: at(), outcome: "succeeded", exitCode: 0, result: { stopped: true } });

    const oldAfter = await runInDurableObject(stub(), (instance: Coordinator) => instance.fleetBuildsFor([34]));
    expect(oldAfter[34]?.id).toBe(current!.id);
    const now = await fleetBuildOf(34);
    expect(now!.hosts.find((h) => h.name === a.name)?.state).toBe("queued");
    for (const agent of agents) await runBuild(agent, newHead, "built");
    expect(await fleetBuildOf(34)).toMatchObject({ verdict: "success", description: "3/3 hosts built" });
    await onGitHub(async () => expect((await statusesOn(newHead)).at(-1)).toMatchObject({ state: "success", description: "3/3 hosts built" }));
    // The old head's status is left as it was (pending, posted before the new head came): nothing more is posted for a superseded build.
    const oldStatuses = await statusesOn(oldHead);
    expect(oldStatuses.length).toBeGreaterThan(0);
    expect(new Set(oldStatuses.map((status) => `${status.context} ${status.state}`))).toEqual(new Set([`${FLEET_BUILD_CONTEXT} pending`]));
  });

  it("builds a host that was offline when it comes back, and one that was busy when it is free", async () => {
    const [online] = await fleet("fbo", 1);
    const { token } = await createHost("fbo-late");
    created.push("fbo-late");
    const late: Agent = { name: "fbo-late", token, session: "session-fbo-late" };
    const head = await headOnGitHub("36");
    // online is busy with a test when the build starts.
    expect((await api(`/api/hosts/${online!.name}/commands`, { method: "POST", json: { kind: "test" } })).ok).toBe(true);
    await deliver("pull_request", updatePr("opened", { number: 36, head }));
    const first = await fleetBuildOf(36);
    expect(Object.fromEntries(first!.hosts.map((h) => [h.name, h.state]))).toEqual({ [online!.name]: "waiting", "fbo-late": "offline" });
    expect(first).toMatchObject({ verdict: "pending", counted: 1 });

    const test = (await poll(online!)).find((c) => c.kind === "test")!;
    await event(online!, test.id, { type: "finished", at: at(), outcome: "succeeded", exitCode: 0, result: {} });
    expect((await fleetBuildOf(36))!.hosts.find((h) => h.name === online!.name)?.state).toBe("queued");

    // The late host's first poll: its build is delivered in that same answer.
    const res = await agentFetch(late.token, "/poll?wait=0", pollBody({ agentSession: late.session, report: sampleReport({ hostname: late.name }) }));
    const delivered = PollResponse.parse(await res.json()).commands;
    expect(delivered.map((c) => [c.kind, c.commit])).toEqual([["build", head]]);
    expect((await fleetBuildOf(36))!.hosts.find((h) => h.name === late.name)).toMatchObject({ state: "queued", counted: true });
  });
});

describe("closing, re-running, and our own status", () => {
  it("cancels a closed PR's builds; the re-run route answers 201, 404 and 409 as it should", async () => {
    const [agent] = await fleet("fbc", 1);
    const head = await headOnGitHub("37");
    await deliver("pull_request", updatePr("opened", { number: 37, head }));
    const first = await fleetBuildOf(37);

    const rerun = await api("/api/update-prs/37/build", { method: "POST" });
    expect(rerun.status).toBe(201);
    const again = FleetBuildView.parse((await rerun.json<{ fleetBuild: unknown }>()).fleetBuild);
    expect(again.id).not.toBe(first!.id);
    expect(again).toMatchObject({ headSha: head, startedBy: "developer@localhost" });
    const audit = await env.DB.prepare("select action, target, result from audit_log where action = 'update-pr.build' order by at desc limit 1").first();
    expect(audit).toEqual({ action: "update-pr.build", target: `${REPOSITORY}#37`, result: "started" });

    expect((await api("/api/update-prs/9999/build", { method: "POST" })).status).toBe(404);
    await deliver("pull_request", updatePr("closed", { number: 37, head, updatedAt: "2019-05-15T15:30:00Z" }));
    const closed = await api("/api/update-prs/37/build", { method: "POST" });
    expect(closed.status).toBe(409);
    expect((await errorOf(closed)).code).toBe("update_pr_not_open");

    const builds = (await hostCommands(agent!.name)).filter((c) => c.kind === "build");
    expect(builds.map((c) => c.state)).toEqual(["cancelled", "cancelled"]);
    const stored = await runInDurableObject(stub(), (instance: Coordinator) => instance.fleetBuildsFor([37]));
    expect(stored[37]).toMatchObject({ id: again.id, verdict: "pending" });
    expect(stored[37]!.hosts[0]).toMatchObject({ state: "cancelled", reason: "the PR was closed unmerged" });
  });

  it("keeps the nixfleet/fleet-build status out of the PR's CI state", async () => {
    const head = await headOnGitHub("38");
    await deliver("pull_request", updatePr("opened", { number: 38, head }));
    const ours_ = ours(example("status"));
    set(ours_, "sha", head);
    set(ours_, "context", FLEET_BUILD_CONTEXT);
    set(ours_, "state", "failure");
    const { response } = await deliver("status", ours_);
    expect(response.status).toBe(202);
    expect((await getUpdatePrs()).find((p) => p.number === 38)?.ciState).toBe("unknown");
  });
});

describe("the rollout plan of an update PR", () => {
  it("shows the head's fleet build and leaves out a host whose build failed, unless asked to include it", async () => {
    const agents = await fleet("fbp", 2);
    const head = await headOnGitHub("39");
    await deliver("pull_request", updatePr("opened", { number: 39, head }));
    await runBuild(agents[0]!, head, "built");
    await runBuild(agents[1]!, head, "failed");

    const plan = async (body: Record<string, unknown>) => {
      const res = await api("/api/rollouts/plan", { method: "POST", json: body });
      expect(res.status, await res.clone().text()).toBe(200);
      return RolloutPlanView.parse((await res.json<{ plan: unknown }>()).plan);
    };
    const gated = await plan({ pr: 39 });
    expect(gated.fleetBuild).toMatchObject({ headSha: head, verdict: "failure" });
    expect(gated.leftOut).toContainEqual({ name: agents[1]!.name, reason: `its build of ${head.slice(0, 7)} failed` });
    expect(gated.waves.flatMap((w) => w.hosts)).toContain(agents[0]!.name);

    const insisted = await plan({ pr: 39, includeFailedBuilds: true });
    expect(insisted.waves.flatMap((w) => w.hosts)).toEqual(expect.arrayContaining(agents.map((a) => a.name)));
    expect(insisted.leftOut.map((h) => h.name)).not.toContain(agents[1]!.name);

    const noPr = await plan({ commit: "40".repeat(20) });
    expect(noPr.fleetBuild).toBeNull();
  });
});

describe("System and a failed fleet build of main's tree", () => {
  it("turns the host red once main is at the tree whose build failed there, matched by tree though main's commit is the merge's", async () => {
    const [good, bad] = await fleet("fbt", 2);
    const head = await headOnGitHub("40");
    await deliver("pull_request", updatePr("opened", { number: 40, head }));
    await runBuild(bad!, head, "failed");
    await runBuild(good!, head, "built");
    const tree = z.object({ commit: z.object({ tree: z.object({ sha: z.string() }) }) }).parse(await (await emulator(`/repos/${REPOSITORY}/commits/${head}`)).json()).commit.tree.sha;

    // The update PR merged: main is at a merge commit of its own whose tree is the PR head's.
    const merge = "4e".repeat(20);
    await mainMergedAt(merge, tree, 40);
    for (const agent of [good!, bad!]) {
      const desired = { source: "local" as const, latest: { commit: merge, tree, evaluatedAt: at(), outPath: `/nix/store/${"d".repeat(32)}-nixos-system-${agent.name}`, changes: null }, evaluating: null };
      const res = await agentFetch(agent.token, "/poll?wait=0", pollBody({ agentSession: agent.session, report: sampleReport({ hostname: agent.name, desired }) }));
      expect(res.status).toBe(200);
    }
    const systemOf = async (name: string) =>
      z.object({ compartments: z.object({ system: z.object({ state: z.string(), reason: z.string() }) }) }).parse(await (await api(`/api/hosts/${name}`)).json()).compartments.system;
    expect(await systemOf(bad!.name)).toEqual({ state: "red", reason: `main does not build on this host: its build of ${head.slice(0, 7)} failed: attribute 'hsb1' missing` });
    // Where it built, main's system is simply not running yet.
    expect((await systemOf(good!.name)).state).toBe("yellow");
    await env.DB.prepare("DELETE FROM github_repo_state").run();
    await stub().notify({ type: "repo" });
  });
});

describe("builder hosts (fleetBuild.builders)", () => {
  async function setBuilders(builders: Settings["fleetBuild"]["builders"]): Promise<Response> {
    const current = SettingsResponse.parse(await (await api("/api/settings")).json()).settings;
    return api("/api/settings", { method: "PUT", json: { ...current, fleetBuild: { ...current.fleetBuild, builders } } });
  }

  it("sends one build to the builder naming every host of its system, none to the others, and takes each host's verdict from the builder's result for it", async () => {
    const agents = await fleet("fbb", 3, "x86_64-linux");
    const [builder, db, web] = agents as [Agent, Agent, Agent];
    expect((await setBuilders([{ system: "x86_64-linux", host: builder.name }])).status).toBe(200);
    try {
      const head = await headOnGitHub("45");
      await deliver("pull_request", updatePr("opened", { number: 45, head }));
      const started = (await fleetBuildOf(45))!;
      expect(started.hosts.map((h) => [h.name, h.state, h.builtBy])).toEqual(agents.map((a) => [a.name, "queued", builder.name]));
      expect(new Set(started.hosts.map((h) => h.commandId)).size).toBe(1);

      expect(await poll(web)).toEqual([]);
      expect(await poll(db)).toEqual([]);
      const [delivered] = await poll(builder);
      expect(delivered).toMatchObject({ kind: "build", commit: head, id: started.hosts[0]!.commandId });
      expect(delivered!.builds).toEqual(agents.map((a) => ({ host: a.name, platform: "nixos", flakeAttr: a.name })));

      await event(builder, delivered!.id, { type: "started", at: at() });
      expect((await fleetBuildOf(45))!.hosts.map((h) => h.state)).toEqual(["building", "building", "building"]);
      const tree = "1234567890abcdef1234567890abcdef12345678";
      await event(builder, delivered!.id, {
        type: "finished",
        at: at(),
        outcome: "failed",
        exitCode: null,
        error: `1 host of 3 not built: ${db.name}`,
        result: {
          build: { commit: head, tree, storePath: null, durationMs: 90_000, comparedWith: null, closureDiff: null },
          hostBuilds: {
            [builder.name]: { storePath: "/nix/store/aaaa-nixos-system-fbb-0", durationMs: 40_000 },
            [web.name]: { storePath: "/nix/store/bbbb-nixos-system-fbb-2", durationMs: 30_000 },
            [db.name]: { storePath: null, durationMs: 2_000, error: `the build of ${db.name} failed (nix build exited with code 1)`, errorTail: "error: attribute 'fbb-1' missing" },
          },
        },
      });
      const done = (await fleetBuildOf(45))!;
      expect(done).toMatchObject({ verdict: "failure", built: 2, counted: 3, description: `2/3 hosts built, ${db.name} failed: error: attribute 'fbb-1' missing` });
      expect(done.hosts.map((h) => [h.name, h.state, h.storePath ?? null])).toEqual([
        [builder.name, "built", "/nix/store/aaaa-nixos-system-fbb-0"],
        [db.name, "failed", null],
        [web.name, "built", "/nix/store/bbbb-nixos-system-fbb-2"],
      ]);
      await onGitHub(async () => expect((await statusesOn(head)).at(-1)).toMatchObject({ state: "failure", description: done.description }));
    } finally {
      expect((await setBuilders([])).status).toBe(200);
    }
  });

  it("publishes what the builder built as the desired systems of the head's tree: hosts with evaluate = \"ci\" on the merge commit turn green or yellow, the one it failed publishes nothing and turns red", async () => {
    const agents = await fleet("fbd", 3, "x86_64-linux");
    const [builder, db, web] = agents as [Agent, Agent, Agent];
    expect((await setBuilders([{ system: "x86_64-linux", host: builder.name }])).status).toBe(200);
    try {
      const head = await headOnGitHub("46");
      const tree = z.object({ commit: z.object({ tree: z.object({ sha: z.string() }) }) }).parse(await (await emulator(`/repos/${REPOSITORY}/commits/${head}`)).json()).commit.tree.sha;
      await deliver("pull_request", updatePr("opened", { number: 46, head }));
      const [delivered] = await poll(builder);
      expect(delivered).toMatchObject({ kind: "build", commit: head });
      const built = { [builder.name]: `/nix/store/${"a".repeat(32)}-nixos-system-fbd-0`, [web.name]: `/nix/store/${"b".repeat(32)}-nixos-system-fbd-2` };
      await event(builder, delivered!.id, { type: "started", at: at() });
      await event(builder, delivered!.id, {
        type: "finished",
        at: at(),
        outcome: "failed",
        exitCode: null,
        error: `1 host of 3 not built: ${db.name}`,
        result: {
          build: { commit: head, tree, storePath: null, durationMs: 60_000, comparedWith: null, closureDiff: null },
          hostBuilds: {
            [builder.name]: { storePath: built[builder.name]!, durationMs: 30_000 },
            [web.name]: { storePath: built[web.name]!, durationMs: 30_000 },
            [db.name]: { storePath: null, durationMs: 2_000, error: `the build of ${db.name} failed (nix build exited with code 1)`, errorTail: "error: attribute 'fbd-1' missing" },
          },
        },
      });
      // The publication is the step's effect, carried to D1 by the outbox after the event's answer.
      const published = () => env.DB.prepare("SELECT host_name, out_path, tree FROM desired_publications WHERE commit_sha = ? ORDER BY host_name").bind(head).all();
      await vi.waitFor(async () => expect((await published()).results).toHaveLength(2), { timeout: 10_000, interval: 50 });
      expect((await published()).results).toEqual([
        { host_name: builder.name, out_path: built[builder.name], tree },
        { host_name: web.name, out_path: built[web.name], tree },
      ]);
      const audit = await env.DB.prepare("SELECT actor, details FROM audit_log WHERE action = 'desired.publish' AND target = ?").bind(head).all<{ actor: string; details: string }>();
      expect(audit.results.map((row) => [row.actor, JSON.parse(row.details)])).toEqual([[`builder ${builder.name}`, { hosts: [builder.name, web.name], tree }]]);

      // Merged: main is at a merge commit of its own (nothing was published for it) whose tree is the PR head's.
      const merge = "4f".repeat(20);
      await mainMergedAt(merge, tree, 46);
      // Too small to evaluate: each runs the builder's path for it, or an older one (the web host).
      const running = { [builder.name]: built[builder.name]!, [db.name]: `/nix/store/${"c".repeat(32)}-nixos-system-fbd-1`, [web.name]: `/nix/store/${"c".repeat(32)}-nixos-system-fbd-2` };
      for (const agent of agents) {
        const report = sampleReport({ hostname: agent.name, nixSystem: "x86_64-linux", system: { current: { value: running[agent.name]! }, builtFromCommit: null }, desired: { source: "ci", latest: null, evaluating: null } });
        expect((await agentFetch(agent.token, "/poll?wait=0", pollBody({ agentSession: agent.session, report }))).status).toBe(200);
      }
      const systemOf = async (name: string) =>
        z.object({ compartments: z.object({ system: z.object({ state: z.string(), reason: z.string() }) }) }).parse(await (await api(`/api/hosts/${name}`)).json()).compartments.system;
      expect(await systemOf(builder.name)).toMatchObject({ state: "green", reason: "running main's system" });
      expect(await systemOf(web.name)).toMatchObject({ state: "yellow", reason: "switch needed: main builds nixos-system-fbd-2" });
      expect(await systemOf(db.name)).toEqual({ state: "red", reason: `main does not build on this host: its build of ${head.slice(0, 7)} failed: attribute 'fbd-1' missing` });
    } finally {
      expect((await setBuilders([])).status).toBe(200);
      await env.DB.prepare("DELETE FROM github_repo_state").run();
      await stub().notify({ type: "repo" });
    }
  });

  it("refuses builders that are not hosts of the fleet, or two for one system type, with 400 and keeps the settings", async () => {
    const [host] = await fleet("fbs", 1);
    const before = SettingsResponse.parse(await (await api("/api/settings")).json()).settings;
    const unknown = await setBuilders([{ system: "aarch64-linux", host: "no-such-host" }]);
    expect(unknown.status).toBe(400);
    expect(await errorOf(unknown)).toMatchObject({ code: "builder_not_a_host", message: expect.stringContaining("no-such-host (aarch64-linux), which is not a host of the fleet") });
    const two = await setBuilders([{ system: "x86_64-linux", host: host!.name }, { system: "x86_64-linux", host: "other" }]);
    expect(two.status).toBe(400);
    expect((await errorOf(two)).message).toContain(`two builders for x86_64-linux: ${host!.name} and other`);
    expect(SettingsResponse.parse(await (await api("/api/settings")).json()).settings).toEqual(before);
  });
});
