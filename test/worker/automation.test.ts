// The Automation object for real (workerd, its own SQLite storage, its alarm, real D1) with the
// local GitHub emulator as GitHub (the `automation` project: AUTOMATION_MERGE_DELAY_MINUTES
// 0.05 = 3 s). The repository state reaches D1 the way the 5-minute cron reads it.
// Each test leaves its update PR merged or closed, so the next one's PR is not superseded.
// What the automation announces reaches a webhook channel (saved in the settings) whose receiver is
// caught at fetch, as in notifier.test.ts: the event as the Notifier sends it.
import { env, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { NotificationEvent, SettingsResponse, UpdatePrAutomation, type Settings } from "../../common/protocol.ts";
import { automation } from "../../worker/automation.ts";
import { coordinator } from "../../worker/coordinator.ts";
import { openDatabase } from "../../worker/db/client.ts";
import { getPullRequest } from "../../worker/db/github.ts";
import { readGitHubConfig } from "../../worker/github/config.ts";
import { githubContext, requireClient } from "../../worker/github/context.ts";
import { REVERT_BRANCH_PREFIX, REVERT_PR_LABEL } from "../../worker/github/revert-pull.ts";
import { refreshRepoState } from "../../worker/update-prs/refresh.ts";
import { deliver, errorOf, getRepo, getUpdatePrs, send, storedDelivery } from "./github-helpers.ts";
import { api } from "./helpers.ts";

const API = env.GITHUB_API_URL!;
const stub = () => automation(env);

const Snapshot = z.object({ number: z.number(), state: z.string(), merged: z.boolean(), head: z.object({ sha: z.string() }), mergeCommitSha: z.string().nullable() });

async function emulator(path: string, body?: unknown, method = "POST"): Promise<unknown> {
  const res = await fetch(`${API}${path}`, {
    method,
    headers: { "content-type": "application/json", authorization: `token ${env.GITHUB_TOKEN}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.status === 204 ? null : res.json();
}

const openUpdatePr = async () => Snapshot.parse(await emulator("/_emulator/update-pr", {}));
const ciGreen = (sha: string) => emulator(`/_emulator/commits/${sha}/statuses`, { state: "success", context: "ci" });
const pullOnGitHub = async (n: number) => {
  const pull = z.object({ state: z.string(), merged: z.boolean(), merge_commit_sha: z.string().nullable(), head: z.object({ sha: z.string() }) });
  return pull.parse(await emulator(`/repos/example/fleet/pulls/${n}`, undefined, "GET"));
};

/** What the cron does: re-read GitHub into D1, then let the automation look at every update PR. */
async function cron(): Promise<void> {
  const result = await refreshRepoState(env, openDatabase(env.DB));
  if (!result.ok) throw new Error(`refresh failed: ${result.message}`);
  await stub().reconsiderAll();
}

async function view(pr: number): Promise<UpdatePrAutomation | null> {
  const views = await stub().views([pr]);
  return views[pr] ? UpdatePrAutomation.parse(views[pr]) : null;
}

async function until<T>(what: string, read: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The audit log's merge attempts on one PR, by result. */
async function mergeAttempts(pr: number): Promise<string[]> {
  const rows = await env.DB.prepare("select result from audit_log where action = 'update-pr.merge' and target = ? order by id")
    .bind(`example/fleet#${pr}`)
    .all<{ result: string }>();
  return rows.results.map((r) => (r.result.startsWith("refused") ? "refused" : r.result));
}

const sleepUntil = async (iso: string) => {
  const ms = Date.parse(iso) - Date.now();
  if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms + 20));
};

/** The webhook channel the automation's merge outcomes go to; its receiver is never reached over the network. */
const RECEIVER = "http://127.0.0.1:9/automation-hook";
const told: NotificationEvent[] = [];
const realFetch = globalThis.fetch;

beforeAll(async () => {
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const request = new Request(input, init);
    if (request.url !== RECEIVER) return realFetch(request);
    told.push(NotificationEvent.parse(await request.json()));
    return new Response("ok");
  });
  const { settings } = SettingsResponse.parse(await (await api("/api/settings")).json());
  const channel = { kind: "webhook", id: "ch_automation", url: RECEIVER, events: ["merged", "merge-failed"] };
  const res = await api("/api/settings", { method: "PUT", json: { ...settings, notifications: [channel] } });
  expect(res.status, await res.clone().text()).toBe(200);
});
afterAll(() => {
  vi.restoreAllMocks();
});

