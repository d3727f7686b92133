/**
 * Build before deploy in Chromium against the real control plane, the GitHub
 * emulator and three real agents with real Nix: the update PR opens, each
 * agent builds its own system at the PR head, and the banner's per-host lines
 * fill in live (web1 built while web2 is still building, web3 failing); the
 * Lock tooltip and the host page say what the update changes there, with the
 * full closure diff behind a disclosure; the deploy confirmation keeps the
 * failed host ticked with what that asks for, and leaves it behind on purpose
 * once unticked — all without a reload. Then Merge & Deploy from the dialog:
 * the server's 409 fleet_build_failed shown as it said it, and, the failed host
 * unticked, the update merged and deployed without it.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { z } from "zod";
import type { GitHubEmulator } from "../../tools/github-emulator/emulator.ts";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import type { RunningAgent } from "./agents.ts";
import { describeWithBrowser } from "./browser.ts";
import type { Dashboard } from "./dashboard.ts";
import { onEveryHost, startGitHubDashboard, type GitHubDashboard } from "./github-dashboard.ts";
import { fleetRow } from "./helpers.ts";

const HOSTS = ["web1", "web2", "web3"];


describeWithNix("the fleet build in the browser needs real agents", () =>
  describeWithBrowser("build before deploy in Chromium", () => {
    let fleet: GitHubDashboard;
    let dashboard: Dashboard;
    let github: GitHubEmulator;
    let page: Page;
    let root: string;
    let agents: RunningAgent[];

    beforeAll(async () => {
      fleet = await startGitHubDashboard({ name: "fleet-build", hosts: HOSTS });
      ({ dashboard, github, page, root, agents } = fleet);
      // Each host runs the seed's system, so a build of the update has a running system to be compared with.
      await onEveryHost(fleet, "pull-switch", 120_000);
    });

    afterAll(() => fleet?.stop());

    it("fills in each host's build live on the banner, says what the update changes in the Lock tooltip and on the host page, and leaves the failed host behind on purpose once unticked", async () => {
      await page.goto(dashboard.url);
      await page.evaluate(() => Object.assign(window, { __nixfleetNoReload: true }));
      await fleetRow(page, "web1").waitFor();

      // web2's system waits for the gate while it builds; web3's cannot build at all.
      const gate = join(root, "web2-gate");
      const pr = await github.openPullRequest({
        head: "update_flake_lock_action",
        title: "flake.lock: Update",
        labels: ["automated"],
        files: { "packages/hello.txt": "1.1 40\n", "hosts/web2.txt": `wait:${gate}`, "hosts/web3.txt": "fail: broken on purpose" },
        message: "flake.lock: Update",
      });
      await github.flushWebhooks();

      const status = page.locator("nf-update-pr-banner nf-fleet-build-status");
      const line = (host: string, state: string) => status.locator(`li[data-host="${host}"][data-state="${state}"]`);
      // Live: web1 has built while web2 is still building (its builder waits for the gate).
      try {
        await line("web1", "built").waitFor({ timeout: 120_000 });
        await line("web2", "building").waitFor({ timeout: 60_000 });
      } catch (error) {
        const shown = await status.textContent().catch(() => null);
        const builds = JSON.stringify((await dashboard.api("/api/update-prs")).json);
        throw new Error(`the banner shows ${shown}; the server: ${builds}\n${agents.map((a) => a.logs().slice(-1500)).join("\n")}`, { cause: error });
      }
      await expect.poll(() => line("web1", "built").textContent()).toMatch(/built\s*in \d+(\.\d+)? (ms|s|min)[^(]*\(\+\d+\.\d KiB\)/);
      await line("web3", "failed").waitFor({ timeout: 60_000 });
      // The failed host's line links to its build's log on the host page.
      const log = line("web3", "failed").getByRole("link", { name: "log" });
      await expect.poll(() => log.getAttribute("href")).toMatch(/^\/hosts\/web3\?command=cmd_/);
      await expect.poll(() => status.locator(".verdict").textContent()).toMatch(/web3 failed/);
      await expect.poll(() => status.locator("[data-verdict]").getAttribute("data-verdict")).toBe("failure");

      await writeFile(gate, "");
      await line("web2", "built").waitFor({ timeout: 60_000 });
      await expect.poll(() => status.locator(".verdict").textContent()).toMatch(/^2\/3 hosts built, web3 failed/);

      // The Lock cell's tooltip says what the update changes on its host.
      const lock = fleetRow(page, "web1").locator('[data-compartment="lock"]');
      await expect.poll(() => lock.getAttribute("title")).toMatch(/The update builds on this host; it changes: hello 1\.0 → 1\.1 \(\+\d+\.\d KiB\)\./);
      await expect.poll(() => fleetRow(page, "web3").locator('[data-compartment="lock"]').getAttribute("title")).toMatch(/The update does not build on this host: error: .*nixos-system-web3/);

      // The deploy confirmation: web3 ticked and marked, with what its failed build asks for; unticked, it is left behind on purpose.
      await page.locator("nf-update-pr-banner #merge-deploy").click();
      const dialog = page.locator("nf-deploy-dialog");
      const leftOut = dialog.locator('ul[aria-label="Left out"]');
      const waves = dialog.locator('ol[aria-label="Waves"]');
      await expect.poll(() => waves.textContent()).toMatch(/web1\s*✓ built, \+\d+\.\d KiB/);
      await expect.poll(() => waves.textContent()).toMatch(/web3\s*✗ build failed/);
      await expect.poll(() => dialog.locator("#fleet-build-failed").textContent()).toMatch(/The fleet build failed on web3: untick it to leave it behind main on purpose/);
      await dialog.getByRole("checkbox", { name: "web3", exact: true }).uncheck();
      await expect.poll(() => leftOut.textContent()).toMatch(/web3\s*✗ build failed\s*—\s*left behind on purpose: not selected, its build of [0-9a-f]{7} failed/);
      // Read once web3 is listed as left out: out of the waves, not merely not shown yet.
      expect(await waves.textContent()).not.toContain("web3");
      expect(await dialog.locator("#fleet-build-failed").count()).toBe(0);
      await dialog.getByRole("button", { name: "Cancel" }).click();

      // The host page: what the update changes there, and the whole closure diff behind a disclosure.
      await status.locator('li[data-host="web1"] a').first().click();
      const section = page.locator("nf-host-panel nf-host-update-build");
      await section.waitFor();
      await expect.poll(() => section.locator(".build-note").textContent()).toMatch(/^The update builds on this host; it changes: hello 1\.0 → 1\.1/);
      const diff = section.locator("nf-closure-diff");
      await diff.locator("summary").click();
      const hello = diff.locator('tr[data-package="hello"]');
      await expect.poll(async () => (await hello.locator("td").allTextContents()).slice(0, 3)).toEqual(["hello", "1.0", "1.1"]);
      await expect.poll(() => hello.locator("td.size").textContent()).toMatch(/^\+\d+\.\d KiB$/);

      const { updatePrs } = z.object({ updatePrs: z.array(z.object({ number: z.number(), fleetBuild: z.object({ verdict: z.string() }).nullable() })) }).parse((await dashboard.api("/api/update-prs")).json);
      expect(updatePrs.find((p) => p.number === pr.number)?.fleetBuild?.verdict).toBe("failure");
      expect(await page.evaluate(() => "__nixfleetNoReload" in window)).toBe(true);
    });

    it("Merge & Deploy from the dialog: the server's 409 fleet_build_failed shown as it said it, then, the failed host unticked, merged and deployed without it", async () => {
      const UpdatePrs = z.object({ updatePrs: z.array(z.object({ number: z.number(), headSha: z.string() })) });
      const [pr] = UpdatePrs.parse((await dashboard.api("/api/update-prs")).json).updatePrs;
      expect(pr).toBeDefined();
      // The first test ended on a host page.
      await page.goto(dashboard.url);
      await fleetRow(page, "web1").waitFor();
      // Held while the dialog plans, web3 is out of the plan's scope and not ticked...
      expect((await dashboard.api("/api/hosts/web3/hold", { method: "PUT", body: { reason: "checking the fleet build's refusal" } })).status).toBe(200);
      await page.locator("nf-update-pr-banner #merge-deploy").click();
      const dialog = page.locator("nf-deploy-dialog");
      await expect.poll(() => dialog.locator('ul[aria-label="Left out"]').textContent()).toMatch(/web3[^—]*—\s*held by /);
      // ...and released before the click: the server's scope has web3 again, whose build failed.
      expect((await dashboard.api("/api/hosts/web3/hold", { method: "DELETE" })).status).toBe(200);
      const said = await dashboard.api(`/api/update-prs/${pr!.number}/merge-and-deploy`, { method: "POST", body: { override: { reason: "no CI in this test fleet" } } });
      expect(said.status).toBe(409);
      const refusal = z.object({ error: z.object({ code: z.literal("fleet_build_failed"), message: z.string() }) }).parse(said.json).error;
      // The PR has no CI here: the admin overrides it with a reason.
      await dialog.locator("#override").fill("no CI in this test fleet");
      await dialog.locator("#deploy").click();
      await expect.poll(() => dialog.locator(".form-error").textContent()).toBe(refusal.message);
      // The hosts are listed again: web3 ticked, with what its failed build asks for.
      await expect.poll(() => dialog.locator("#fleet-build-failed").count()).toBe(1);
      await dialog.getByRole("checkbox", { name: "web3", exact: true }).uncheck();
      await expect.poll(() => dialog.locator('ul[aria-label="Left out"]').textContent()).toMatch(/web3[^—]*—\s*left behind on purpose/);
      await dialog.locator("#deploy").click();
      await expect.poll(() => dialog.locator("form").count()).toBe(0);

      const Rollouts = z.object({ rollouts: z.array(z.object({ pr: z.number().optional(), leftOut: z.array(z.object({ name: z.string(), reason: z.string() })), waves: z.array(z.object({ hosts: z.array(z.object({ name: z.string() })) })) })) });
      const rollout = Rollouts.parse((await dashboard.api("/api/rollouts?limit=5")).json).rollouts.find((r) => r.pr === pr!.number);
      expect(rollout?.waves.flatMap((w) => w.hosts.map((h) => h.name)).sort()).toEqual(["web1", "web2"]);
      expect(rollout?.leftOut).toEqual([{ name: "web3", reason: `left behind on purpose: not selected, its build of ${pr!.headSha.slice(0, 7)} failed` }]);
      const merged = z.object({ merged: z.boolean() }).parse(await github.pullRequest(pr!.number));
      expect(merged.merged).toBe(true);
    });
  }),
);
