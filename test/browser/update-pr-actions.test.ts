/**
 * The update PR's actions besides Merge & Deploy, in Chromium against the real control plane, the
 * GitHub emulator and two real agents with real Nix: Refresh from GitHub reads a PR whose webhook
 * never arrived and says what it read (and shows GitHub's rate limit as a refusal); Merge (merge
 * only) shows GitHub's refusal under branch protection, then, reached from a Lock cell, merges
 * without a rollout, and the hosts read "behind main".
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { z } from "zod";
import { GitHubEmulator } from "../../tools/github-emulator/emulator.ts";
import { createFleetRepo } from "../../tools/fleet-kit/fleet-repo.ts";
import { isolatedHostEnv } from "../../tools/fleet-kit/host-env.ts";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import { startAgent, type RunningAgent } from "./agents.ts";
import { describeWithBrowser, openBrowser, type BrowserSession } from "./browser.ts";
import { startDashboard, type Dashboard } from "./dashboard.ts";
import { addHostThroughApi, eventually, fleetRow, menu } from "./helpers.ts";

const SECRET = "update-pr-actions-secret";
const TOKEN = "github_pat_update_pr_actions";
const HOSTS = ["web1", "web2"];
/** Nothing listens on the discard port: a webhook sent there is lost, as a missed delivery is. */
const LOST_WEBHOOKS = "http://127.0.0.1:9/webhooks/github";

const CommandsAnswer = z.object({ commands: z.array(z.object({ kind: z.string(), state: z.string() })) });
const RolloutsAnswer = z.object({ rollouts: z.array(z.object({ id: z.string() })) });

describeWithNix("the update PR's actions in the browser need real agents", () =>
  describeWithBrowser("Merge, Refresh from GitHub and the Lock cell in Chromium", () => {
    let dashboard: Dashboard;
    let github: GitHubEmulator;
    let session: BrowserSession;
    let page: Page;
    let root: string;
    let seed: string;
    const agents: RunningAgent[] = [];

    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), "nixfleet-browser-update-pr-actions-"));
      const env = isolatedHostEnv(root);
      const fleet = await createFleetRepo({ root: join(root, "fleet"), hosts: HOSTS, env });
      const file = (path: string) => readFile(join(fleet.work, path), "utf8");
      // The emulator binds its port before the control plane is told its URL (a port merely found free could be taken meanwhile), then learns where to send webhooks.
      github = new GitHubEmulator({ owner: "example", repo: "fleet", workDir: join(root, "github"), webhookSecret: SECRET, token: TOKEN });
      const githubUrl = await github.start();
      dashboard = await startDashboard({ GITHUB_REPOSITORY: "example/fleet", GITHUB_WEBHOOK_SECRET: SECRET, GITHUB_TOKEN: TOKEN, GITHUB_API_URL: githubUrl });
      github.setWebhookUrl(`${dashboard.url}/webhooks/github`);
      const files: Record<string, string> = { "flake.nix": await file("flake.nix"), "flake.lock": await file("flake.lock") };
      for (const host of HOSTS) files[`hosts/${host}.txt`] = await file(`hosts/${host}.txt`);
      seed = await github.seed(files, "initial fleet");
      await eventually("the seed commit to be read", async () => JSON.stringify((await dashboard.api("/api/hosts")).json).includes(`"sha":"${seed}"`));
      for (const host of HOSTS) {
        const { token } = await addHostThroughApi(dashboard, host);
        agents.push(await startAgent({ root, host, token, url: dashboard.url, repoUrl: github.cloneUrl, env }));
      }
      await eventually("two hosts to report", async () => {
        const { hosts } = z.object({ hosts: z.array(z.object({ online: z.boolean(), report: z.unknown() })) }).parse((await dashboard.api("/api/hosts")).json);
        return hosts.length === 2 && hosts.every((h) => h.online && h.report !== null);
      }, 60_000);
      // Each host clones the seed, so its Git compartment has a commit to compare with main's.
      for (const host of HOSTS) {
        const sent = await dashboard.api(`/api/hosts/${host}/commands`, { method: "POST", body: { kind: "pull" } });
        if (sent.status !== 202) throw new Error(`pull on ${host}: ${sent.status} ${JSON.stringify(sent.json)}`);
      }
      await eventually("every host to be at the seed", async () => {
        for (const host of HOSTS) {
          const { commands } = CommandsAnswer.parse((await dashboard.api(`/api/hosts/${host}/commands?limit=5`)).json);
          const state = commands.find((command) => command.kind === "pull")?.state;
          if (state === "failed" || state === "timed-out") throw new Error(`pull on ${host} ${state}:\n${agents.find((a) => a.host === host)?.logs().slice(-2000)}`);
          if (state !== "succeeded") return false;
        }
        return true;
      }, 60_000);
      session = await openBrowser();
      page = session.page;
    });

    afterAll(async () => {
      await Promise.all(agents.map((agent) => agent.stop()));
      await session?.close();
      await github?.stop();
      await dashboard?.stop();
      if (root) await rm(root, { recursive: true, force: true });
    });

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
