/**
 * Auto-merge end to end with real parts: the control plane on `wrangler dev`
 * (AUTOMATION_ENABLED, a 3-second delay: AUTOMATION_MERGE_DELAY_MINUTES 0.05),
 * the GitHub emulator sending signed webhooks, and three real agents with real
 * Nix. An update PR whose CI turns green by webhook is merged after the delay
 * and rolled out to every host, and a local receiver gets the signed
 * "rollout-succeeded"; a red CI is never merged and "ci-failed" is received; a new head during
 * the delay moves the schedule; a CI webhook lost on the way is caught up by
 * the cron trigger.
 */
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { z } from "zod";
import { HostView, NotificationEvent, RolloutView, UpdatePr } from "../../common/protocol.ts";
import type { GitHubEmulator } from "../../tools/github-emulator/emulator.ts";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import { adminApi } from "../support/admin-api.ts";
import type { ControlPlane } from "../support/control-plane.ts";
import { everyHostReporting, tailOfLogs, type E2eAgent } from "../support/e2e-agent.ts";
import { startGitHubFleet, type GitHubFleet } from "../support/github-fleet.ts";
import { eventuallyWith } from "../support/wait.ts";
import { signatureValid, startWebhookReceiver, type WebhookReceiver } from "../support/webhook-receiver.ts";
import { removeHostRoot } from "../support/host-root.ts";

vi.setConfig({ testTimeout: 180_000, hookTimeout: 240_000 });

const SECRET = "automation-webhook-secret";
const TOKEN = "github_pat_automation";
const HOSTS = ["a0", "a1", "a2"] as const;
const POLL_SECONDS = 5;
const DELAY_MS = 3000;

let root: string;
let cp: ControlPlane;
let emulator: GitHubEmulator;
let github: GitHubFleet | undefined;
/** The admin's generic webhook channel: told when a rollout succeeds and when CI fails. */
let receiver: WebhookReceiver;
const SIGNING_SECRET = "automation-e2e-signing-secret";
let agents: E2eAgent[] = [];
/** While set, the emulator's webhook deliveries are lost on the way (the network, not the emulator, fails). */
let dropWebhooks = false;

const call = adminApi(() => cp.url);

const eventually = eventuallyWith({ timeoutMs: 90_000, intervalMs: 250, details: () => tailOfLogs(agents, 10) });

const updatePr = async (number: number) =>
  (await call(z.object({ updatePrs: z.array(UpdatePr) }), "/api/update-prs")).updatePrs.find((pr) => pr.number === number) ?? null;

const automationOf = (number: number, ok: (pr: UpdatePr) => boolean, what: string) =>
  eventually(`#${number}: ${what}`, async () => {
    const pr = await updatePr(number);
    return pr !== null && pr.automation !== null && ok(pr) ? pr : null;
  });

/** Merged on GitHub (the update PR then leaves GET /api/update-prs, which lists open ones). */
const mergedOnGitHub = (number: number) =>
  eventually(`#${number} merged on GitHub`, async () => {
    const pr = await emulator.pullRequest(number);
    return pr.merged && pr.mergeCommitSha !== null ? { mergeCommitSha: pr.mergeCommitSha, head: pr.head.sha } : null;
  });

const auditedMerges = async (number: number) =>
  (await call(z.object({ entries: z.array(z.object({ actor: z.string(), action: z.string(), target: z.string().nullable(), result: z.string() })) }), "/api/audit?limit=500")).entries
    .filter((e) => e.action === "update-pr.merge" && e.target === `example/fleet#${number}`)
    .map((e) => ({ actor: e.actor, result: e.result }));

/**
 * The audit log's merges of `number`, by whom and how they ended, once there
 * is one: GitHub answers the merge before the control plane writes its audit
 * entry, so the emulator can show it merged a moment before the log does.
 */
const mergesInAudit = (number: number) =>
  eventually(`#${number}'s merge in the audit log`, async () => {
    const merges = await auditedMerges(number);
    return merges.length > 0 ? merges : null;
  });

const rollouts = async () => (await call(z.object({ rollouts: z.array(RolloutView) }), "/api/rollouts?limit=50")).rollouts;

/** The rollout the automation started for `commit`, once it has ended. */
const automaticRollout = (commit: string) =>
  eventually(`the automatic rollout of ${commit.slice(0, 7)} to end`, async () => {
    const found = (await rollouts()).find((r) => r.commit === commit);
    return found && ["succeeded", "failed", "cancelled"].includes(found.state) && found.finishedAt ? found : null;
  }, { timeoutMs: 150_000 });

