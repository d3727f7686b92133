/**
 * Reverting in Chromium against the real control plane, the GitHub emulator and three real agents with
 * real Nix: "Revert this update…" in the Update history lands a revert commit on main and starts its
 * rollout; under a failed rollout whose strategy only alerts (`alert-only`), the fleet page offers spec
 * 002's three rollback options, and one of them opens a revert PR.
 */
import type { Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { z } from "zod";
import { RolloutView } from "../../common/protocol.ts";
import type { GitHubEmulator } from "../../tools/github-emulator/emulator.ts";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import type { RunningAgent } from "./agents.ts";
import { describeWithBrowser } from "./browser.ts";
import type { Dashboard } from "./dashboard.ts";
import { startGitHubDashboard, type GitHubDashboard } from "./github-dashboard.ts";
import { eventually } from "./helpers.ts";

const HOSTS = ["web1", "web2", "web3"];

describeWithNix("reverting in the browser needs real agents", () =>
  describeWithBrowser("reverting in Chromium", () => {
    let fleet: GitHubDashboard;
    let dashboard: Dashboard;
    let github: GitHubEmulator;
    let page: Page;
    let agents: RunningAgent[];

    const rollout = async (id: string) => z.object({ rollout: RolloutView }).parse((await dashboard.api(`/api/rollouts/${id}`)).json).rollout;
    const settled = async (id: string): Promise<RolloutView> => {
      let view: RolloutView | null = null;
      await eventually(`rollout ${id} to end`, async () => {
        view = await rollout(id);
        return view.finishedAt !== undefined && !["running", "soaking", "waiting-window", "planned"].includes(view.state);
      }, 120_000);
      return view!;
    };

    /** An update PR with green CI, merged and deployed through the API; returns its ended rollout. */
    async function mergeAndDeploy(files: Record<string, string>): Promise<RolloutView> {
      const pr = await github.openPullRequest({ head: `update-${Date.now()}`, title: "flake.lock: Update", labels: ["automated"], files, message: "flake.lock: Update" });
      await github.setCheckRun(pr.head.sha, { name: "build", status: "completed", conclusion: "success" });
      await github.flushWebhooks();
      await eventually(`update PR #${pr.number} with CI green`, async () => JSON.stringify((await dashboard.api("/api/update-prs")).json).includes(`"ciState":"success"`) && JSON.stringify((await dashboard.api("/api/update-prs")).json).includes(`"number":${pr.number}`));
      const answer = await dashboard.api(`/api/update-prs/${pr.number}/merge-and-deploy`, {
        method: "POST",
        // The failing update is deployed to the host whose build failed on purpose: its wave is what fails.
        body: { includeFailedBuilds: true, overrideFleetBuild: { reason: "the test deploys to the failing host on purpose" } },
      });
      expect(answer.status, JSON.stringify(answer.json)).toBe(201);
      return settled(z.object({ rollout: RolloutView }).parse(answer.json).rollout.id);
    }

    beforeAll(async () => {
      fleet = await startGitHubDashboard({
        name: "revert",
        hosts: HOSTS,
        // A failed rollout then reverts nothing by itself: the dashboard offers the options.
        vars: { ROLLOUT_CANARY_SOAK_SECONDS: "1", ROLLOUT_WAVE_SIZE: "2", ROLLBACK_STRATEGY: "alert-only" },
      });
      ({ dashboard, github, page, agents } = fleet);
    });

    afterAll(() => fleet?.stop());

    it("reverts a succeeded update from the Update history: a revert commit on main, and its rollout in the history", async () => {
      const update = await mergeAndDeploy(Object.fromEntries(HOSTS.map((host) => [`hosts/${host}.txt`, `${host} after the update`])));
      expect(update.state).toBe("succeeded");
      await page.goto(`${dashboard.url}/rollouts`);
      const entry = page.locator(`nf-rollouts-panel li[data-rollout="${update.id}"]`);
      await entry.locator("summary").click();
      await entry.getByRole("button", { name: "Revert this update…" }).click();
      const dialog = page.locator("nf-rollouts-panel nf-revert-dialog");
      await expect.poll(() => dialog.locator('input[value="revert-commit"]').isChecked()).toBe(true);
      await dialog.locator("#revert").click();
      const outcome = dialog.locator("#outcome");
      await outcome.waitFor({ timeout: 60_000 });
      await expect.poll(() => outcome.textContent()).toMatch(/Reverted on the branch: .*\/commit\/[0-9a-f]{40}\. Its rollout ro_\S+ has started\./s);
      const head = (await github.branchSha("main"))!;
      expect(await outcome.textContent()).toContain(head);
      const reverted = await rollout(update.id);
      expect(reverted.revert).toMatchObject({ kind: "revert-commit", state: "opened" });
      await dialog.locator("#done").click();
      const again = await settled(reverted.revert!.rollout!);
      expect(again).toMatchObject({ state: "succeeded", commit: head });
      await page.getByRole("button", { name: "Refresh" }).click();
      await page.locator(`nf-rollouts-panel li[data-rollout="${again.id}"]`).waitFor();
    });

    it("offers revert commit, revert PR or only an alert under a failed rollout, and opens the revert PR chosen", async () => {
      const failed = await mergeAndDeploy(Object.fromEntries(HOSTS.map((host) => [`hosts/${host}.txt`, host === "web1" ? "fail: web1 cannot build this" : `${host} third`])));
      expect(failed.state).toBe("failed");
      expect(failed.revert).toBeUndefined();
      await page.goto(dashboard.url);
      const offer = page.locator("nf-revert-offer");
      const options = offer.getByRole("group", { name: "Rollback options" });
      await options.waitFor({ timeout: 30_000 });
      expect(await options.getByRole("button").allTextContents()).toEqual(["Revert the merge commit…", "Create a revert PR…", "Just alert"]);
      await offer.getByRole("button", { name: "Create a revert PR…" }).click();
      const dialog = offer.locator("nf-revert-dialog");
      await expect.poll(() => dialog.locator('input[value="revert-pr"]').isChecked()).toBe(true);
      await dialog.locator("#revert").click();
      const outcome = dialog.locator("#outcome");
      await outcome.waitFor({ timeout: 60_000 });
      const opened = (await github.openPullRequests()).find((pr) => pr.head.ref.startsWith("nixfleet/revert-"));
      expect(opened).toBeDefined();
      await expect.poll(() => outcome.textContent()).toContain(`Revert PR opened: ${opened!.htmlUrl}`);
      await dialog.locator("#done").click();
      // The revert is made: the options give way to the revert's line.
      await options.waitFor({ state: "detached", timeout: 30_000 });
      await expect.poll(() => page.locator("nf-rollout-progress .revert").first().textContent()).toContain("Revert PR opened");
    });
  }),
);
