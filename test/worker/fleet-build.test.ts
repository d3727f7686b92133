/**
 * Fleet builds through the real coordinator and real local D1: an update PR's
 * webhook starts a build on every host, the agents' command events move each
 * host and the verdict, the commit status reaches GitHub (a fake api.github
 * at the network layer: the fetch the client uses), a new head supersedes the
 * old build under concurrent deliveries, a redelivered webhook restarts
 * nothing, a closed PR cancels, the re-run route, our own status kept out of
 * CI, and a failed build leaving its host out of the rollout plan.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { CommandView, FleetBuildView, PollResponse, RolloutPlanView, type CommandDelivery, type CommandResult } from "../../common/protocol.ts";
import { FLEET_BUILD_CONTEXT } from "../../worker/fleet-build/rules.ts";
import type { Coordinator } from "../../worker/objects/coordinator.ts";
import { deliver, errorOf, example, getUpdatePrs, ours, pullRequest, REPOSITORY, set } from "./github-helpers.ts";
import { agentFetch, api, createHost, pollBody, sampleReport } from "./helpers.ts";

const stub = () => env.COORDINATOR.getByName("fleet");
const sha = (n: number) => n.toString(16).padStart(2, "0").repeat(20);

/** What the fake GitHub received: every commit status posted, in order. */
const posted: { sha: string; body: Record<string, unknown>; authorization: string | null }[] = [];
let failPosts = false;

async function fakeGitHub(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  const request = new Request(input, init);
  const match = /^\/repos\/example\/fleet\/statuses\/([0-9a-f]{40})$/.exec(new URL(request.url).pathname);
  if (request.method === "POST" && match) {
    if (failPosts) return Response.json({ message: "Server Error" }, { status: 502 });
    const body = z.record(z.string(), z.unknown()).parse(await request.json());
    posted.push({ sha: match[1]!, body, authorization: request.headers.get("authorization") });
    return Response.json({ id: posted.length, state: body.state, context: body.context }, { status: 201 });
  }
  return Response.json({ message: "Not Found" }, { status: 404 });
}

beforeAll(async () => {
  await runInDurableObject(stub(), (instance: Coordinator) => {
    instance.githubForTests = {
      fetch: fakeGitHub,
      vars: { GITHUB_TOKEN: "github_pat_fleet_build", GITHUB_API_URL: "https://api.github.test", DASHBOARD_URL: "https://fleet.example.com/" },
    };
  });
});

interface Agent {
  name: string;
  token: string;
  session: string;
}

const created: string[] = [];
// A fleet build covers every host: each test removes its own, so the next one builds only its hosts.
afterEach(async () => {
  for (const name of created.splice(0)) expect((await api(`/api/hosts/${name}`, { method: "DELETE" })).status).toBe(200);
  failPosts = false;
});