const hostFiles = (generation: number) => Object.fromEntries(HOSTS.map((name) => [`hosts/${name}.txt`, `${name} generation ${generation}`]));

async function openUpdatePr(generation: number): Promise<{ number: number; sha: string }> {
  const pr = await emulator.openPullRequest({ head: `update-${generation}`, title: "flake.lock: Update", labels: ["automated"], files: hostFiles(generation), message: "flake.lock: Update" });
  await emulator.flushWebhooks();
  return { number: pr.number, sha: pr.head.sha };
}

/** The notification `match` picks, once the channel has received it, with its signature checked. */
const notified = (what: string, match: (event: NotificationEvent) => boolean) =>
  eventually(`the ${what} notification`, async () => {
    for (const request of receiver.received) {
      const event = NotificationEvent.parse(JSON.parse(request.body));
      if (!match(event)) continue;
      expect(request.headers["x-nixfleet-event"]).toBe(event.event);
      expect(signatureValid(SIGNING_SECRET, request.body, request.headers["x-nixfleet-signature-256"])).toBe(true);
      return event;
    }
    return null;
  });

async function ci(sha: string, conclusion: "success" | "failure"): Promise<void> {
  await emulator.setCheckRun(sha, { name: "build", status: "completed", conclusion });
  await emulator.flushWebhooks();
}

/** Whether GitHub (the emulator) merged it, and as what. */
const onGitHub = async (number: number) => {
  const pr = await emulator.pullRequest(number);
  return { merged: pr.merged, state: pr.state, mergeCommitSha: pr.mergeCommitSha, head: pr.head.sha };
};

async function expectAllHostsAt(commit: string): Promise<void> {
  await eventually(`every host to report ${commit.slice(0, 7)}`, async () => {
    const { hosts } = await call(z.object({ hosts: z.array(HostView) }), "/api/hosts");
    return hosts.length === HOSTS.length && hosts.every((h) => h.report?.repo.commit.value === commit && h.compartments.system.state === "green");
  });
}

