/**
 * Merge & Deploy in Chromium against the real control plane, the GitHub
 * emulator and three real agents with real Nix: from the update-PR banner
 * through the confirmation (waves, canary first) to the live progress reaching
 * 3/3 and the entry in the update history — without a reload.
 */
import { mkdir, readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { z } from "zod";
import type { GitHubEmulator } from "../../tools/github-emulator/emulator.ts";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import type { RunningAgent } from "./agents.ts";
import { describeWithBrowser } from "./browser.ts";
import type { Dashboard } from "./dashboard.ts";
import { startGitHubDashboard, type GitHubDashboard } from "./github-dashboard.ts";

const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** `npm run screenshots` sets it to docs/screenshots; a test run writes into its own temporary folder, never the tree. */
const SCREENSHOTS_DIR = process.env.NIXFLEET_SCREENSHOTS_DIR;
const HOSTS = ["web1", "web2", "web3"];

describeWithNix("rollouts in the browser need real agents", () =>
  describeWithBrowser("Merge & Deploy in Chromium", () => {
    let fleet: GitHubDashboard;
    let dashboard: Dashboard;
    let github: GitHubEmulator;
    let page: Page;
    let root: string;
    let agents: RunningAgent[];

    beforeAll(async () => {
      fleet = await startGitHubDashboard({ name: "rollout", hosts: HOSTS, vars: { ROLLOUT_CANARY_SOAK_SECONDS: "1", ROLLOUT_WAVE_SIZE: "2" } });
      ({ dashboard, github, page, root, agents } = fleet);
    });

    afterAll(() => fleet?.stop());

    it("merges the update PR from the banner, shows the waves first, then live progress to 3/3 and the history entry", async () => {
      const pr = await github.openPullRequest({
        head: "update_flake_lock_action",
        title: "flake.lock: Update",
        labels: ["automated"],
        files: Object.fromEntries(HOSTS.map((host) => [`hosts/${host}.txt`, `${host} after the update`])),
        message: "flake.lock: Update",
      });
      await github.setCheckRun(pr.head.sha, { name: "build", status: "completed", conclusion: "success" });
      await github.flushWebhooks();

      // web3 (last wave) switches only when released: the screenshot shows a rollout in progress.
      const last = agents.find((agent) => agent.host === "web3")!;
      await last.shim.setMode("gate");
      await page.goto(dashboard.url);
      await page.evaluate(() => Object.assign(window, { __nixfleetNoReload: true }));
      const banner = page.locator("nf-update-pr-banner");
      await banner.locator("#merge-deploy").click({ timeout: 30_000 });
      const dialog = page.locator("nf-deploy-dialog");
      const waves = dialog.locator('ol[aria-label="Waves"] > li');
      await waves.first().waitFor();
      // Canary first: one host, then the other two.
      await expect.poll(() => waves.count()).toBe(2);
      await expect.poll(() => waves.first().textContent()).toMatch(/canary/i);
      await dialog.locator("#deploy").click();

      const headline = page.locator("nf-rollout-progress .headline").first();
      await page.locator('nf-rollout-progress li[data-host="web3"][data-step="pulling"]').waitFor({ timeout: 90_000 });
      await expect.poll(() => headline.textContent()).toMatch(/^Deploying [12]\/3 hosts/);
      const screenshots = SCREENSHOTS_DIR ? resolve(REPO_ROOT, SCREENSHOTS_DIR) : join(root, "screenshots");
      await mkdir(screenshots, { recursive: true });
      await page.mouse.move(0, 0);
      await page.screenshot({ path: join(screenshots, "rollout.png") });
      expect((await readFile(join(screenshots, "rollout.png"))).subarray(1, 4).toString()).toBe("PNG");
      await last.shim.setMode("normal");
      await last.shim.release();
      try {
        await headline.filter({ hasText: "Deployed 3/3 hosts" }).waitFor({ timeout: 90_000 });
      } catch (error) {
        const state = JSON.stringify((await dashboard.api("/api/rollouts?limit=1")).json);
        const shown = await headline.textContent().catch(() => null);
        throw new Error(`no 3/3: the page shows ${shown}; the rollout: ${state}\n${agents.map((a) => a.logs().slice(-1500)).join("\n")}`, { cause: error });
      }
      for (const host of HOSTS) await page.locator(`nf-rollout-progress li[data-host="${host}"][data-step="done"]`).first().waitFor();

      const { rollouts } = z.object({ rollouts: z.array(z.object({ id: z.string(), pr: z.number().optional(), state: z.string() })) }).parse((await dashboard.api("/api/rollouts?limit=1")).json);
      expect(rollouts[0]).toMatchObject({ pr: pr.number, state: "succeeded" });
      await page.getByRole("link", { name: "Updates" }).click();
      await page.locator(`nf-rollouts-panel li[data-rollout="${rollouts[0]!.id}"]`).waitFor();
      expect(await page.evaluate(() => "__nixfleetNoReload" in window)).toBe(true);
    });
  }),
);