/** The event with this id, once the Notifier has sent it to the channel (its alarm runs for real). */
const toldAs = (id: string) => until(`the event ${id}`, async () => told.filter((e) => e.id === id), (events) => events.length > 0);

describe("the Automation object against the GitHub emulator", () => {
  // First: an eviction waits for every request the object is still inside, and a test that ran its alarm
  // through runInDurableObject leaves that request open for about 30 s.
  it("the object evicted between scheduling and the alarm still merges once", async () => {
    const pr = await openUpdatePr();
    await ciGreen(pr.head.sha);
    await cron();
    expect((await view(pr.number))?.state).toBe("scheduled");
    await evictDurableObject(stub());
    const done = await until("the merge after the eviction", () => view(pr.number), (v) => v?.state === "merged" || v?.state === "deployed");
    expect(done!.mergeCommitSha).toBe((await pullOnGitHub(pr.number)).merge_commit_sha);
    await cron();
    expect(await mergeAttempts(pr.number)).toEqual(["merged"]);
  });

  it("schedules the merge at CI green + the delay; the alarm firing twice (and the real one) merges once", async () => {
    const pr = await openUpdatePr();
    await cron();
    expect((await view(pr.number))?.state).toBe("waiting-ci");
    await ciGreen(pr.head.sha);
    await cron();
    const scheduled = (await view(pr.number))!;
    expect(scheduled.state).toBe("scheduled");
    expect(Date.parse(scheduled.mergeAt!) - Date.parse(scheduled.ciPassedAt!)).toBe(3000);
    expect(scheduled.timeline.map((t) => t.text)).toContain("CI passed");

    await sleepUntil(scheduled.mergeAt!);
    await runInDurableObject(stub(), async (instance) => {
      await Promise.all([instance.alarm(), instance.alarm()]);
    });
    const done = await until("the merge", () => view(pr.number), (v) => v?.state === "merged" || v?.state === "deployed");
    const github = await pullOnGitHub(pr.number);
    expect(github.merged).toBe(true);
    expect(done!.mergeCommitSha).toBe(github.merge_commit_sha);
    // No host is enrolled here: the rollout is refused, and the record says why.
    expect(done!.reason).toMatch(/no rollout started: no host/);
    // The real alarm may have run too; one merge either way, and another alarm changes nothing.
    await runInDurableObject(stub(), (instance) => instance.alarm());
    expect(await mergeAttempts(pr.number)).toEqual(["merged"]);
    // Announced once, naming the PR and GitHub's merge commit.
    const mergedEvents = await toldAs(`merged:${pr.number}`);
    expect(mergedEvents).toEqual([
      expect.objectContaining({
        event: "merged",
        title: `Update PR #${pr.number} merged`,
        text: expect.stringContaining(`Merged by the automation as ${github.merge_commit_sha!.slice(0, 7)}.`),
        url: expect.stringMatching(new RegExp(`/pull/${pr.number}$`)),
        pr: pr.number,
        commit: github.merge_commit_sha,
      }),
    ]);
  });

  it("a new head during the delay moves the schedule to its own CI green, and that head is merged", async () => {
    const pr = await openUpdatePr();
    await ciGreen(pr.head.sha);
    await cron();
    const first = (await view(pr.number))!;
    expect(first.state).toBe("scheduled");
    const moved = Snapshot.parse(await emulator("/_emulator/update-pr", {}));
    expect(moved.number).toBe(pr.number);
    expect(moved.head.sha).not.toBe(pr.head.sha);
    await cron();
    const waiting = (await view(pr.number))!;
    expect(waiting).toMatchObject({ state: "waiting-ci", headSha: moved.head.sha, mergeAt: null });
    expect(waiting.timeline.at(-1)!.text).toBe(`rescheduled: new commit ${moved.head.sha.slice(0, 7)}`);
    // The old head's alarm time passes: nothing is merged.
    await sleepUntil(first.mergeAt!);
    await runInDurableObject(stub(), (instance) => instance.alarm());
    expect((await pullOnGitHub(pr.number)).merged).toBe(false);

    await ciGreen(moved.head.sha);
    await cron();
    const rescheduled = (await view(pr.number))!;
    expect(rescheduled.state).toBe("scheduled");
    expect(Date.parse(rescheduled.mergeAt!)).toBeGreaterThan(Date.parse(first.mergeAt!));
    await until("the new head merged", () => view(pr.number), (v) => v?.state === "merged" || v?.state === "deployed");
    const github = await pullOnGitHub(pr.number);
    expect(github).toMatchObject({ merged: true, head: { sha: moved.head.sha } });
    const audit = await env.DB.prepare("select details from audit_log where action = 'update-pr.merge' and target = ?").bind(`example/fleet#${pr.number}`).all<{ details: string }>();
    expect(audit.results.map((r) => JSON.parse(r.details).headSha)).toEqual([moved.head.sha]);
  });

  it("a merge GitHub refuses is recorded as failed with GitHub's reason and not retried", async () => {
    await emulator("/_emulator/require-checks", { required: ["build"] }, "PUT");
    try {
      const pr = await openUpdatePr();
      // Green by a commit status, but the branch protection wants a check named "build".
      await ciGreen(pr.head.sha);
      await cron();
      const failed = await until("the refusal", () => view(pr.number), (v) => v?.state === "failed");
      expect(failed!.reason).toMatch(/GitHub refused the merge: .*build/);
      expect(failed!.timeline.at(-1)!.text).toMatch(/^merge refused:/);
      await cron();
      await runInDurableObject(stub(), (instance) => instance.alarm());
      expect((await view(pr.number))?.state).toBe("failed");
      expect(await mergeAttempts(pr.number)).toEqual(["refused"]);
      expect(await toldAs(`merge-failed:${pr.number}:${pr.head.sha}`)).toEqual([
        expect.objectContaining({
          event: "merge-failed",
          title: `Update PR #${pr.number} was not merged`,
          text: expect.stringMatching(/^GitHub refused the merge: .*build/),
          pr: pr.number,
          commit: pr.head.sha,
        }),
      ]);
      // Closing it afterwards is a cancel like any other, said as such.
      await emulator(`/_emulator/pulls/${pr.number}/close`);
      await cron();
      expect(await view(pr.number)).toMatchObject({ state: "off", reason: "closed without merging" });
      expect(await mergeAttempts(pr.number)).toEqual(["refused"]);
    } finally {
      await emulator("/_emulator/require-checks", { required: false }, "PUT");
    }
  });

  it("Skip leaves the head alone, a new head is considered again; Merge now is refused while CI is not green, then merges at once", async () => {
    const pr = await openUpdatePr();
    await cron();
    const refused = await send(new Request(`http://localhost/api/update-prs/${pr.number}/merge-now`, { method: "POST" }));
    expect(refused.status).toBe(409);
    expect((await errorOf(refused)).code).toBe("ci_not_green");

    const skipped = await send(new Request(`http://localhost/api/update-prs/${pr.number}/skip`, { method: "POST" }));
    expect(skipped.status).toBe(200);
    await ciGreen(pr.head.sha);
    await cron();
    const left = (await view(pr.number))!;
    expect(left.state).toBe("skipped");
    expect(left.reason).toMatch(/skipped by developer@localhost/);
    const audit = await env.DB.prepare("select actor from audit_log where action = 'update-pr.skip' and target = ?").bind(`example/fleet#${pr.number}`).all<{ actor: string }>();
    expect(audit.results).toEqual([{ actor: "developer@localhost" }]);

    const moved = Snapshot.parse(await emulator("/_emulator/update-pr", {}));
    await cron();
    expect((await view(pr.number))).toMatchObject({ state: "waiting-ci", headSha: moved.head.sha });
    await ciGreen(moved.head.sha);
    await cron();
    expect((await view(pr.number))?.state).toBe("scheduled");

    const now = await send(new Request(`http://localhost/api/update-prs/${pr.number}/merge-now`, { method: "POST" }));
    expect(now.status, await now.clone().text()).toBe(200);
    const body = z.object({ automation: UpdatePrAutomation }).parse(await now.json());
    expect(["merged", "deployed"]).toContain(body.automation.state);
    expect(body.automation.timeline.map((t) => t.text)).toContain("merging now (by developer@localhost)");
    expect((await pullOnGitHub(pr.number)).merged).toBe(true);
    expect(await mergeAttempts(pr.number)).toEqual(["merged"]);

    const list = await send(new Request("http://localhost/api/update-prs"));
    expect(list.status).toBe(200);
  });

  it("a PR that conflicts with its base when the alarm comes is failed without a merge attempt", async () => {
    const pr = await openUpdatePr();
    await ciGreen(pr.head.sha);
    await cron();
    expect((await view(pr.number))?.state).toBe("scheduled");
    // Someone changes flake.lock on main meanwhile: the PR no longer merges cleanly.
    await emulator("/_emulator/push", { files: { "flake.lock": '{ "nodes": {}, "root": "root", "version": 7 }\n' }, message: "hand-edited lock" });
    const failed = await until("the conflict", () => view(pr.number), (v) => v?.state === "failed");
    expect(failed!.reason).toMatch(/conflict/);
    expect(await mergeAttempts(pr.number)).toEqual([]);
    expect((await pullOnGitHub(pr.number)).merged).toBe(false);
    // Told like a merge GitHub refuses: the same event, once for this head.
    expect(await toldAs(`merge-failed:${pr.number}:${pr.head.sha}`)).toEqual([
      expect.objectContaining({ event: "merge-failed", title: `Update PR #${pr.number} was not merged`, text: expect.stringContaining("GitHub cannot merge it (a conflict with the base branch)"), pr: pr.number, commit: pr.head.sha }),
    ]);
  });

  it("GET /api/update-prs fills each open update PR's automation", async () => {
    const pr = await openUpdatePr();
    await cron();
    const res = await send(new Request("http://localhost/api/update-prs"));
    const body = z.object({ updatePrs: z.array(z.object({ number: z.number(), automation: UpdatePrAutomation.nullable() })) }).parse(await res.json());
    const listed = body.updatePrs.find((p) => p.number === pr.number);
    expect(listed?.automation).toMatchObject({ state: "waiting-ci", headSha: pr.head.sha });
  });

  it("Merge now is refused with the reason while flake updates are turned off, and merges nothing", async () => {
    const pr = await openUpdatePr();
    await ciGreen(pr.head.sha);
    await cron();
    // Through the whole Worker (its settings route), as the Settings page saves them.
    const putSettings = async (flakeUpdates: boolean) => {
      const { settings } = SettingsResponse.parse(await (await api("/api/settings")).json());
      const res = await api("/api/settings", { method: "PUT", json: { ...settings, flakeUpdates: { enabled: flakeUpdates } } });
      expect(res.status, await res.clone().text()).toBe(200);
    };
    await putSettings(false);
    try {
      const refused = await send(new Request(`http://localhost/api/update-prs/${pr.number}/merge-now`, { method: "POST" }));
      expect(refused.status).toBe(409);
      const error = await errorOf(refused);
      expect(error.code).toBe("merge_not_allowed");
      expect(error.message).toMatch(/flake updates are turned off/);
      expect((await pullOnGitHub(pr.number)).merged).toBe(false);
      expect(await mergeAttempts(pr.number)).toEqual([]);
    } finally {
      await putSettings(true);
    }
  });
});

