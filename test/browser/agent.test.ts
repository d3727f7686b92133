/**
 * The dashboard with real agents and GitHub: hosts added in the browser, real
 * agent processes polling the real control plane, cloning from the GitHub
 * emulator (a real bare repository that sends signed webhooks), real Nix
 * builds behind a nixos-rebuild shim. Everything the page shows after the
 * first load arrives over its live connection: no reloads.
 */
import { mkdir, mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { GitHubEmulator } from "../../tools/github-emulator/emulator.ts";
import { createFleetRepo } from "../../tools/fleet-kit/fleet-repo.ts";
import { isolatedHostEnv } from "../../tools/fleet-kit/host-env.ts";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import { startAgent, type RunningAgent } from "./agents.ts";
import { describeWithBrowser, openBrowser, type BrowserSession } from "./browser.ts";
import { startDashboard, type Dashboard } from "./dashboard.ts";
import { addHostThroughApi, eventually, fleetRow, menu } from "./helpers.ts";
import { removeHostRoot } from "../support/host-root.ts";

const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** `npm run screenshots` sets it to docs/screenshots; a test run writes into its own temporary folder, never the tree. */
const SCREENSHOTS_DIR = process.env.NIXFLEET_SCREENSHOTS_DIR;
const SECRET = "browser-webhook-secret";
const TOKEN = "github_pat_browser_token";

describeWithNix("real agents build with Nix", () =>
  describeWithBrowser("dashboard with real agents and GitHub in Chromium", () => {
    let dashboard: Dashboard;
    let github: GitHubEmulator;
    let session: BrowserSession;
    let page: Page;
    let root: string;
    let env: NodeJS.ProcessEnv;
    let lockText: string;
    let seed: string;
    const agents = new Map<string, RunningAgent>();

    /** Set before acting; still set afterwards proves the page never reloaded. */
    const markPage = () => page.evaluate(() => Object.assign(window, { __nixfleetNoReload: true }));
    const pageKept = () => page.evaluate(() => "__nixfleetNoReload" in window);
    const card = (name: string) => page.locator("nf-compartment-card").filter({ has: page.getByRole("heading", { name, exact: true }) });
    const cell = (host: string, compartment: string) => fleetRow(page, host).locator(`button.cell[data-compartment="${compartment}"]`);
    const short = (sha: string) => sha.slice(0, 7);

    const runAgent = async (host: string, token: string) => {
      const agent = await startAgent({ root, host, token, url: dashboard.url, repoUrl: github.cloneUrl, env });
      agents.set(host, agent);
      return agent;
    };

    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), "nixfleet-browser-agents-"));
      env = isolatedHostEnv(root);
      // The tiny flake, locked with real Nix, becomes the repository on "GitHub".
      const fleet = await createFleetRepo({ root: join(root, "fleet"), hosts: ["web1", "web2"], env });
      const file = (path: string) => readFile(join(fleet.work, path), "utf8");
      lockText = await file("flake.lock");
      // The emulator binds its port before the control plane is told its URL (a port merely found free could be taken meanwhile), then learns where to send webhooks.
      github = new GitHubEmulator({
        owner: "example",
        repo: "fleet",
        workDir: join(root, "github"),
        webhookSecret: SECRET,
        token: TOKEN,
      });
      const githubUrl = await github.start();
      dashboard = await startDashboard({
        GITHUB_REPOSITORY: "example/fleet",
        GITHUB_WEBHOOK_SECRET: SECRET,
        GITHUB_TOKEN: TOKEN,
        GITHUB_API_URL: githubUrl,
      });
      github.setWebhookUrl(`${dashboard.url}/webhooks/github`);
      seed = await github.seed(
        { "flake.nix": await file("flake.nix"), "flake.lock": lockText, "hosts/web1.txt": await file("hosts/web1.txt"), "hosts/web2.txt": await file("hosts/web2.txt") },
        "initial fleet",
      );
      await eventually("the control plane to read the seed commit", async () =>
        JSON.stringify((await dashboard.api("/api/hosts")).json).includes(`"sha":"${seed}"`),
      );
      session = await openBrowser();
      page = session.page;
    });
    afterAll(async () => {
      await Promise.all([...agents.values()].map((agent) => agent.stop()));
      await session?.close();
      await github?.stop();
      await dashboard?.stop();
      if (root) await removeHostRoot(root);
    });

    it("shows the commit the fleet should run, and a host added in the browser coming online when its agent starts", async () => {
      await page.goto(dashboard.url);
      const target = page.locator("nf-fleet-header");
      await target.getByRole("link", { name: short(seed) }).waitFor();
      await target.getByText("initial fleet").waitFor();

      await page.getByRole("button", { name: "Add host" }).first().click();
      const dialog = page.getByRole("dialog", { name: "Add a host" });
      await dialog.getByLabel("Host name").fill("web1");
      await dialog.getByRole("button", { name: "Add host" }).click();
      const shown = page.getByRole("dialog", { name: "web1 added" });
      await expect.poll(() => shown.getByTestId("nix-snippet").textContent()).toContain('repoUrl = "https://github.com/example/fleet.git";');
      const tokenField = shown.getByTestId("token");
      await expect.poll(() => tokenField.inputValue()).not.toBe("");
      const token = await tokenField.inputValue();
      await shown.getByRole("button", { name: "Done" }).click();
      const row = fleetRow(page, "web1");
      await row.getByText("never connected", { exact: true }).waitFor();
      await markPage();

      await runAgent("web1", token);
      await row.getByText("online", { exact: true }).waitFor({ timeout: 30_000 });
      await row.getByRole("button", { name: "web1 Agent: current" }).waitFor({ timeout: 30_000 });
      await expect.poll(() => row.locator(".version").textContent()).toContain("0.1.0");
      expect(await pageKept()).toBe(true);
    });

    it("streams a Pull + Switch on the host page and moves the compartments as it runs, without a reload", async () => {
      const web1 = agents.get("web1")!;
      await fleetRow(page, "web1").getByRole("link", { name: "web1" }).click();
      await page.getByRole("heading", { name: "web1", level: 1 }).waitFor();

      // Hold the switch at the shim's gate, so the running state can be seen.
      await web1.shim.setMode("gate");
      await page.getByRole("button", { name: "Git actions" }).click();
      await menu(page).getByRole("menuitem", { name: /^Pull \+ Switch/ }).click();

      const output = page.locator("nf-command-output");
      await output.locator(".line.system", { hasText: "$ git clone" }).first().waitFor({ timeout: 30_000 });
      await output.locator(".line.stderr", { hasText: "Cloning into" }).first().waitFor();
      await output.locator(".line", { hasText: "nixos-rebuild (test shim)" }).first().waitFor({ timeout: 30_000 });
      await output.locator('[data-state="running"]').waitFor();
      await card("System").getByText("working").waitFor();

      await web1.shim.release();
      await output.locator('[data-state="succeeded"]').waitFor({ timeout: 60_000 });
      await card("System").getByText("current").waitFor({ timeout: 30_000 });
      await card("Git").getByText(`at main: ${short(seed)}`).waitFor({ timeout: 30_000 });
      await page.locator("nf-command-history").getByRole("row").filter({ hasText: "Pull + Switch" }).getByText("succeeded").waitFor();
      expect(await pageKept()).toBe(true);
      expect(session.errors).toEqual([]);
    });

    it("turns Git yellow when a commit lands on GitHub, and Click Git → Pull brings it back to green, all live", async () => {
      await page.getByRole("link", { name: "← Fleet" }).click();
      const pushed = await github.pushCommit({ files: { "hosts/web2.txt": "web2 generation 2" }, message: "web2: generation 2" });
      await page.locator("nf-fleet-header").getByRole("link", { name: short(pushed.sha) }).waitFor({ timeout: 30_000 });
      await fleetRow(page, "web1").getByRole("button", { name: "web1 Git: outdated" }).waitFor({ timeout: 30_000 });

      await cell("web1", "git").click();
      const first = menu(page).getByRole("menuitem").first();
      await expect.poll(() => first.textContent()).toContain("Pull");
      await expect.poll(() => first.getAttribute("class")).toContain("suggested");
      await first.click();
      await fleetRow(page, "web1").getByRole("button", { name: "web1 Git: current" }).waitFor({ timeout: 60_000 });
      expect(await pageKept()).toBe(true);
    });

    it("shows a failing switch as System failed (red) in the table, with its log one click away", async () => {
      await agents.get("web1")!.shim.setMode("normal");
      await github.pushCommit({ files: { "hosts/web1.txt": "fail: the configuration does not build" }, message: "web1: break it" });
      await fleetRow(page, "web1").getByRole("button", { name: "web1 Git: outdated" }).waitFor({ timeout: 30_000 });
      await cell("web1", "system").click();
      await menu(page).getByRole("menuitem", { name: /^Pull \+ Switch/ }).click();
      await fleetRow(page, "web1").getByRole("button", { name: "web1 System: failed" }).waitFor({ timeout: 60_000 });
      await expect.poll(() => cell("web1", "system").getAttribute("title")).toContain("pull-switch failed");

      await cell("web1", "system").click();
      await menu(page).getByRole("menuitem", { name: /^View log/ }).click();
      const output = page.locator("nf-command-output");
      await output.locator('[data-state="failed"]').waitFor();
      await output.locator(".line", { hasText: "failed on purpose" }).first().waitFor({ timeout: 30_000 });
      await expect.poll(() => new URL(page.url()).searchParams.get("command")).toMatch(/^cmd_/);
      expect(await pageKept()).toBe(true);
    });

    it("announces a pending flake.lock update PR with its input changes and CI, and the Lock cells glow", async () => {
      await page.getByRole("link", { name: "← Fleet" }).click();
      const lock = JSON.parse(lockText);
      const pins = lock.nodes.pins.locked;
      const newRev = "b".repeat(40);
      lock.nodes.pins.locked = { ...pins, rev: newRev, narHash: "sha256-Zm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm8=", lastModified: pins.lastModified + 86_400 };
      const pr = await github.openPullRequest({
        head: "update_flake_lock_action",
        title: "flake.lock: Update",
        labels: ["automated"],
        files: { "flake.lock": `${JSON.stringify(lock, null, 2)}\n` },
        message: "flake.lock: Update",
        user: "github-actions[bot]",
      });
      await github.setCommitStatus(pr.head.sha, "success", "build");

      const banner = page.locator("nf-update-pr-banner");
      await banner.getByRole("link", { name: "flake.lock: Update" }).waitFor({ timeout: 30_000 });
      await banner.getByText(`#${pr.number}`).waitFor();
      await banner.getByText("CI passed").waitFor({ timeout: 30_000 });
      const change = banner.getByRole("row").filter({ hasText: "pins" });
      await change.getByText(short(pins.rev)).waitFor();
      await change.getByText(short(newRev)).waitFor();
      await expect.poll(() => cell("web1", "lock").getAttribute("class")).toContain("glow");
      await expect.poll(() => cell("web1", "lock").getAttribute("title")).toContain("Update PR pending");
      const animation = () => cell("web1", "lock").evaluate((button) => getComputedStyle(button).animationName);
      await expect.poll(animation).toBe("glow");
      await page.emulateMedia({ reducedMotion: "reduce" });
      await expect.poll(animation).toBe("none");
      await page.emulateMedia({ reducedMotion: "no-preference" });
      expect(await pageKept()).toBe(true);
    });

    it("runs a bulk Pull on all online hosts, naming them first, and both agents carry it out", async () => {
      const { token } = await addHostThroughApi(dashboard, "web2");
      await runAgent("web2", token);
      await fleetRow(page, "web2").getByText("online", { exact: true }).waitFor({ timeout: 30_000 });
      const toolbar = page.getByRole("toolbar", { name: "Bulk actions" });
      await toolbar.getByText("All 2 online hosts:").waitFor();
      await toolbar.getByRole("button", { name: "Pull", exact: true }).click();
      const confirm = page.getByRole("dialog", { name: "Pull on 2 online hosts?" });
      await expect.poll(() => confirm.getByRole("list", { name: "hosts" }).getByRole("listitem").allTextContents()).toEqual(["web1", "web2"]);
      await confirm.getByRole("button", { name: "Pull 2 hosts" }).click();
      await page.getByRole("dialog", { name: "Pull: 2 queued" }).getByRole("button", { name: "Close" }).click();
      for (const host of ["web1", "web2"]) {
        await fleetRow(page, host).getByRole("button", { name: `${host} Git: current` }).waitFor({ timeout: 60_000 });
      }
      expect(await pageKept()).toBe(true);
    });

    it("shows a host whose agent stopped as offline, its compartments faded and marked last known, without a reload", async () => {
      await agents.get("web2")!.stop();
      const row = fleetRow(page, "web2");
      // Offline once a poll is overdue: the 5 s poll plus the control plane's 30 s grace.
      await row.getByText(/^offline · /).waitFor({ timeout: 75_000 });
      const git = row.getByRole("button", { name: "web2 Git: current (last known)" });
      await git.waitFor();
      await expect.poll(() => git.getAttribute("class")).toContain("stale");
      await expect.poll(() => git.getAttribute("title")).toContain("last known state: the host is offline");
      await row.getByRole("button", { name: "web2 Agent: unknown (last known)" }).waitFor();
      expect(await pageKept()).toBe(true);
    }, 120_000);

    it("takes the README screenshots (into docs/screenshots only through npm run screenshots)", async () => {
      const SCREENSHOTS = SCREENSHOTS_DIR ? resolve(REPO_ROOT, SCREENSHOTS_DIR) : join(root, "screenshots");
      await mkdir(SCREENSHOTS, { recursive: true });
      const dismissNotices = async () => {
        const dismiss = page.getByRole("button", { name: "Dismiss" });
        while ((await dismiss.count()) > 0) await dismiss.first().click();
      };
      await dismissNotices();
      await page.mouse.move(0, 0);
      await page.screenshot({ path: join(SCREENSHOTS, "fleet.png") });

      // The host page with the failed switch's log on show.
      await fleetRow(page, "web1").getByRole("link", { name: "web1" }).click();
      await page.locator("nf-command-history").getByRole("row").filter({ hasText: "Pull + Switch" }).filter({ hasText: "failed" }).getByRole("link").click();
      await page.locator("nf-command-output").locator(".line", { hasText: "failed on purpose" }).first().waitFor();
      await page.mouse.move(0, 0);
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: join(SCREENSHOTS, "host.png"), fullPage: true });

      await page.setViewportSize({ width: 390, height: 844 });
      await page.getByRole("link", { name: "← Fleet" }).click();
      await dismissNotices();
      // The cards, with the bulk actions above them.
      await page.getByRole("toolbar", { name: "Bulk actions" }).evaluate((toolbar) => toolbar.scrollIntoView({ block: "start" }));
      await page.evaluate(() => window.scrollBy(0, -70));
      await page.screenshot({ path: join(SCREENSHOTS, "mobile.png") });
      await page.setViewportSize({ width: 1280, height: 800 });
      for (const name of ["fleet.png", "host.png", "mobile.png"]) {
        expect((await readFile(join(SCREENSHOTS, name))).subarray(1, 4).toString(), name).toBe("PNG");
      }
    });
  }),
);
