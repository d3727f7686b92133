/**
 * `nixfleet setup` (issue 24) as far as it runs without a Cloudflare account: the real CLI against a
 * fake `wrangler` first on PATH that records its calls (fake-wrangler.ts), and GitHub's manifest flow
 * against the GitHub emulator, driven as a person's browser would (the local page's form, GitHub's
 * redirect to the local callback). The App's credentials reach `wrangler secret put`; a second run
 * plans nothing; --dry-run only plans.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GitHubEmulator } from "../../tools/github-emulator/emulator.ts";
import { GitHubClient } from "../../worker/github/client.ts";
import { eventually } from "../support/wait.ts";
import { installFakeWrangler, type FakeWrangler } from "./fake-wrangler.ts";

const NIXFLEET = fileURLToPath(new URL("../../bin/nixfleet.js", import.meta.url));

let dir: string;
let emulator: GitHubEmulator;
let apiUrl: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-setup-"));
  emulator = new GitHubEmulator({ owner: "example", repo: "fleet", workDir: path.join(dir, "github"), token: "ghp_setup" });
  apiUrl = await emulator.start();
  await emulator.seed({ "flake.nix": "{ outputs = _: { }; }\n" });
}, 60_000);

afterAll(async () => {
  await emulator?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

interface SetupRun {
  stdout: () => string;
  stderr: () => string;
  code: Promise<number | null>;
}

function setup(wrangler: FakeWrangler & { env: Record<string, string> }, deploymentDir: string, ...extra: string[]): SetupRun {
  const args = ["setup", "--hostname", "fleet.example.com", "--repository", "example/fleet", "--dir", deploymentDir, "--github-url", apiUrl, "--github-api-url", apiUrl, ...extra];
  const child = spawn(process.execPath, [NIXFLEET, ...args], { env: { ...process.env, ...wrangler.env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (data: string) => (stdout += data));
  child.stderr.setEncoding("utf8").on("data", (data: string) => (stderr += data));
  return { stdout: () => stdout, stderr: () => stderr, code: new Promise((resolve) => child.once("close", resolve)) };
}

const unescapeHtml = (text: string) => text.replace(/&#(\d+);/g, (_m, code: string) => String.fromCharCode(Number(code)));

/** What a person's browser does: open the local page, submit its form to GitHub, follow GitHub's redirect back. */
async function registerLikeABrowser(localPage: string): Promise<string> {
  const html = await (await fetch(localPage)).text();
  const action = unescapeHtml(/<form method="post" action="([^"]+)"/.exec(html)![1]!);
  const manifest = unescapeHtml(/name="manifest" value="([^"]+)"/.exec(html)![1]!);
  const confirmed = await fetch(action, { method: "POST", body: new URLSearchParams({ manifest }), redirect: "manual" });
  expect(confirmed.status).toBe(302);
  const callback = confirmed.headers.get("location")!;
  expect(callback.startsWith(new URL(localPage).origin)).toBe(true);
  return (await fetch(callback)).text();
}

const WRITE_COMMANDS = ["d1 create", "r2 bucket create", "d1 migrations apply", "deploy", "secret put"];
const writes = (calls: Array<{ args: string[] }>) => calls.filter((call) => WRITE_COMMANDS.some((command) => call.args.join(" ").startsWith(command)));

