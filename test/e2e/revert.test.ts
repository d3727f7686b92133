/**
 * Reverting an update on demand, end to end: the control plane on workerd, the GitHub emulator and
 * three real agents (h0 the canary). A succeeded update is reverted on main and the revert commit's
 * rollout goes green on every host; under branch protection a revert PR opens instead, and the result
 * and the history say so; an update that is not the latest, whose file a later commit changed again,
 * is not reverted on main — the answer says so, names the commit before the update, and a revert PR
 * for a person to resolve opens on request. Bad input, an unknown rollout and a revert under way are
 * refused and change nothing.
 */
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { z } from "zod";
import { CommandView, ErrorBody, RevertRolloutResponse, RolloutView } from "../../common/protocol.ts";
import type { GitHubEmulator } from "../../tools/github-emulator/emulator.ts";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import { adminApi } from "../support/admin-api.ts";
import type { ControlPlane } from "../support/control-plane.ts";
import { tailOfLogs, type E2eAgent } from "../support/e2e-agent.ts";
import { deployMainEverywhere, startGitHubFleet, type GitHubFleet } from "../support/github-fleet.ts";
import { eventuallyWith } from "../support/wait.ts";
import { removeHostRoot } from "../support/host-root.ts";

vi.setConfig({ testTimeout: 240_000, hookTimeout: 240_000 });

const SECRET = "revert-webhook-secret";
const TOKEN = "github_pat_revert";
const HOSTS = ["h0", "h1", "h2"] as const;
const POLL_SECONDS = 5;

let root: string;
let cp: ControlPlane;
let emulator: GitHubEmulator;
let github: GitHubFleet | undefined;
const agents = new Map<string, E2eAgent>();

const call = adminApi(() => cp.url);
const eventually = eventuallyWith({ timeoutMs: 120_000, intervalMs: 250, details: () => tailOfLogs(agents.values(), 15) });

const getRollout = async (id: string) => (await call(z.object({ rollout: RolloutView }), `/api/rollouts/${id}`)).rollout;
const hostCommands = async (name: string) => (await call(z.object({ commands: z.array(CommandView) }), `/api/hosts/${name}/commands`)).commands;

const settled = (id: string) =>
  eventually(`rollout ${id} to end`, async () => {
    const view = await getRollout(id);
    return ["succeeded", "failed", "cancelled"].includes(view.state) && view.finishedAt ? view : null;
  });

/** The raw answer of a revert request, as the dashboard gets it (status and body). */
async function postRevert(id: string, body: unknown): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${cp.url}/api/rollouts/${id}/revert`, {
    method: "POST",
    headers: { origin: cp.url, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

const revert = async (id: string, strategy: "revert-commit" | "revert-pr") => {
  const answer = await postRevert(id, { strategy });
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  return RevertRolloutResponse.parse(answer.body).rollout;
};

/** A file of main as GitHub serves it. */
async function fileOnMain(name: string): Promise<string> {
  const res = await fetch(`${emulator.apiUrl}/repos/example/fleet/contents/${name}?ref=main`, { headers: { authorization: `token ${TOKEN}` } });
  expect(res.status).toBe(200);
  const { content } = z.object({ content: z.string() }).parse(await res.json());
  return Buffer.from(content, "base64").toString("utf8");
}

async function commitOf(sha: string): Promise<{ parents: string[]; message: string }> {
  const res = await fetch(`${emulator.apiUrl}/repos/example/fleet/git/commits/${sha}`, { headers: { authorization: `token ${TOKEN}` } });
  const commit = z.object({ message: z.string(), parents: z.array(z.object({ sha: z.string() })) }).parse(await res.json());
  return { parents: commit.parents.map((p) => p.sha), message: commit.message };
}

/** An update PR with CI green, merged and deployed to every host; returns its succeeded rollout. */
async function deployedUpdate(generation: number): Promise<RolloutView> {
  const files = Object.fromEntries(HOSTS.map((name) => [`hosts/${name}.txt`, `${name} generation ${generation}`]));
  const pr = await emulator.openPullRequest({ head: `update-${generation}-${Date.now()}`, title: "flake.lock: Update", labels: ["automated"], files, message: "flake.lock: Update" });
  await emulator.setCheckRun(pr.head.sha, { name: "build", status: "completed", conclusion: "success" });
  await emulator.flushWebhooks();
  await eventually(`update PR #${pr.number} with CI green`, async () => {
    const { updatePrs } = await call(z.object({ updatePrs: z.array(z.object({ number: z.number(), ciState: z.string() })) }), "/api/update-prs");
    return updatePrs.some((p) => p.number === pr.number && p.ciState === "success");
  });
  const { rollout } = await call(z.object({ rollout: RolloutView }), `/api/update-prs/${pr.number}/merge-and-deploy`, { body: {} });
  const done = await settled(rollout.id);
  expect(done.state, JSON.stringify(done.failure)).toBe("succeeded");
  return done;
}

