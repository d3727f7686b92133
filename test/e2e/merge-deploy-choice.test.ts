/**
 * Merge & Deploy with a choice, end to end with real parts: the control plane on `wrangler dev`, the
 * GitHub emulator and four real agents with real Nix. Merge & Deploy to 2 of 4 hosts (the other two
 * get nothing and read "behind main"); a fleet build that failed on a host in scope refuses the merge
 * with 409 fleet_build_failed, until the host is left out (then "left behind on purpose") or an admin
 * overrides with a reason; and, with `requireCi` off, a repository without CI is auto-merged on the
 * fleet build alone.
 */
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { z } from "zod";
import { CommandView, ErrorBody, HostView, RolloutView, SettingsResponse, UpdatePr } from "../../common/protocol.ts";
import type { GitHubEmulator } from "../../tools/github-emulator/emulator.ts";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import { adminApi } from "../support/admin-api.ts";
import type { ControlPlane } from "../support/control-plane.ts";
import { tailOfLogs, type E2eAgent } from "../support/e2e-agent.ts";
import { deployMainEverywhere, startGitHubFleet, type GitHubFleet } from "../support/github-fleet.ts";
import { eventuallyWith } from "../support/wait.ts";
import { removeHostRoot } from "../support/host-root.ts";

vi.setConfig({ testTimeout: 240_000, hookTimeout: 300_000 });

const SECRET = "merge-deploy-choice-secret";
const TOKEN = "github_pat_merge_deploy_choice";
const HOSTS = ["m0", "m1", "m2", "m3"] as const;
const POLL_SECONDS = 5;

let root: string;
let cp: ControlPlane;
let emulator: GitHubEmulator;
let github: GitHubFleet | undefined;
let agents: E2eAgent[] = [];

const call = adminApi(() => cp.url);
const eventually = eventuallyWith({ timeoutMs: 150_000, intervalMs: 250, details: () => tailOfLogs(agents, 10) });

/** A POST whose refusal the test reads (adminApi throws on one). */
async function post(pathname: string, body: unknown): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${cp.url}${pathname}`, { method: "POST", headers: { origin: cp.url, "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

const updatePr = async (number: number) => (await call(z.object({ updatePrs: z.array(UpdatePr) }), "/api/update-prs")).updatePrs.find((pr) => pr.number === number) ?? null;
const hostViews = async () => (await call(z.object({ hosts: z.array(HostView) }), "/api/hosts")).hosts;
const getRollout = async (id: string) => (await call(z.object({ rollout: RolloutView }), `/api/rollouts/${id}`)).rollout;
const pullSwitchesSince = async (name: string, since: string) =>
  (await call(z.object({ commands: z.array(CommandView) }), `/api/hosts/${name}/commands`)).commands.filter((c) => c.createdAt >= since && c.kind === "pull-switch");
const audits = async (action: string) =>
  (await call(z.object({ entries: z.array(z.object({ action: z.string(), target: z.string().nullable(), details: z.unknown(), result: z.string() })) }), "/api/audit?limit=500")).entries.filter(
    (e) => e.action === action,
  );

const settledRollout = (id: string) =>
  eventually(`rollout ${id} to end`, async () => {
    const view = await getRollout(id);
    return ["succeeded", "failed", "cancelled"].includes(view.state) && view.finishedAt ? view : null;
  });

/** An update PR changing each host's file as `files` says; `ci`: a green check run on its head, or none at all. */
async function openUpdatePr(branch: string, files: Record<string, string>, ci: "green" | "none"): Promise<{ number: number; head: string }> {
  const pr = await emulator.openPullRequest({ head: branch, title: "flake.lock: Update", labels: ["automated"], files, message: "flake.lock: Update" });
  if (ci === "green") await emulator.setCheckRun(pr.head.sha, { name: "build", status: "completed", conclusion: "success" });
  await emulator.flushWebhooks();
  return { number: pr.number, head: pr.head.sha };
}

const buildVerdict = (number: number, head: string, verdict: "success" | "failure") =>
  eventually(`#${number}'s fleet build of ${head.slice(0, 7)} to end in ${verdict}`, async () => {
    const build = (await updatePr(number))?.fleetBuild;
    return build?.headSha === head && build.verdict === verdict && build.finishedAt ? build : null;
  });