describeWithNix("auto-merge with three real agents, the GitHub emulator and the real control plane", () => {
  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-automation-"));
    receiver = await startWebhookReceiver();
    const channels = [{ kind: "webhook", id: "ch_admin", url: `${receiver.url}/hook`, secret: SIGNING_SECRET, events: ["rollout-succeeded", "ci-failed"] }];
    github = await startGitHubFleet({
      root,
      hosts: HOSTS,
      webhookSecret: SECRET,
      token: TOKEN,
      pollTimeoutSeconds: POLL_SECONDS,
      fetch: (input, init) => (dropWebhooks ? Promise.reject(new TypeError("fetch failed: connection reset (dropped by the test)")) : fetch(input, init)),
      vars: {
        NOTIFICATION_CHANNELS: JSON.stringify(channels),
        ROLLOUT_CANARY_SOAK_SECONDS: "0",
        // The canary, then the other two at once: the automation's rollouts wait on two switches in a row, not three.
        ROLLOUT_WAVE_SIZE: "2",
        AUTOMATION_ENABLED: "true",
        AUTOMATION_MERGE_DELAY_MINUTES: String(DELAY_MS / 60_000),
        // The merge waits on CI and the delay alone: a fleet build of each update PR by three hosts is
        // the subject of test/automation/rules.test.ts and merge-deploy-choice.test.ts (auto-merged on the fleet build).
        FLEET_BUILD_ON_UPDATE_PR: "false",
      },
      packages: {},
    });
    ({ cp, emulator, agents } = github);
    await eventually("three hosts to report", everyHostReporting(cp.url, HOSTS.length));
    // Every host runs the fleet's current configuration to start from.
    const first = await call(z.object({ rollout: RolloutView }), "/api/rollouts", { body: {} });
    expect((await automaticRollout(first.rollout.commit)).state).toBe("succeeded");
  }, 300_000);

  afterAll(async () => {
    await github?.stop();
    await receiver?.close();
    if (root) await removeHostRoot(root);
  });

  it("an update PR whose CI turns green by webhook is merged after the delay, and rolled out to every host", async () => {
    const pr = await openUpdatePr(2);
    await automationOf(pr.number, (p) => p.automation?.state === "waiting-ci", "waiting for CI");
    expect((await onGitHub(pr.number)).merged).toBe(false);
    await ci(pr.sha, "success");
    const scheduled = await automationOf(pr.number, (p) => p.automation?.state === "scheduled", "scheduled");
    const { ciPassedAt, mergeAt } = scheduled.automation!;
    expect(Date.parse(mergeAt!) - Date.parse(ciPassedAt!)).toBe(DELAY_MS);

    const github = await mergedOnGitHub(pr.number);
    expect(await mergesInAudit(pr.number)).toEqual([{ actor: "automation", result: "merged" }]);
    const rollout = await automaticRollout(github.mergeCommitSha);
    expect(rollout).toMatchObject({ state: "succeeded", automatic: true, startedBy: "automation", pr: pr.number, done: HOSTS.length });
    expect(Date.parse(rollout.startedAt)).toBeGreaterThanOrEqual(Date.parse(mergeAt!));
    await expectAllHostsAt(github.mergeCommitSha);
    // The admin hears how it went, on the signed webhook.
    const succeeded = await notified("rollout-succeeded", (e) => e.event === "rollout-succeeded" && e.rolloutId === rollout.id);
    expect(succeeded).toMatchObject({ pr: pr.number, commit: github.mergeCommitSha });
  });

  it("a red CI is never merged, and says why", async () => {
    const pr = await openUpdatePr(3);
    await ci(pr.sha, "failure");
    const failed = await automationOf(pr.number, (p) => p.automation?.state === "ci-failed", "CI failed");
    expect(failed.automation!.reason).toMatch(/CI failed on .* it will not be merged/);
    // Twice the delay passes with the PR unmerged; the notification is checked meanwhile.
    const delayPassedTwice = new Promise((resolve) => setTimeout(resolve, DELAY_MS * 2));
    const ciFailed = await notified("ci-failed", (e) => e.event === "ci-failed" && e.pr === pr.number);
    expect(ciFailed.title).toBe(`CI failed on update PR #${pr.number}`);
    expect(ciFailed.text).toMatch(/Failing checks:\ncheck run build \(suite \d+\): /);
    await delayPassedTwice;
    expect((await onGitHub(pr.number)).merged).toBe(false);
    expect((await updatePr(pr.number))?.automation?.state).toBe("ci-failed");
    await emulator.closePullRequest(pr.number);
    await emulator.flushWebhooks();
  });

  it("a new head during the delay moves the schedule to its own CI, and that head is merged and rolled out", async () => {
    const pr = await openUpdatePr(4);
    // The check run takes a moment to be stored: a green CI and, before the delay ends, a new commit.
    await ci(pr.sha, "success");
    await automationOf(pr.number, (p) => p.automation?.state === "scheduled", "scheduled");
    const next = await emulator.updatePullRequest(pr.number, { files: hostFiles(5), message: "flake.lock: Update again" });
    await emulator.flushWebhooks();
    const moved = await automationOf(pr.number, (p) => p.automation?.headSha === next && p.automation.state === "waiting-ci", "rescheduled for the new head");
    expect(moved.automation!.timeline.map((t) => t.text)).toContain(`rescheduled: new commit ${next.slice(0, 7)}`);
    await new Promise((resolve) => setTimeout(resolve, DELAY_MS + 500));
    expect((await onGitHub(pr.number)).merged).toBe(false);

    await ci(next, "success");
    const github = await mergedOnGitHub(pr.number);
    expect(github.head).toBe(next);
    expect(await mergesInAudit(pr.number)).toEqual([{ actor: "automation", result: "merged" }]);
    expect((await automaticRollout(github.mergeCommitSha)).state).toBe("succeeded");
    await expectAllHostsAt(github.mergeCommitSha);
  });

  it("a CI webhook lost on the way is caught up by the cron trigger, and the merge follows", async () => {
    const pr = await openUpdatePr(6);
    await automationOf(pr.number, (p) => p.automation?.state === "waiting-ci", "waiting for CI");
    dropWebhooks = true;
    try {
      await ci(pr.sha, "success");
    } finally {
      dropWebhooks = false;
    }
    expect(emulator.deliveries.at(-1)?.error ?? "").toMatch(/dropped by the test/);
    await new Promise((resolve) => setTimeout(resolve, DELAY_MS));
    expect((await updatePr(pr.number))?.automation?.state).toBe("waiting-ci");

    const res = await fetch(`${cp.url}/cdn-cgi/local/scheduled?cron=${encodeURIComponent("*/5 * * * *")}`);
    expect(res.ok).toBe(true);
    const github = await mergedOnGitHub(pr.number);
    expect(await mergesInAudit(pr.number)).toEqual([{ actor: "automation", result: "merged" }]);
    expect((await automaticRollout(github.mergeCommitSha)).state).toBe("succeeded");
    await expectAllHostsAt(github.mergeCommitSha);
  });
});