describe("nixfleet setup", () => {
  it("--dry-run on a new account prints the whole plan and changes nothing", async () => {
    const wrangler = await installFakeWrangler(path.join(dir, "dry"));
    const run = setup(wrangler, path.join(dir, "dry", "deployment"), "--dry-run");
    expect(await run.code, run.stderr()).toBe(0);
    const deploymentDir = path.join(dir, "dry", "deployment");
    expect(run.stdout()).toContain(
      [
        "The plan (--dry-run: nothing is done):",
        "  1. create the D1 database nixfleet",
        "  2. create the R2 bucket nixfleet-cache (the binary cache)",
        `  3. write the deployment's wrangler configuration ${deploymentDir}/wrangler.toml (workers.dev off)`,
        "  4. apply the D1 migrations remotely",
        "  5. deploy the Worker nixfleet (its build runs npm run build:ui)",
        "  6. put the secret SETTINGS_ENCRYPTION_KEY",
        "  7. put the secret GITHUB_REPOSITORY",
        `  8. put the secret METRICS_TOKEN (written to ${deploymentDir}/metrics-token, readable by you only, for Prometheus)`,
        "  9. put the secret GITHUB_API_URL",
        "  10. register the GitHub App through GitHub's manifest flow and put GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY, GITHUB_WEBHOOK_SECRET",
      ].join("\n"),
    );
    expect(run.stdout()).toContain("Bypass, for https://fleet.example.com/api/agent/*, https://fleet.example.com/webhooks/github");
    const calls = await wrangler.calls();
    expect(calls.map((call) => call.args.join(" "))).toEqual(["whoami", "d1 list --json", "r2 bucket info nixfleet-cache"]);
    expect(await wrangler.account()).toEqual({ databases: [], buckets: [], migrated: false, deployed: false, secrets: {} });
    await expect(fs.stat(deploymentDir)).rejects.toThrow(/ENOENT/);
  });

  it("registers the GitHub App through the manifest flow and the App's id, key and webhook secret reach wrangler secret put; a second run plans nothing", async () => {
    const wrangler = await installFakeWrangler(path.join(dir, "full"));
    const deploymentDir = path.join(dir, "full", "deployment");
    const access = ["--access-aud", "4714c1358e65fe4b", "--access-team-domain", "https://myteam.cloudflareaccess.com"];
    const run = setup(wrangler, deploymentDir, ...access);
    const localPage = await eventually("setup to open its local page", () => /Open (http:\/\/127\.0\.0\.1:\d+\/) in your browser/.exec(run.stdout())?.[1], {
      giveUpWhen: () => (run.stderr() ? `setup failed: ${run.stderr()}` : null),
    });
    const done = await registerLikeABrowser(localPage);
    expect(done).toContain("The App is registered. Now install it on example/fleet");
    expect(await run.code, run.stderr()).toBe(0);

    const [app] = emulator.apps.apps;
    expect(emulator.apps.apps).toHaveLength(1);
    expect(app!.manifest).toMatchObject({
      name: "NixFleet fleet.example.com",
      url: "https://fleet.example.com",
      hook_attributes: { url: "https://fleet.example.com/webhooks/github", active: true },
      default_permissions: { contents: "write", pull_requests: "write", checks: "read", statuses: "write", metadata: "read" },
      default_events: ["push", "pull_request", "check_suite", "check_run", "status"],
    });
    const account = await wrangler.account();
    expect(account.secrets).toMatchObject({
      GITHUB_APP_ID: String(app!.id),
      GITHUB_APP_PRIVATE_KEY: app!.pem,
      GITHUB_WEBHOOK_SECRET: app!.webhookSecret,
      GITHUB_REPOSITORY: "example/fleet",
      GITHUB_API_URL: apiUrl,
      ACCESS_AUD: "4714c1358e65fe4b",
      ACCESS_TEAM_DOMAIN: "https://myteam.cloudflareaccess.com",
    });
    expect(Buffer.from(account.secrets.SETTINGS_ENCRYPTION_KEY!, "base64")).toHaveLength(32);
    const tokenFile = path.join(deploymentDir, "metrics-token");
    expect((await fs.readFile(tokenFile, "utf8")).trim()).toBe(account.secrets.METRICS_TOKEN);
    expect((await fs.stat(tokenFile)).mode & 0o777).toBe(0o600);
    expect(account).toMatchObject({ migrated: true, deployed: true });

    // The deployment's own configuration, not the committed one: its database, workers.dev off, its hostname.
    const config = await fs.readFile(path.join(deploymentDir, "wrangler.toml"), "utf8");
    expect(config).toContain(`database_id = "${account.databases[0]!.uuid}"`);
    expect(config).toMatch(/^workers_dev = false$/m);
    expect(config).toContain('DASHBOARD_URL = "https://fleet.example.com"');
    const configFlag = ["--config", path.join(deploymentDir, "wrangler.toml")];
    expect(account.buckets).toEqual(["nixfleet-cache"]);
    // Account-wide, not the Worker's: the database and the bucket are created without the config.
    for (const call of writes(await wrangler.calls()).filter((call) => call.args[1] !== "create" && call.args[2] !== "create")) {
      expect(call.args.slice(-2), call.args.join(" ")).toEqual(configFlag);
    }

    // The person installs the App; the Worker's GitHub client finds the installation with no id given.
    const installed = await fetch(`${apiUrl}/apps/${app!.slug}/installations/new`, { method: "POST" });
    expect(installed.status).toBe(200);
    const client = new GitHubClient({
      apiUrl,
      repository: { owner: "example", name: "fleet", fullName: "example/fleet" },
      auth: { kind: "app", appId: account.secrets.GITHUB_APP_ID!, privateKey: account.secrets.GITHUB_APP_PRIVATE_KEY!, installationId: null },
    });
    expect((await client.branchHead("main")).sha).toBe(await emulator.branchSha("main"));

    // Again, against what the first run left: nothing to do, and no wrangler call that changes anything.
    const callsBefore = (await wrangler.calls()).length;
    const again = setup(wrangler, deploymentDir, ...access);
    expect(await again.code, again.stderr()).toBe(0);
    expect(again.stdout()).toContain("Nothing to do: the deployment is set up.");
    const secondRun = (await wrangler.calls()).slice(callsBefore);
    expect(secondRun.length).toBeGreaterThan(0);
    expect(writes(secondRun)).toEqual([]);
    expect((await wrangler.account()).secrets).toEqual(account.secrets);
  });

  it("stops with the fix when wrangler is not logged in", async () => {
    const wrangler = await installFakeWrangler(path.join(dir, "logged-out"));
    // What wrangler 4 prints, with exit status 0, to `whoami` without a login.
    await fs.writeFile(path.join(wrangler.binDir, "wrangler"), "#!/bin/sh\necho 'You are not authenticated. Please run `wrangler login`.'\n", { mode: 0o755 });
    const run = setup(wrangler, path.join(dir, "logged-out", "deployment"));
    expect(await run.code).toBe(1);
    expect(run.stderr()).toBe("nixfleet setup: wrangler is not logged in: run `npx wrangler login` first\n");
  });
});