/** Closes every open pull request: an update PR an earlier test left open (conflicting, say) would be reused. */
async function closeOpenPullRequests(): Promise<void> {
  const open = z.array(z.object({ number: z.number() })).parse(await emulator("/repos/example/fleet/pulls?state=open", undefined, "GET"));
  for (const pr of open) await emulator(`/_emulator/pulls/${pr.number}/close`);
}

/** Saves the settings through the whole Worker (its settings route), as the Settings page does. */
async function saveSettings(change: (settings: Settings) => Settings): Promise<void> {
  const { settings } = SettingsResponse.parse(await (await api("/api/settings")).json());
  const res = await api("/api/settings", { method: "PUT", json: change(settings) });
  expect(res.status, await res.clone().text()).toBe(200);
}

const Commit = z.object({ sha: z.string(), parents: z.array(z.object({ sha: z.string() })) });
const parentsOf = async (sha: string) => Commit.parse(await emulator(`/repos/example/fleet/git/commits/${sha}`, undefined, "GET")).parents.map((p) => p.sha);
const mainHead = async () => z.object({ commit: z.object({ sha: z.string() }) }).parse(await emulator("/repos/example/fleet/branches/main", undefined, "GET")).commit.sha;

/** The merge method of each merge attempt on one PR, with its result, from the audit log. */
async function mergeMethods(pr: number): Promise<Array<{ method: string; result: string }>> {
  const rows = await env.DB.prepare("select details, result from audit_log where action = 'update-pr.merge' and target = ? order by id")
    .bind(`example/fleet#${pr}`)
    .all<{ details: string; result: string }>();
  return rows.results.map((r) => ({ method: z.object({ method: z.string() }).parse(JSON.parse(r.details)).method, result: r.result.startsWith("refused") ? "refused" : r.result }));
}

