/**
 * The Settings page in Chromium against the real control plane: an admin edits and saves (a channel's
 * secret never comes back, it shows as set), a bad value is marked beside its field and nothing is sent,
 * and a save over someone else's newer save is refused with a reload that shows theirs.
 */
import type { Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { SettingsResponse, type Settings } from "../../common/protocol.ts";
import { describeWithBrowser, openBrowser, type BrowserSession } from "./browser.ts";
import { startDashboard, type Dashboard } from "./dashboard.ts";

const SLACK = "https://hooks.slack.com/services/T1/B1/browserSECRET9876";

describeWithBrowser("the Settings page", () => {
  let dashboard: Dashboard;
  let session: BrowserSession;
  let page: Page;

  const stored = async (): Promise<Settings> => {
    const res = await dashboard.api("/api/settings");
    expect(res.status).toBe(200);
    return SettingsResponse.parse(res.json).settings;
  };
  const section = (name: string) => page.getByRole("region", { name });
  const open = async () => {
    await page.goto(`${dashboard.url}/settings`);
    await page.getByRole("button", { name: "Save settings" }).waitFor();
  };

  beforeAll(async () => {
    dashboard = await startDashboard();
    session = await openBrowser();
    page = session.page;
  });
  afterAll(async () => {
    await session?.close();
    await dashboard?.stop();
  });

  it("is reached from the navigation and saves an edit: rollout numbers, the gc defaults, public cache reads and the cache clean-up's commits (its size line too), a window and a Slack channel", async () => {
    await page.goto(dashboard.url);
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Settings" }).click();
    await page.getByRole("heading", { name: "Settings", level: 1 }).waitFor();
    expect(new URL(page.url()).pathname).toBe("/settings");

    const rollout = section("Rollout");
    await rollout.getByLabel("Canary hosts").fill("3");
    await rollout.getByLabel("Wave size").fill("2");
    await section("Automation").getByLabel("Merge and deploy update PRs automatically").check();
    const gc = section("Garbage collection");
    await gc.getByText(/A host's own module options gc\.keepGenerations and gc\.keepDays win\./).waitFor();
    await gc.getByLabel("Keep the newest generations").fill("8");
    await gc.getByLabel("Keep generations younger than (days)").fill("30");
    const cache = section("Binary cache");
    await cache.getByLabel("Anyone may read the binary cache").check();
    await cache.getByLabel("Clean-up keeps main's last commits").fill("5");
    // No clean-up ran against this control plane's bucket: the size is not counted yet, and the line says so.
    await cache.getByText("The cache's size is counted by its daily clean-up, which has not finished a pass yet.").waitFor();
    await section("Maintenance windows").getByRole("button", { name: "Add window" }).click();
    const window = page.getByRole("group", { name: "Window 1" });
    await window.getByLabel("Time zone").fill("Europe/Vienna");
    await window.getByLabel("Hosts").fill("hsb0, csb1");
    await section("Notifications").getByRole("button", { name: "Add channel" }).click();
    const channel = page.getByRole("group", { name: "Channel 1" });
    await channel.getByLabel("Kind").selectOption("slack");
    await channel.getByLabel("Incoming webhook URL").fill(SLACK);
    await channel.getByLabel("Host offline").uncheck();
    // Last: the row is then named after it.
    await channel.getByLabel("Name").fill("ops room");
    await page.getByRole("button", { name: "Save settings" }).click();
    await page.getByText("Saved (version 1).").waitFor();

    const saved = await stored();
    expect(saved).toMatchObject({
      version: 1,
      automation: { enabled: true },
      rollout: { canary: 3, waveSize: 2 },
      gc: { keepGenerations: 8, keepDays: 30 },
      cache: { public: true, keepCommits: 5, graceHours: 24 },
      windows: [{ days: ["sat"], start: "02:00", end: "04:00", timeZone: "Europe/Vienna", hosts: ["hsb0", "csb1"] }],
    });
    expect(saved.notifications).toEqual([
      expect.objectContaining({ kind: "slack", name: "ops room", url: "********", urlHint: "https://hooks.slack.com/…9876", events: expect.not.arrayContaining(["host-offline"]) }),
    ]);

    // Opened again: the secret is not in the page, only that it is set; saving keeps it.
    await open();
    const url = page.getByRole("group", { name: "ops room" }).getByLabel("Incoming webhook URL");
    await expect.poll(() => url.getAttribute("placeholder")).toBe("set — leave to keep (https://hooks.slack.com/…9876)");
    expect(await url.inputValue()).toBe("");
    expect(await page.content()).not.toContain("browserSECRET9876");
    await section("Rollout").getByLabel("Canary soak (seconds)").fill("60");
    await page.getByRole("button", { name: "Save settings" }).click();
    await page.getByText("Saved (version 2).").waitFor();
    const again = await stored();
    expect(again.rollout.canarySoakSeconds).toBe(60);
    expect(again.notifications[0]).toMatchObject({ url: "********", urlHint: "https://hooks.slack.com/…9876" });
  });

  it("marks a bad value beside its field and sends nothing", async () => {
    await open();
    const before = await stored();
    const canary = section("Rollout").getByLabel("Canary hosts");
    await canary.fill("-1");
    await section("Maintenance windows").getByRole("button", { name: "Add window" }).click();
    const window = page.getByRole("group", { name: `Window ${before.windows.length + 1}` });
    await window.getByLabel("Time zone").fill("Mars/Olympus");
    await page.getByRole("button", { name: "Save settings" }).click();
    await page.getByText("Some settings are not valid: see the marked fields.").waitFor();
    await expect.poll(() => canary.getAttribute("aria-invalid")).toBe("true");
    await section("Rollout").getByText("must be at least 0").waitFor();
    await window.getByText("not an IANA time zone (like Europe/Vienna or UTC)").waitFor();
    expect(await stored()).toEqual(before);

    // Fixed in place, the marks go and the save goes through.
    await canary.fill("1");
    await window.getByLabel("Time zone").fill("UTC");
    await expect.poll(() => canary.getAttribute("aria-invalid")).toBe("false");
    await page.getByRole("button", { name: "Save settings" }).click();
    await page.getByText(`Saved (version ${before.version + 1}).`).waitFor();
  });

  it("refuses a save over someone else's newer save and reloads theirs on request", async () => {
    await open();
    await section("Rollout").getByLabel("Soak after each wave (seconds)").fill("30");
    // Leaving the field commits the edit (its change event), as a person moving on does.
    await page.keyboard.press("Tab");

    // Someone else saves meanwhile (a script, or another admin's tab).
    const theirs = await stored();
    const put = await dashboard.api("/api/settings", { method: "PUT", body: { ...theirs, rollback: { ...theirs.rollback, strategy: "alert-only" } } });
    expect(put.status).toBe(200);

    await page.getByRole("button", { name: "Save settings" }).click();
    const alert = page.getByRole("alert").filter({ hasText: "Not saved: someone else changed the settings." });
    await expect.poll(() => alert.textContent()).toContain(`the current version is ${theirs.version + 1}`);
    expect((await stored()).rollout.soakSeconds).toBe(theirs.rollout.soakSeconds);

    await alert.getByRole("button", { name: "Reload the current settings" }).click();
    await alert.waitFor({ state: "detached" });
    // The reload's answer may land after the alert has gone.
    await expect.poll(() => section("Rollback").getByLabel("When a rollout fails").inputValue()).toBe("alert-only");
    await expect.poll(() => section("Rollout").getByLabel("Soak after each wave (seconds)").inputValue()).toBe(String(theirs.rollout.soakSeconds));
  });

  it("creates the CI token, shows it once, and rotates it: the old one is refused from then on", async () => {
    const publish = async (token: string) =>
      (
        await fetch(`${dashboard.url}/api/desired`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify({ commit: "5a".repeat(20), hosts: { "no-such-host": "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-x" } }),
        })
      ).status;
    await open();
    const ci = section("CI token for desired systems");
    await ci.getByText("No CI token yet.").waitFor();
    await ci.getByRole("button", { name: "Create a CI token" }).click();
    const shown = ci.getByLabel("CI token");
    await shown.waitFor();
    const first = await shown.inputValue();
    expect(first).toMatch(/^nfci_[A-Za-z0-9_-]{43}$/);
    await ci.getByText(/In force since .+, created by developer@localhost\./).waitFor();
    // Authenticated: refused for its body (a host the fleet does not have), not for the token.
    expect(await publish(first)).toBe(400);

    await ci.getByRole("button", { name: "Rotate the CI token" }).click();
    await expect.poll(() => shown.inputValue()).not.toBe(first);
    expect(await publish(first)).toBe(401);
    expect(await publish(await shown.inputValue())).toBe(400);
    // Opened again, the token is gone from the page; only when it was created is shown.
    await open();
    await section("CI token for desired systems").getByText(/In force since /).waitFor();
    expect(await page.content()).not.toContain(first.slice(5));
  });

  it("creates the binary cache's upload token, shows it once, and rotates it: the old one reads the cache no more", async () => {
    const read = async (token: string) => (await fetch(`${dashboard.url}/cache/nix-cache-info`, { headers: { authorization: `Basic ${btoa(`builder:${token}`)}` } })).status;
    await open();
    const cache = section("Binary cache upload token");
    await cache.getByText("No cache token yet.").waitFor();
    await cache.getByRole("button", { name: "Create a cache token" }).click();
    const shown = cache.getByLabel("Cache token");
    await shown.waitFor();
    const first = await shown.inputValue();
    expect(first).toMatch(/^nfc_[A-Za-z0-9_-]{43}$/);
    expect(await read(first)).toBe(200);
    await cache.getByRole("button", { name: "Rotate the cache token" }).click();
    await expect.poll(() => shown.inputValue()).not.toBe(first);
    expect(await read(first)).toBe(401);
    expect(await read(await shown.inputValue())).toBe(200);
  });

  it("reports no page errors but the refused save's 409", () => {
    expect(session.errors.filter((e) => !e.includes("status of 409"))).toEqual([]);
  });
});
