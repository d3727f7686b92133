/**
 * The dashboard behind Cloudflare Access in Chromium, signed in as a viewer
 * and as an operator: what the role may not do is disabled, and says why.
 * The Access JWTs are signed with a local key whose JWKS a local server hands
 * the real control plane; the browser sends the JWT as Access would. The GitHub
 * emulator holds an open update PR, so the banner's merges are there to check.
 */
import { mkdtemp } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from "jose";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { GitHubEmulator } from "../../tools/github-emulator/emulator.ts";
import { describeWithBrowser, openBrowser, type BrowserSession } from "./browser.ts";
import { startDashboard, type Dashboard } from "./dashboard.ts";
import { fleetRow, menu } from "./helpers.ts";
import { removeHostRoot } from "../support/host-root.ts";

const TEAM = "https://browserteam.cloudflareaccess.com";
const AUD = "browser-roles-aud";
const SECRET = "browser-roles-webhook-secret";
const GITHUB_TOKEN = "github_pat_browser_roles";

describeWithBrowser("roles in the dashboard", () => {
  let dashboard: Dashboard;
  let jwks: Server;
  let key: CryptoKey;
  let session: BrowserSession;
  let page: Page;
  let github: GitHubEmulator;
  let root: string;

  const assertion = (email: string) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ email })
      .setProtectedHeader({ alg: "RS256", kid: "browser-key" })
      .setIssuedAt(now - 10)
      .setIssuer(TEAM)
      .setAudience(AUD)
      .setExpirationTime(now + 3600)
      .setSubject(email)
      .sign(key);
  };

  const signInAs = async (email: string) => {
    await session.context.setExtraHTTPHeaders({ "cf-access-jwt-assertion": await assertion(email) });
    await page.goto(dashboard.url);
    await fleetRow(page, "gamma").waitFor();
  };

  beforeAll(async () => {
    const pair = await generateKeyPair("RS256", { extractable: true });
    key = pair.privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: "browser-key", alg: "RS256", use: "sig" };
    jwks = createServer((_req, res) => {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve));
    const address = jwks.address();
    const port = typeof address === "object" && address ? address.port : 0;
    root = await mkdtemp(join(tmpdir(), "nixfleet-browser-roles-"));
    github = new GitHubEmulator({ owner: "example", repo: "fleet", workDir: join(root, "github"), webhookSecret: SECRET, token: GITHUB_TOKEN });
    const githubUrl = await github.start();
    dashboard = await startDashboard({
      GITHUB_REPOSITORY: "example/fleet",
      GITHUB_WEBHOOK_SECRET: SECRET,
      GITHUB_TOKEN,
      GITHUB_API_URL: githubUrl,
      ACCESS_AUD: AUD,
      ACCESS_TEAM_DOMAIN: TEAM,
      ACCESS_JWKS_URL: `http://127.0.0.1:${port}/certs`,
      ADMIN_EMAILS: "admin@example.com",
      OPERATOR_EMAILS: "oncall@example.com",
    });
    const created = await fetch(`${dashboard.url}/api/hosts`, {
      method: "POST",
      headers: { "cf-access-jwt-assertion": await assertion("admin@example.com"), "content-type": "application/json" },
      body: JSON.stringify({ name: "gamma", platform: "nixos" }),
    });
    expect(created.status).toBe(201);
    github.setWebhookUrl(`${dashboard.url}/webhooks/github`);
    await github.seedExampleFlake();
    await github.openFlakeUpdatePullRequest();
    session = await openBrowser();
    page = session.page;
  });
  afterAll(async () => {
    await session?.close();
    await dashboard?.stop();
    await github?.stop();
    jwks?.close();
    if (root) await removeHostRoot(root);
  });

  it("shows a viewer everything, with every change disabled and the reason on it", async () => {
    const askedForMe: string[] = [];
    const onRequest = (request: { url(): string }) => {
      if (new URL(request.url()).pathname === "/api/me") askedForMe.push(request.url());
    };
    page.on("request", onRequest);
    await signInAs("viewer@example.com");
    await page.getByTestId("role-note").getByText("viewer@example.com · viewer: read only").waitFor();
    // The fleet page carries who it was written for: the components disable from their first frame, asking nothing.
    const add = page.getByRole("button", { name: "Add host" }).first();
    expect(await add.getAttribute("title")).toBe("needs the admin role: viewer@example.com is a viewer");
    page.off("request", onRequest);
    expect(askedForMe).toEqual([]);

    // Another page of the dashboard is the static one: the role arrives with its own request there.
    await page.goto(`${dashboard.url}/hosts/gamma`);
    await page.getByRole("heading", { name: "gamma", level: 1 }).waitFor();
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Fleet" }).click();
    await fleetRow(page, "gamma").waitFor();
    await page.getByTestId("role-note").getByText("viewer@example.com · viewer: read only").waitFor();
    await expect.poll(() => add.getAttribute("title")).toBe("needs the admin role: viewer@example.com is a viewer");
    expect(await add.isDisabled()).toBe(true);
    const pull = page.getByRole("toolbar", { name: "Bulk actions" }).getByRole("button", { name: "Pull", exact: true });
    await expect.poll(() => pull.getAttribute("title")).toBe("needs the operator role: viewer@example.com is a viewer");
    expect(await pull.isDisabled()).toBe(true);

    // Merging an update PR is an operator's: the banner's merges are there, disabled, with why.
    const banner = page.getByRole("region", { name: /flake\.lock/ });
    for (const name of ["Merge…", "Merge & Deploy…"]) {
      const button = banner.getByRole("button", { name, exact: true });
      await expect.poll(() => button.getAttribute("title"), { message: name }).toBe("needs the operator role: viewer@example.com is a viewer");
      expect(await button.isDisabled(), name).toBe(true);
    }

    await fleetRow(page, "gamma").locator('button.cell[data-compartment="git"]').click();
    const pullItem = menu(page).getByRole("menuitem", { name: /^Pull needs/ });
    await expect.poll(() => pullItem.textContent()).toContain("needs the operator role");
    expect(await pullItem.isDisabled()).toBe(true);
    await page.keyboard.press("Escape");

    await page.getByRole("button", { name: "Actions for gamma" }).click();
    for (const name of ["Rollback system", "Rotate token", "Remove host"]) {
      expect(await menu(page).getByRole("menuitem", { name: new RegExp(`^${name}`) }).isDisabled(), name).toBe(true);
    }
    await page.keyboard.press("Escape");
  });

  it("lets an operator run commands but not add, remove or re-key hosts", async () => {
    await signInAs("oncall@example.com");
    await page.getByTestId("role-note").getByText("oncall@example.com · operator: runs commands, cannot add or remove hosts").waitFor();
    const add = page.getByRole("button", { name: "Add host" }).first();
    await expect.poll(() => add.getAttribute("title")).toBe("needs the admin role: oncall@example.com is an operator");
    expect(await add.isDisabled()).toBe(true);
    const banner = page.getByRole("region", { name: /flake\.lock/ });
    for (const name of ["Merge…", "Merge & Deploy…"]) {
      const button = banner.getByRole("button", { name, exact: true });
      await expect.poll(() => button.getAttribute("title"), { message: name }).not.toContain("needs the");
      expect(await button.isDisabled(), name).toBe(false);
    }

    await page.getByRole("button", { name: "Actions for gamma" }).click();
    const rotate = menu(page).getByRole("menuitem", { name: /^Rotate token/ });
    await expect.poll(() => rotate.textContent()).toContain("needs the admin role: oncall@example.com is an operator");
    expect(await rotate.isDisabled()).toBe(true);
    expect(await menu(page).getByRole("menuitem", { name: /^Rollback system/ }).isDisabled()).toBe(false);
    await page.keyboard.press("Escape");

    await fleetRow(page, "gamma").locator('button.cell[data-compartment="git"]').click();
    await menu(page).getByRole("menuitem", { name: /^Pull fetch/ }).click();
    await fleetRow(page, "gamma").getByText("Pull queued…").waitFor();
    const audit = await fetch(`${dashboard.url}/api/audit`, { headers: { "cf-access-jwt-assertion": await assertion("viewer@example.com") } });
    expect((await audit.json()).entries[0]).toMatchObject({ actor: "oncall@example.com", role: "operator", action: "command.pull" });
  });
});