describe("merging with the configured merge method", () => {
  it("Merge and Merge & Deploy without a method merge with automation.mergeMethod: a squash-only repository takes both", async () => {
    await closeOpenPullRequests();
    await emulator("/_emulator/merge-methods", { allowed: ["squash"] }, "PUT");
    // The automation stays out of it: the dashboard's buttons are what is tried here.
    await saveSettings((s) => ({ ...s, automation: { ...s.automation, enabled: false, mergeMethod: "squash" } }));
    try {
      const first = await openUpdatePr();
      await cron();
      // Asked for by name, a merge commit is what this repository refuses.
      const named = await send(new Request(`http://localhost/api/update-prs/${first.number}/merge`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ method: "merge" }) }));
      expect(named.status).toBe(409);
      expect(await errorOf(named)).toMatchObject({ code: "merge_refused", message: "GitHub refused the merge: Merge commits are not allowed on this repository." });
      const before = await mainHead();
      const merged = await send(new Request(`http://localhost/api/update-prs/${first.number}/merge`, { method: "POST" }));
      expect(merged.status, await merged.clone().text()).toBe(200);
      const { sha } = z.object({ sha: z.string() }).parse(await merged.json());
      expect(await parentsOf(sha)).toEqual([before]);
      expect(await mergeMethods(first.number)).toEqual([
        { method: "merge", result: "refused" },
        { method: "squash", result: "merged" },
      ]);

      const second = await openUpdatePr();
      expect(second.number).not.toBe(first.number);
      await ciGreen(second.head.sha);
      await cron();
      const head = await mainHead();
      const deployed = await send(new Request(`http://localhost/api/update-prs/${second.number}/merge-and-deploy`, { method: "POST" }));
      // No host is enrolled here: merged, and no rollout to start.
      expect(deployed.status, await deployed.clone().text()).toBe(409);
      expect((await errorOf(deployed)).code).toBe("merged_not_deployed");
      const github = await pullOnGitHub(second.number);
      expect(github.merged).toBe(true);
      expect(await parentsOf(github.merge_commit_sha!)).toEqual([head]);
      expect(await mergeMethods(second.number)).toEqual([{ method: "squash", result: "merged" }]);
    } finally {
      await emulator("/_emulator/merge-methods", { allowed: ["merge", "squash", "rebase"] }, "PUT");
      await saveSettings((s) => ({ ...s, automation: { ...s.automation, enabled: true, mergeMethod: "merge" } }));
    }
  });
});

