import { afterAll, beforeAll, expect, it } from "vitest";
import { FIRST_ROWS } from "../../ui/common/table-rows.ts";
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
});
