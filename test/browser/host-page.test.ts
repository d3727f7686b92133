import { afterAll, beforeAll, expect, it } from "vitest";
import type { Page } from "playwright-core";
import { describeWithBrowser, openBrowser, type BrowserSession } from "./browser.ts";
import { startDashboard, type Dashboard } from "./dashboard.ts";
import { addHostThroughApi, deepFocus, fleetRow, menu } from "./helpers.ts";

describeWithBrowser("host page and audit log in Chromium", () => {
  let dashboard: Dashboard;
  let session: BrowserSession;
  let page: Page;

  beforeAll(async () => {
    dashboard = await startDashboard();
    await addHostThroughApi(dashboard, "hsb0");
    session = await openBrowser();
    page = session.page;
  });
  afterAll(async () => {
    await session?.close();
    await dashboard?.stop();
  });

  it("opens a host's page from the table without reloading, and focus lands on its heading", async () => {
    await page.goto(dashboard.url);
    await page.evaluate(() => Object.assign(window, { __nixfleetNoReload: true }));
    await fleetRow(page, "hsb0").getByRole("link", { name: "hsb0" }).click();
    await page.getByRole("heading", { name: "hsb0", level: 1 }).waitFor();
    await expect.poll(() => new URL(page.url()).pathname).toBe("/hosts/hsb0");
    expect(await page.evaluate(() => "__nixfleetNoReload" in window)).toBe(true);
    await expect.poll(() => page.title()).toBe("hsb0 · NixFleet");
    await expect.poll(() => deepFocus(page)).toBe("h1:hsb0");
  });

  it("shows the five compartments with their reasons, and says when there is no report yet", async () => {
    await page.goto(`${dashboard.url}/hosts/hsb0`);
    for (const name of ["Agent", "Git", "Lock", "System", "Tests"]) {
      const card = page.locator("nf-compartment-card").filter({ has: page.getByRole("heading", { name, exact: true }) });
      await card.getByText("never connected").waitFor();
      await card.getByText("unknown").waitFor();
    }
    await page.locator("nf-host-report").getByText("No report yet: the agent has not connected.").waitFor();
    await page.locator("nf-command-history").getByText("No commands yet.").waitFor();
  });

  it("follows a queued command live: history, output placeholder and the Stop that cancels it", async () => {
    await page.goto(`${dashboard.url}/hosts/hsb0`);
    await page.getByRole("button", { name: "Tests actions" }).click();
    await menu(page).getByRole("menuitem", { name: /^Run tests/ }).click();
    const output = page.locator("nf-command-output");
    await output.getByText("Queued: waiting for the host to pick it up…").waitFor();
    await output.locator('[data-state="queued"]').waitFor();
    const history = page.locator("nf-command-history");
    await history.getByRole("row").filter({ hasText: "Run tests" }).getByText("queued").waitFor();
    await page.getByRole("status").filter({ hasText: "Run tests" }).getByRole("button", { name: "Stop" }).click();
    await output.locator('[data-state="cancelled"]').waitFor();
    await history.getByRole("row").filter({ hasText: "Run tests" }).getByText("cancelled").waitFor();
    await output.getByText(/stopped by developer@localhost before delivery/).waitFor();
  });

  it("loads a host page by its address (the worker serves the app for it) and explains an unknown host", async () => {
    await page.goto(`${dashboard.url}/hosts/ghost`);
    await page.getByRole("alert").getByText("no host named ghost").waitFor();
    await page.getByRole("link", { name: "← Fleet" }).click();
    await fleetRow(page, "hsb0").waitFor();
  });

  it("lists who did what in the audit log, newest first, with links to hosts that exist", async () => {
    await page.goto(dashboard.url);
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Audit log" }).click();
    await page.getByRole("heading", { name: "Audit log", level: 1 }).waitFor();
    const rows = page.locator("nf-audit-panel tbody tr");
    const actions = page.locator("nf-audit-panel td.action");
    await expect.poll(async () => (await actions.allTextContents()).slice(0, 3)).toEqual(["command.stop", "command.test", "host.create"]);
    const created = rows.filter({ hasText: "host.create" });
    await expect.poll(() => created.getByText("developer@localhost").count()).toBe(1);
    await created.getByRole("link", { name: "hsb0" }).click();
    await page.getByRole("heading", { name: "hsb0", level: 1 }).waitFor();
  });
});