const Delivery = z.object({ id: z.string(), event: z.string(), payload: z.record(z.string(), z.unknown()), body: z.string() });
const forwarded = new Set<string>();

/**
 * The webhooks the emulator recorded for these pull requests and for pushes to main or a revert branch,
 * delivered to the Worker's webhook route as GitHub would have (same delivery id, same signed body).
 * The other files of this project use the same emulator: their events are left alone.
 */
async function forwardWebhooks(prs: number[]): Promise<Array<{ event: string; outcome: string; reason: string | null }>> {
  await emulator("/_emulator/flush-webhooks");
  const all = z.array(Delivery).parse(await emulator("/_emulator/deliveries", undefined, "GET"));
  const ours = all.filter((d) => {
    if (forwarded.has(d.id)) return false;
    if (d.event === "pull_request") return prs.includes(Number(d.payload["number"]));
    const ref = String(d.payload["ref"] ?? "");
    return d.event === "push" && (ref === "refs/heads/main" || ref.startsWith(`refs/heads/${REVERT_BRANCH_PREFIX}`));
  });
  const results = [];
  for (const delivery of ours) {
    forwarded.add(delivery.id);
    const { response } = await deliver(delivery.event, delivery.payload, { id: delivery.id, body: delivery.body });
    expect(response.status, await response.clone().text()).toBeLessThan(300);
    const stored = (await storedDelivery(delivery.id))!;
    results.push({ event: `${delivery.event}${typeof delivery.payload["action"] === "string" ? `.${delivery.payload["action"]}` : ""}`, outcome: stored.outcome, reason: stored.error });
  }
  return results;
}