async function fleet(prefix: string, count: number): Promise<Agent[]> {
  const agents: Agent[] = [];
  for (let i = 0; i < count; i++) {
    const name = `${prefix}-${i}`;
    const { token } = await createHost(name);
    created.push(name);
    const agent = { name, token, session: `session-${name}` };
    const res = await agentFetch(token, "/poll?wait=0", pollBody({ agentSession: agent.session, report: sampleReport({ hostname: name }) }));
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

const statusesOn = (head: string) => posted.filter((p) => p.sha === head);

async function hostCommands(name: string): Promise<CommandView[]> {
  const res = await api(`/api/hosts/${name}/commands`);
  expect(res.status).toBe(200);
  return z.object({ commands: z.array(CommandView) }).parse(await res.json()).commands;
}

describe("a fleet build from the update PR's webhook to the commit status", () => {
  it("builds on every host, moves with each host's events, and posts pending then failure naming the host", async () => {
    const agents = await fleet("fbv", 3);
    const head = sha(0x31);
    expect((await deliver("pull_request", pullRequest("opened", { number: 31, head }))).response.ok).toBe(true);

    const started = await fleetBuildOf(31);
    expect(started).toMatchObject({ pr: 31, headSha: head, verdict: "pending", built: 0, counted: 3, startedBy: "update PR #31" });
    expect(started!.hosts.map((h) => [h.name, h.state, h.counted])).toEqual(agents.map((a) => [a.name, "queued", true]));
    await vi.waitFor(() => expect(statusesOn(head).at(-1)?.body).toMatchObject({ state: "pending", context: FLEET_BUILD_CONTEXT }));
    expect(statusesOn(head)[0]?.authorization).toBe("token github_pat_fleet_build");
    expect(statusesOn(head)[0]?.body.target_url).toBe("https://fleet.example.com/");

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
    await vi.waitFor(() => expect(statusesOn(head).at(-1)?.body).toMatchObject({ state: "failure", description }));
    await vi.waitFor(async () => expect((await fleetBuildOf(31))?.githubStatus).toMatchObject({ state: "failure", error: null }));
  });

  it("keeps a post GitHub refused, and posts it again on the next change", async () => {
    const agents = await fleet("fbr", 2);
    const head = sha(0x32);
    failPosts = true;
    await deliver("pull_request", pullRequest("opened", { number: 32, head }));
    await vi.waitFor(async () => expect((await fleetBuildOf(32))?.githubStatus?.error).toMatch(/502|Server Error/));
    expect(statusesOn(head)).toEqual([]);
    failPosts = false;
    await runBuild(agents[0]!, head, "built");
    await vi.waitFor(() => expect(statusesOn(head).at(-1)?.body).toMatchObject({ state: "pending", description: "1/2 hosts built, 1 building" }));
    await vi.waitFor(async () => expect((await fleetBuildOf(32))?.githubStatus?.error).toBeNull());
  });
});

describe("once per head, and a newer head supersedes", () => {
  it("does not restart for a redelivered webhook", async () => {
    const agents = await fleet("fbd", 2);
    const head = sha(0x33);
    await deliver("pull_request", pullRequest("opened", { number: 33, head }));
    const first = await fleetBuildOf(33);
    await deliver("pull_request", pullRequest("opened", { number: 33, head }));
    await deliver("pull_request", pullRequest("edited", { number: 33, head, updatedAt: "2019-05-15T15:21:00Z" }));
    expect((await fleetBuildOf(33))?.id).toBe(first!.id);
    for (const agent of agents) expect((await hostCommands(agent.name)).filter((c) => c.kind === "build")).toHaveLength(1);
  });

  it("cancels the old head's queued builds and stops its running one when concurrent deliveries bring a new head", async () => {
    const agents = await fleet("fbs", 3);
    const [a, b, c] = agents as [Agent, Agent, Agent];
    const oldHead = sha(0x34);
    const newHead = sha(0x35);
    await deliver("pull_request", pullRequest("opened", { number: 34, head: oldHead }));
    const old = await fleetBuildOf(34);
    // a runs the old build; b and c have theirs queued.
    const running = (await poll(a)).find((cmd) => cmd.kind === "build")!;
    await event(a, running.id, { type: "started", at: at() });

    const moved = pullRequest("synchronize", { number: 34, head: newHead, updatedAt: "2019-05-15T15:25:00Z" });
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
    await vi.waitFor(() => expect(statusesOn(newHead).at(-1)?.body).toMatchObject({ state: "success", description: "3/3 hosts built" }));
    // The old head's status is left as it was: nothing more is posted for a superseded build.
    expect(statusesOn(oldHead).every((s) => s.body.state === "pending")).toBe(true);
  });

  it("builds a host that was offline when it comes back, and one that was busy when it is free", async () => {
    const [online] = await fleet("fbo", 1);
    const { token } = await createHost("fbo-late");
    created.push("fbo-late");
    const late: Agent = { name: "fbo-late", token, session: "session-fbo-late" };
    const head = sha(0x36);
    // online is busy with a test when the build starts.
    expect((await api(`/api/hosts/${online!.name}/commands`, { method: "POST", json: { kind: "test" } })).ok).toBe(true);
    await deliver("pull_request", pullRequest("opened", { number: 36, head }));
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
    const head = sha(0x37);
    await deliver("pull_request", pullRequest("opened", { number: 37, head }));
    const first = await fleetBuildOf(37);

    const rerun = await api("/api/update-prs/37/build", { method: "POST" });
    expect(rerun.status).toBe(201);
    const again = FleetBuildView.parse((await rerun.json<{ fleetBuild: unknown }>()).fleetBuild);
    expect(again.id).not.toBe(first!.id);
    expect(again).toMatchObject({ headSha: head, startedBy: "developer@localhost" });
    const audit = await env.DB.prepare("select action, target, result from audit_log where action = 'update-pr.build' order by at desc limit 1").first();
    expect(audit).toEqual({ action: "update-pr.build", target: `${REPOSITORY}#37`, result: "started" });

    expect((await api("/api/update-prs/9999/build", { method: "POST" })).status).toBe(404);
    await deliver("pull_request", pullRequest("closed", { number: 37, head, updatedAt: "2019-05-15T15:30:00Z" }));
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
    const head = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
    await deliver("pull_request", pullRequest("opened", { number: 38, head }));
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
    const head = sha(0x39);
    await deliver("pull_request", pullRequest("opened", { number: 39, head }));
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

    const noPr = await plan({ commit: sha(0x40) });
    expect(noPr.fleetBuild).toBeNull();
  });
});
