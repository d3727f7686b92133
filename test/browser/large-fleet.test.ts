import { afterAll, beforeAll, expect, it } from "vitest";
import { FIRST_ROWS } from "../../common/fleet-table.ts";
import { describeWithBrowser, openBrowser, type BrowserSession } from "./browser.ts";
import { startDashboard, type Dashboard } from "./dashboard.ts";
import { addHostThroughApi, fleetRow } from "./helpers.ts";

const HOSTS = FIRST_ROWS + 30;
const hostName = (i: number) => `host-${String(i).padStart(3, "0")}`;

describeWithBrowser("a fleet larger than the table's first frame, in Chromium", () => {
  let dashboard: Dashboard;
  let session: BrowserSession;

  beforeAll(async () => {
    dashboard = await startDashboard();
    for (let i = 0; i < HOSTS; i += 10) {
      await Promise.all(Array.from({ length: Math.min(10, HOSTS - i) }, (_, j) => addHostThroughApi(dashboard, hostName(i + j))));
    }
    session = await openBrowser();
  });
  afterAll(async () => {
    await session?.close();
    await dashboard?.stop();
  });

  it("renders the first rows in the first frame and the others after it, until every host has its row", async () => {
    const { page } = session;
    await page.goto(dashboard.url);
    await fleetRow(page, hostName(HOSTS - 1)).waitFor();
    const table = page.locator("nf-fleet-table [role=table]");
    expect(await table.getAttribute("aria-rowcount")).toBe(String(HOSTS + 1));
    expect(await page.locator("nf-fleet-table [role=row][data-host]").count()).toBe(HOSTS);

    const rendered = await page.evaluate(() =>
      performance.getEntriesByName("nf-fleet-table-rendered").map((mark) => (mark instanceof PerformanceMark ? mark.detail : null)),
    );
    expect(rendered).toEqual([
      { rows: FIRST_ROWS, hosts: HOSTS },
      { rows: HOSTS, hosts: HOSTS },
    ]);
    // Select all takes every host, the rows rendered later included.
    await page.getByRole("checkbox", { name: "Select all hosts" }).check();
    await expect.poll(() => page.locator("nf-fleet-table [role=row][data-host].selected").count()).toBe(HOSTS);
    expect(session.errors).toEqual([]);
  });

  it("comes with the table's first rows, shown with no module run, and the components render theirs from the answer it carries, which then go live", async () => {
    const { page } = session;
    // No module: the page's own markup is the table, on screen.
    await page.route("**/chunks/first-paint-*", (route) => route.abort());
    await page.goto(dashboard.url);
    const served = page.locator("nf-app > .first-table [data-host]");
    expect(await served.evaluateAll((rows) => rows.map((row) => row.getAttribute("data-host")))).toEqual(Array.from({ length: FIRST_ROWS }, (_, i) => hostName(i)));
    await expect.poll(() => served.first().isVisible()).toBe(true);
    expect(await page.evaluate(() => customElements.get("nf-app"))).toBeUndefined();
    await page.unroute("**/chunks/first-paint-*");
    // The one error is the blocked module's.
    expect(session.errors.splice(0)).toEqual(["console: Failed to load resource: net::ERR_FAILED"]);

    await page.goto(dashboard.url);
    await fleetRow(page, hostName(HOSTS - 1)).waitFor();
    expect(await served.first().isVisible()).toBe(false);
    // The components took the answer the page carried: the fleet was asked for only afterwards (the live connection's resynchronising read).
    const seen = await page.evaluate(() => ({
      rendered: performance.getEntriesByName("nf-fleet-table-rendered")[0]?.startTime ?? NaN,
      fleetAsked: performance.getEntriesByType("resource").filter((entry) => new URL(entry.name).pathname === "/api/hosts").map((entry) => entry.startTime),
    }));
    for (const at of seen.fleetAsked) expect(at).toBeGreaterThan(seen.rendered);
    // Live: connected to the control plane's events, and the rows answer.
    await expect.poll(() => page.locator("nf-app .connection").textContent()).toContain("live");
    await page.getByRole("checkbox", { name: `Select ${hostName(0)}` }).check();
    await expect.poll(() => fleetRow(page, hostName(0)).getAttribute("class")).toContain("selected");
    expect(session.errors).toEqual([]);
  });
});