/** Each named host at `commit`, every other one behind main (the git compartment's words) at what it ran before. */
async function expectHostsAt(commit: string, at: readonly string[]): Promise<void> {
  await eventually(`${at.join(", ")} at ${commit.slice(0, 7)}, the others behind main`, async () => {
    const views = await hostViews();
    return (
      views.length === HOSTS.length &&
      views.every((v) =>
        at.includes(v.name)
          ? v.report?.repo.commit.value === commit && v.compartments.git.state === "green"
          : v.report?.repo.commit.value !== commit && /^behind main: [0-9a-f]{7} → [0-9a-f]{7}/.test(v.compartments.git.reason),
      )
    );
  });
}

const hostFiles = (generation: number, patch: Record<string, string> = {}) => ({
  ...Object.fromEntries(HOSTS.map((name) => [`hosts/${name}.txt`, `${name} generation ${generation}`])),
  ...patch,
});

describeWithNix("Merge & Deploy to chosen hosts, the fleet build's refusal, and no CI, with four real agents", () => {
  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-merge-choice-"));
    github = await startGitHubFleet({
      root,
      hosts: HOSTS,
      webhookSecret: SECRET,
      token: TOKEN,
      pollTimeoutSeconds: POLL_SECONDS,
      vars: { ROLLOUT_CANARY_SOAK_SECONDS: "0", ROLLOUT_WAVE_SIZE: "2" },
      packages: {},
    });
    ({ cp, emulator, agents } = github);
    await deployMainEverywhere(github, eventually);
  }, 300_000);

  afterAll(async () => {
    await github?.stop();
    if (root) await removeHostRoot(root);
  });

  it("Merge & Deploy to 2 of 4 hosts: those two run the merge commit; the other two get no command and read behind main", async () => {
    const since = new Date().toISOString();
    const { number, head } = await openUpdatePr("update-chosen", hostFiles(2), "green");
    await buildVerdict(number, head, "success");
    const { rollout, merged } = await call(z.object({ rollout: RolloutView, merged: z.object({ sha: z.string() }) }), `/api/update-prs/${number}/merge-and-deploy`, {
      body: { hosts: ["m0", "m2"] },
    });
    expect(rollout.waves.flatMap((w) => w.hosts.map((h) => h.name))).toEqual(["m0", "m2"]);
    expect(rollout.leftOut).toEqual([
      { name: "m1", reason: "not selected" },
      { name: "m3", reason: "not selected" },
    ]);
    expect((await settledRollout(rollout.id)).state).toBe("succeeded");
    await expectHostsAt(merged.sha, ["m0", "m2"]);
    for (const name of ["m1", "m3"]) expect(await pullSwitchesSince(name, since)).toEqual([]);
  });

  it("a fleet build failed on a host in scope refuses the merge with 409 fleet_build_failed; left out, the host stays behind on purpose; an admin's reason overrides", async () => {
    const broken = await openUpdatePr("update-broken", hostFiles(3, { "hosts/m3.txt": "fail: m3 cannot build this" }), "green");
    await buildVerdict(broken.number, broken.head, "failure");

    const refused = await post(`/api/update-prs/${broken.number}/merge-and-deploy`, {});
    expect(refused.status).toBe(409);
    const error = ErrorBody.parse(refused.json).error;
    expect(error.code).toBe("fleet_build_failed");
    expect(error.message).toBe(
      `the fleet build of #${broken.number}'s head ${broken.head.slice(0, 7)} failed on m3: leave it out of the chosen hosts (m3 then stays behind main), or override with a reason`,
    );
    expect((await emulator.pullRequest(broken.number)).merged).toBe(false);
    // Naming the failed host is no way around it either.
    expect((await post(`/api/update-prs/${broken.number}/merge-and-deploy`, { hosts: ["m0", "m3"] })).status).toBe(409);

    // Left out on purpose: the merge goes ahead, and the update history says so.
    const deselected = await call(z.object({ rollout: RolloutView, merged: z.object({ sha: z.string() }) }), `/api/update-prs/${broken.number}/merge-and-deploy`, {
      body: { hosts: ["m0", "m1", "m2"] },
    });
    expect(deselected.rollout.leftOut).toEqual([{ name: "m3", reason: `left behind on purpose: not selected, its build of ${broken.head.slice(0, 7)} failed` }]);
    expect((await settledRollout(deselected.rollout.id)).state).toBe("succeeded");
    const history = (await call(z.object({ rollouts: z.array(RolloutView) }), "/api/rollouts?limit=5")).rollouts.find((r) => r.id === deselected.rollout.id);
    expect(history?.leftOut).toEqual(deselected.rollout.leftOut);
    await expectHostsAt(deselected.merged.sha, ["m0", "m1", "m2"]);
    expect(await audits("update-pr.override-fleet-build")).toEqual([]);

    // The admin override: merged with its reason audited; the failed host is still not deployed to.
    const again = await openUpdatePr("update-broken-again", hostFiles(4, { "hosts/m3.txt": "fail: m3 still cannot build this" }), "green");
    await buildVerdict(again.number, again.head, "failure");
    const overridden = await call(z.object({ rollout: RolloutView, merged: z.object({ sha: z.string() }) }), `/api/update-prs/${again.number}/merge-and-deploy`, {
      body: { overrideFleetBuild: { reason: "m3 is being retired this week" } },
    });
    expect(overridden.rollout.leftOut).toEqual([{ name: "m3", reason: `its build of ${again.head.slice(0, 7)} failed` }]);
    expect((await settledRollout(overridden.rollout.id)).state).toBe("succeeded");
    const [audit] = await audits("update-pr.override-fleet-build");
    expect(audit).toMatchObject({ target: `example/fleet#${again.number}`, result: "ok" });
    expect(audit?.details).toMatchObject({ hosts: ["m3"], reason: "m3 is being retired this week" });
    await expectHostsAt(overridden.merged.sha, ["m0", "m1", "m2"]);
  });

  it("with requireCi off, a repository without CI is auto-merged on the fleet build alone and rolled out to every host", async () => {
    const { settings } = await call(SettingsResponse, "/api/settings");
    await call(SettingsResponse, "/api/settings", {
      method: "PUT",
      body: { ...settings, automation: { ...settings.automation, enabled: true, requireCi: false, requireFleetBuild: true, mergeDelayMinutes: 0.05 } },
    });
    // m0's build waits for the gate: until it opens, the fleet build is pending and CI never reports.
    const gate = path.join(root, "gate-no-ci");
    const { number } = await openUpdatePr("update-no-ci", hostFiles(5, { "hosts/m0.txt": `wait:${gate}` }), "none");
    const waiting = await eventually(`#${number} waiting for its fleet build, CI not required`, async () => {
      const pr = await updatePr(number);
      return pr?.automation?.state === "waiting-fleet-build" ? pr : null;
    });
    expect(waiting.ciState).toBe("unknown");
    expect(waiting.automation).toMatchObject({ ciRequired: false, ciExpectedBy: null, reason: "waiting for the fleet build to pass" });
    expect((await emulator.pullRequest(number)).merged).toBe(false);

    await fs.writeFile(gate, "");
    const merged = await eventually(`#${number} merged by the automation`, async () => {
      const pr = await emulator.pullRequest(number);
      return pr.merged && pr.mergeCommitSha ? pr.mergeCommitSha : null;
    });
    // GitHub answers the merge before the control plane writes its audit entry.
    const merges = await eventually(`#${number}'s merge in the audit log`, async () => {
      const found = (await audits("update-pr.merge")).filter((e) => e.target === `example/fleet#${number}`);
      return found.length > 0 ? found : null;
    });
    expect(merges).toMatchObject([{ result: "merged" }]);
    const rollout = await eventually("the automation's rollout", async () => (await call(z.object({ rollouts: z.array(RolloutView) }), "/api/rollouts?limit=10")).rollouts.find((r) => r.commit === merged) ?? null);
    expect(rollout.automatic).toBe(true);
    expect((await settledRollout(rollout.id)).state).toBe("succeeded");
    await expectHostsAt(merged, HOSTS);
  });
});