describeWithNix("reverting an update on demand, with three real agents and the GitHub emulator", () => {
  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-revert-"));
    github = await startGitHubFleet({
      root,
      hosts: HOSTS,
      webhookSecret: SECRET,
      token: TOKEN,
      pollTimeoutSeconds: POLL_SECONDS,
      vars: { ROLLOUT_CANARY_SOAK_SECONDS: "1", ROLLOUT_WAVE_SIZE: "2" },
      packages: {},
    });
    ({ cp, emulator } = github);
    for (const agent of github.agents) agents.set(agent.name, agent);
    await deployMainEverywhere(github, eventually);
  }, 300_000);

  afterAll(async () => {
    await github?.stop();
    if (root) await removeHostRoot(root);
  });

  it("refuses bad input with 400, an unknown rollout with 404, and changes nothing", async () => {
    const first = (await call(z.object({ rollouts: z.array(RolloutView) }), "/api/rollouts")).rollouts.at(-1)!;
    for (const body of [{}, { strategy: "alert-only" }, { strategy: "revert-commit", force: true }, "revert"]) {
      const answer = await postRevert(first.id, body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(ErrorBody.parse(answer.body).error.message).not.toBe("");
    }
    const unknown = await postRevert("ro_nosuchrollout0000", { strategy: "revert-commit" });
    expect(unknown.status).toBe(404);
    expect(ErrorBody.parse(unknown.body).error.code).toBe("rollout_not_found");
    expect((await getRollout(first.id)).revert).toBeUndefined();
  });

  it("reverts a succeeded update on main (a second request meanwhile gets 409), and the revert commit's rollout goes green on every host", async () => {
    const update = await deployedUpdate(2);
    expect(await fileOnMain("hosts/h1.txt")).toBe("h1 generation 2");
    const [one, other] = await Promise.all([postRevert(update.id, { strategy: "revert-commit" }), postRevert(update.id, { strategy: "revert-commit" })]);
    const statuses = [one.status, other.status].sort();
    expect(statuses).toEqual([200, 409]);
    // The first is carried out on GitHub (several round trips) before it answers; the second comes meanwhile.
    expect(ErrorBody.parse((one.status === 409 ? one : other).body).error.code).toBe("revert_under_way");
    const reverted = RevertRolloutResponse.parse((one.status === 200 ? one : other).body).rollout;
    expect(reverted.revert).toMatchObject({ kind: "revert-commit", state: "opened", by: expect.any(String), rollout: expect.stringMatching(/^ro_/) });
    expect(reverted.revert?.note).toBeUndefined();

    // The revert commit is main's head: on top of the merge, restoring what was there before it.
    const head = (await emulator.branchSha("main"))!;
    expect(reverted.revert?.url).toContain(head);
    const headCommit = await commitOf(head);
    expect(headCommit.parents).toEqual([update.commit]);
    expect(headCommit.message).toContain(`This reverts commit ${update.commit}`);
    expect(await fileOnMain("hosts/h1.txt")).toBe("h1 generation 1");

    const again = await settled(reverted.revert!.rollout!);
    expect(again).toMatchObject({ state: "succeeded", commit: head, done: HOSTS.length, total: HOSTS.length });
    expect(again.waves[0]).toMatchObject({ canary: true, hosts: [expect.objectContaining({ name: "h0" })] });
    for (const name of HOSTS) {
      const command = (await hostCommands(name)).find((c) => c.actor === `rollout ${again.id}`);
      expect(command?.result?.commitAfter).toBe(head);
    }
    // Asked again once reverted: 409, nothing new on main.
    const twice = await postRevert(update.id, { strategy: "revert-commit" });
    expect(twice.status).toBe(409);
    expect(await emulator.branchSha("main")).toBe(head);
    const audit = await call(z.object({ entries: z.array(z.object({ action: z.string(), target: z.string().nullable() })) }), "/api/audit?limit=100");
    expect(audit.entries.filter((e) => e.target === update.id).map((e) => e.action)).toEqual(expect.arrayContaining(["rollout.revert-requested", "rollout.revert-opened"]));
  });

  it("under branch protection opens a revert PR instead, and the answer and the history say so", async () => {
    const update = await deployedUpdate(3);
    const headBefore = await emulator.branchSha("main");
    emulator.requirePullRequests(true);
    try {
      const reverted = await revert(update.id, "revert-commit");
      expect(reverted.revert).toMatchObject({ kind: "revert-pr", state: "opened", note: expect.stringMatching(/refused the push to main.*revert PR was opened instead/) });
      expect(reverted.revert?.rollout).toBeUndefined();
      expect(await emulator.branchSha("main")).toBe(headBefore);
      const pull = (await emulator.openPullRequests()).find((pr) => pr.htmlUrl === reverted.revert?.url);
      expect(pull?.head.ref).toMatch(/^nixfleet\/revert-/);
      expect(pull?.labels).toContain("nixfleet-revert");
      const history = (await call(z.object({ rollouts: z.array(RolloutView) }), "/api/rollouts")).rollouts.find((r) => r.id === update.id);
      expect(history?.revert?.note).toBe(reverted.revert?.note);
    } finally {
      emulator.requirePullRequests(false);
    }
  });

  it("an update that is not the latest, whose file a later commit changed again, is not reverted on main: the answer says so and a revert PR opens for a person to resolve", async () => {
    const update = await deployedUpdate(4);
    const before = (await commitOf(update.commit)).parents[0]!;
    await emulator.pushCommit({ files: { "hosts/h0.txt": "h0 generation 5" }, message: "h0: generation 5" });
    await emulator.flushWebhooks();
    const headBefore = await emulator.branchSha("main");

    const refused = await revert(update.id, "revert-commit");
    expect(refused.revert).toMatchObject({ kind: "revert-commit", state: "failed", before });
    expect(refused.revert?.error).toMatch(/hosts\/h0\.txt changed on main after .*does not apply.*revert PR.*commit before it/);
    expect(await emulator.branchSha("main")).toBe(headBefore);

    const proposed = await revert(update.id, "revert-pr");
    expect(proposed.revert).toMatchObject({ kind: "revert-pr", state: "opened", note: expect.stringContaining("needs a person to resolve") });
    const pull = (await emulator.openPullRequests()).find((pr) => pr.htmlUrl === proposed.revert?.url);
    expect(pull?.head.ref).toMatch(/^nixfleet\/revert-/);
    // Branched from the update itself: its one commit restores the files as they were before the update.
    expect((await commitOf(pull!.head.sha)).parents).toEqual([update.commit]);
    expect(await emulator.branchSha("main")).toBe(headBefore);
  });
});