const stored = (number: number) => getPullRequest(openDatabase(env.DB), "example/fleet", number);

describe("the revert PR", () => {
  it.each(["merge", "squash", "rebase"] as const)(
    "is never an update PR under %s merging: opened, labelled, synced, merged and its merge commit pushed, while the update PR it reverts is one",
    async (method) => {
      await closeOpenPullRequests();
      const update = await openUpdatePr();
      await forwardWebhooks([update.number]);
      expect(await stored(update.number)).toMatchObject({ isUpdatePr: true, state: "open" });
      expect((await getUpdatePrs()).map((pr) => pr.number)).toContain(update.number);
      const merge = z.object({ sha: z.string() }).parse(await emulator(`/repos/example/fleet/pulls/${update.number}/merge`, { merge_method: method }, "PUT"));
      await forwardWebhooks([update.number]);

      // Titled after the update it reverts, as a person reads it: the title alone matches the update-PR rule.
      const title = `Revert "flake.lock: Update" (#${update.number})`;
      expect(title).toContain(readGitHubConfig(env).updatePrRule.titlePattern);
      const revert = await requireClient(githubContext(env, openDatabase(env.DB))).createRevertPull({ commitSha: merge.sha, base: "main", title });
      expect(revert.headRef.startsWith(REVERT_BRANCH_PREFIX)).toBe(true);
      expect(revert.labelProblem).toBeNull();
      const labels = z.array(z.object({ name: z.string() })).parse(await emulator(`/repos/example/fleet/issues/${revert.number}/labels`, undefined, "GET"));
      expect(labels.map((l) => l.name)).toEqual([REVERT_PR_LABEL]);

      const opened = await forwardWebhooks([revert.number]);
      expect(opened.filter((d) => d.event.startsWith("pull_request"))).toEqual([
        { event: "pull_request.opened", outcome: "ignored", reason: `pull request #${revert.number} is not an update PR (a revert PR NixFleet opened)` },
        { event: "pull_request.labeled", outcome: "ignored", reason: `pull request #${revert.number} is not an update PR (a revert PR NixFleet opened)` },
      ]);
      await cron();
      expect(await stored(revert.number)).toBeNull();
      expect((await getUpdatePrs()).map((pr) => pr.number)).not.toContain(revert.number);

      const reverted = z.object({ sha: z.string() }).parse(await emulator(`/repos/example/fleet/pulls/${revert.number}/merge`, { merge_method: method }, "PUT"));
      const closed = await forwardWebhooks([revert.number]);
      expect(closed.map((d) => d.event)).toEqual(["pull_request.closed", "push"]);
      expect(closed[0]).toMatchObject({ outcome: "ignored", reason: expect.stringContaining("a revert PR NixFleet opened") });
      expect(closed[1]).toMatchObject({ outcome: "processed" });
      // The push of its merge moves the fleet's target, and its message names flake.lock too.
      const { repo } = await getRepo();
      expect(repo?.head?.sha).toBe(reverted.sha);
      expect(repo?.head?.message.toLowerCase()).toContain("flake.lock");
      await cron();
      expect(await stored(revert.number)).toBeNull();
      expect(await view(revert.number)).toBeNull();
      expect((await coordinator(env).fleetBuildsFor([revert.number]))[revert.number]).toBeUndefined();
      expect(await stored(update.number)).toMatchObject({ isUpdatePr: true, state: "merged", mergeCommitSha: merge.sha });
    },
  );
});
