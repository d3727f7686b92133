/**
 * The update PR's actions besides Merge & Deploy, in Chromium against the real control plane, the
 * GitHub emulator and two real agents with real Nix: Refresh from GitHub reads a PR whose webhook
 * never arrived and says what it read (and shows GitHub's rate limit as a refusal); Merge (merge
 * only) shows GitHub's refusal under branch protection, then, reached from a Lock cell, merges
 * without a rollout, and the hosts read "behind main".
 */
import type { Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { z } from "zod";
import type { GitHubEmulator } from "../../tools/github-emulator/emulator.ts";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import type { RunningAgent } from "./agents.ts";
import { describeWithBrowser } from "./browser.ts";
import type { Dashboard } from "./dashboard.ts";
import { onEveryHost, startGitHubDashboard, type GitHubDashboard } from "./github-dashboard.ts";
import { fleetRow, menu } from "./helpers.ts";

const HOSTS = ["web1", "web2"];
/** Nothing listens on the discard port: a webhook sent there is lost, as a missed delivery is. */
const LOST_WEBHOOKS = "http://127.0.0.1:9/webhooks/github";

const RolloutsAnswer = z.object({ rollouts: z.array(z.object({ id: z.string() })) });

describeWithNix("the update PR's actions in the browser need real agents", () =>
  describeWithBrowser("Merge, Refresh from GitHub and the Lock cell in Chromium", () => {
    let fleet: GitHubDashboard;
    let dashboard: Dashboard;
    let github: GitHubEmulator;
    let page: Page;
    let seed: string;
    let agents: RunningAgent[];

    beforeAll(async () => {
      fleet = await startGitHubDashboard({ name: "update-pr-actions", hosts: HOSTS });
      ({ dashboard, github, page, agents, seed } = fleet);
      // Each host clones the seed, so its Git compartment has a commit to compare with main's.
      await onEveryHost(fleet, "pull", 60_000);
    });

    afterAll(() => fleet?.stop());

    it("Refresh from GitHub shows a rate limit as a refusal, then reads an update PR whose webhook was lost and says what it read", async () => {
      await page.goto(dashboard.url);
      await page.evaluate(() => Object.assign(window, { __nixfleetNoReload: true }));
      const refresh = page.locator("nf-fleet-header #refresh-github");
      const outcome = page.locator("nf-fleet-header [data-testid=refresh-outcome]");

      github.failNext({ method: "GET", path: "/repos/example/fleet", status: 429 });
      await refresh.click({ timeout: 30_000 });
      await outcome.filter({ hasText: "GitHub is rate limiting" }).waitFor({ timeout: 30_000 });
      expect(await outcome.getAttribute("role")).toBe("alert");
      await expect.poll(() => refresh.isEnabled()).toBe(true);

      github.setWebhookUrl(LOST_WEBHOOKS);
      const pr = await github.openPullRequest({
        head: "update_flake_lock_action",
        title: "flake.lock: Update",
        labels: ["automated"],
        files: Object.fromEntries(HOSTS.map((host) => [`hosts/${host}.txt`, `${host} after the update`])),
        message: "flake.lock: Update",
      });
      await github.flushWebhooks();
      github.setWebhookUrl(`${dashboard.url}/webhooks/github`);
      expect(await page.locator("nf-update-pr-banner").count()).toBe(0);

      await refresh.click();
      await outcome.filter({ hasText: "Read from GitHub at" }).waitFor({ timeout: 30_000 });
      await expect.poll(() => outcome.textContent()).toMatch(new RegExp(`main @ ${seed.slice(0, 7)} · 1 update PR open`));
      await page.locator("nf-update-pr-banner").filter({ hasText: `#${pr.number}` }).waitFor({ timeout: 15_000 });
      expect(await page.evaluate(() => "__nixfleetNoReload" in window)).toBe(true);
    });

    it("Merge shows GitHub's refusal under branch protection while CI fails, then from a Lock cell merges without a rollout: main moves and the hosts read behind main", async () => {
      const [pr] = await github.openPullRequests();
      expect(pr?.title).toBe("flake.lock: Update");
      github.requireChecks(true);
      // A commit status, not a check run: GitHub (and NixFleet) take a context's latest status as its state.
      await github.setCommitStatus(pr!.head.sha, "failure", "ci");
      await github.flushWebhooks();
      await page.goto(dashboard.url);
      await page.evaluate(() => Object.assign(window, { __nixfleetNoReload: true }));
      const banner = page.locator("nf-update-pr-banner");
      await banner.filter({ hasText: "CI failed" }).waitFor({ timeout: 30_000 });

      await banner.locator("#merge-only").click();
      const dialog = page.getByRole("dialog", { name: `Merge #${pr!.number} without deploying?` });
      await dialog.getByText("CI failed on this PR").waitFor();
      await dialog.getByRole("button", { name: "Merge", exact: true }).click();
      await dialog.getByRole("alert").filter({ hasText: "Merge refused" }).waitFor({ timeout: 30_000 });
      expect(await github.branchSha("main")).toBe(seed);
      await page.keyboard.press("Escape");
      await expect.poll(() => dialog.isVisible()).toBe(false);

      await github.setCommitStatus(pr!.head.sha, "success", "ci");
      await github.flushWebhooks();
      await banner.filter({ hasText: "CI passed" }).waitFor({ timeout: 30_000 });

      const lock = fleetRow(page, "web1").locator('button.cell[data-compartment="lock"]');
      await expect.poll(() => lock.getAttribute("title")).toContain(`Update PR pending`);
      await lock.click();
      await menu(page).getByRole("menuitem", { name: new RegExp(`Merge & Deploy #${pr!.number}`) }).waitFor();
      await menu(page).getByRole("menuitem", { name: new RegExp(`^Merge #${pr!.number}`) }).click();
      await dialog.getByRole("button", { name: "Merge", exact: true }).click();
      await expect.poll(() => dialog.isVisible(), { timeout: 30_000 }).toBe(false);

      const merged = await github.pullRequest(pr!.number);
      expect(merged.merged).toBe(true);
      const main = await github.branchSha("main");
      expect(main).not.toBe(seed);
      for (const host of HOSTS) {
        await expect
          .poll(() => fleetRow(page, host).locator('button.cell[data-compartment="git"]').getAttribute("title"), { timeout: 30_000 })
          .toContain(`behind main: ${seed.slice(0, 7)} → ${main!.slice(0, 7)}`);
      }
      await banner.waitFor({ state: "detached" });
      expect(RolloutsAnswer.parse((await dashboard.api("/api/rollouts")).json).rollouts).toEqual([]);
      const audit = JSON.stringify((await dashboard.api("/api/audit?limit=50")).json);
      expect(audit).toContain("update-pr.merge");
      expect(await page.evaluate(() => "__nixfleetNoReload" in window)).toBe(true);
    });
  }),
);
