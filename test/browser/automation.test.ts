/**
 * The auto-merge timeline in Chromium against the real control plane and the GitHub emulator's
 * webhooks (AUTOMATION_ENABLED, a 90-second delay so that the countdown runs in seconds): the
 * banner shows "CI passed · auto-merge at … (in N s)" counting down without a reload, Skip this PR
 * leaves the head alone, a new commit is scheduled again, and Merge now merges it on GitHub.
 */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { exampleFlakeFiles } from "../../tools/github-emulator/example-flake.ts";
import { GitHubEmulator } from "../../tools/github-emulator/emulator.ts";
import { describeWithBrowser, openBrowser, type BrowserSession } from "./browser.ts";
import { startDashboard, type Dashboard } from "./dashboard.ts";
import { eventually } from "./helpers.ts";
import { removeHostRoot } from "../support/host-root.ts";

const SECRET = "automation-browser-secret";
const TOKEN = "github_pat_automation_browser";

describeWithBrowser("the auto-merge timeline in Chromium", () => {
  let dashboard: Dashboard;
  let github: GitHubEmulator;
  let session: BrowserSession;
  let page: Page;
  let root: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "nixfleet-browser-automation-"));
    // The emulator binds its port before the control plane is told its URL (a port merely found free could be taken meanwhile), then learns where to send webhooks.
    github = new GitHubEmulator({ owner: "example", repo: "fleet", workDir: join(root, "github"), webhookSecret: SECRET, token: TOKEN });
    const githubUrl = await github.start();
    dashboard = await startDashboard({
      GITHUB_REPOSITORY: "example/fleet",
      GITHUB_WEBHOOK_SECRET: SECRET,
      GITHUB_TOKEN: TOKEN,
      GITHUB_API_URL: githubUrl,
      AUTOMATION_ENABLED: "true",
      AUTOMATION_MERGE_DELAY_MINUTES: "1.5",
    });
    github.setWebhookUrl(`${dashboard.url}/webhooks/github`);
    const seed = await github.seed(exampleFlakeFiles(new Date()), "initial fleet");
    await eventually("the seed commit to be read", async () => JSON.stringify((await dashboard.api("/api/repo")).json).includes(`"sha":"${seed}"`));
    session = await openBrowser();
    page = session.page;
  });

  afterAll(async () => {
    await session?.close();
    await github?.stop();
    await dashboard?.stop();
    if (root) await removeHostRoot(root);
  });

  it("counts down to the merge, Skip leaves the head alone, a new head is scheduled again, Merge now merges it", async () => {
    const pr = await github.openFlakeUpdatePullRequest({});
    await github.setCheckRun(pr.head.sha, { name: "build", status: "completed", conclusion: "success" });
    await github.flushWebhooks();

    await page.goto(dashboard.url);
    await page.evaluate(() => Object.assign(window, { __nixfleetNoReload: true }));
    const line = page.locator("nf-automation-timeline [data-testid=automation-line]");
    await line.filter({ hasText: "auto-merge at" }).waitFor({ timeout: 30_000 });
    await expect.poll(() => line.textContent()).toMatch(/^CI passed \d\d:\d\d · auto-merge at \d\d:\d\d \(in \d+ s\)$/);
    const first = await line.textContent();
    // The countdown moves by itself.
    await expect.poll(() => line.textContent()).not.toBe(first);

    await page.locator("nf-automation-timeline #skip-pr").click();
    await line.filter({ hasText: "skipped by" }).waitFor({ timeout: 15_000 });
    await expect.poll(() => page.locator("nf-automation-timeline #skip-pr").count()).toBe(0);

    const next = await github.updatePullRequest(pr.number, { files: { "README.md": "a new commit on the update PR\n" }, message: "another lock commit" });
    await github.setCheckRun(next, { name: "build", status: "completed", conclusion: "success" });
    await github.flushWebhooks();
    await line.filter({ hasText: "auto-merge at" }).waitFor({ timeout: 15_000 });

    await page.locator("nf-automation-timeline #merge-now").click();
    await eventually("GitHub to merge the PR", async () => (await github.pullRequest(pr.number)).merged, 15_000);
    expect((await github.pullRequest(pr.number)).head.sha).toBe(next);
    // Merged: no update PR pending any more, and no reload happened.
    await page.locator("nf-update-pr-banner").waitFor({ state: "detached", timeout: 15_000 });
    expect(await page.evaluate(() => "__nixfleetNoReload" in window)).toBe(true);
    const audit = JSON.stringify((await dashboard.api("/api/audit?limit=50")).json);
    expect(audit).toContain("update-pr.skip");
    expect(audit).toContain("update-pr.merge-now");
  });
});
