import { afterAll, beforeAll, expect, it } from "vitest";
import { FIRST_ROWS, WRITTEN_ROWS } from "../../common/fleet-table.ts";
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
    // The rows past the screen are not laid out until scrolled to; the height they are given meanwhile is a row's
    // laid out, so the table (and the scrollbar) is as tall before as after: laid out, it keeps its height.
    const heights = await table.evaluate(async (element) => {
      const before = element.getBoundingClientRect().height;
      element.querySelectorAll<HTMLElement>("[role=row][data-host]").forEach((row) => (row.style.contentVisibility = "visible"));
      await new Promise(requestAnimationFrame);
      const after = element.getBoundingClientRect().height;
      element.querySelectorAll<HTMLElement>("[role=row][data-host]").forEach((row) => (row.style.contentVisibility = ""));
      return { before, after };
    });
    expect(Math.abs(heights.after - heights.before), JSON.stringify(heights)).toBeLessThanOrEqual(1);
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
    expect(await served.evaluateAll((rows) => rows.map((row) => row.getAttribute("data-host")))).toEqual(Array.from({ length: WRITTEN_ROWS }, (_, i) => hostName(i)));
    expect(await page.locator("nf-app > .first-table .reserved").count()).toBe(FIRST_ROWS - WRITTEN_ROWS);
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
    await page.locator("nf-app .connection.live").waitFor();
    await page.getByRole("checkbox", { name: `Select ${hostName(0)}` }).check();
    await expect.poll(() => fleetRow(page, hostName(0)).getAttribute("class")).toContain("selected");
    expect(session.errors).toEqual([]);
  });

  it("paints the page it comes with first with its written rows and the height of the components' first rows, laid out as the components lay out theirs: the table does not move in any frame when they take over, it ends where theirs ends, and nothing shifts", async () => {
    // A page of its own: the recorder below is installed before the page's own scripts, for every frame from the first
    // (an animation frame callback runs once per frame the page renders).
    const page = await session.context.newPage();
    try {
      await page.addInitScript(() => {
        const seen: { shifts: number; frames: { live: boolean; rows: number; table: number | null; tenthRow: number | null; tableBottom: number | null }[] } = { shifts: 0, frames: [] };
        Object.assign(window, { nfLayout: seen });
        new PerformanceObserver((list) => {
          for (const entry of list.getEntries()) {
            const shift = entry as PerformanceEntry & { value: number; hadRecentInput: boolean };
            if (!shift.hadRecentInput) seen.shifts += shift.value;
          }
        }).observe({ type: "layout-shift", buffered: true });
        // Where the table on screen is in each frame: the written one until nf-app is defined, the components' after.
        const frame = () => {
          const app = document.querySelector("nf-app");
          const live = customElements.get("nf-app") !== undefined;
          const table = live
            ? (app?.shadowRoot?.querySelector("nf-fleet-panel")?.shadowRoot?.querySelector("nf-fleet-table")?.shadowRoot?.querySelector("[role=table]") ?? null)
            : (app?.querySelector(":scope > .first-table [role=table]") ?? null);
          const top = (element: Element | null | undefined) => (element ? element.getBoundingClientRect().top : null);
          const rows = table?.querySelectorAll("[data-host]") ?? [];
          seen.frames.push({ live, rows: rows.length, table: top(table), tenthRow: top(rows[9]), tableBottom: table ? table.getBoundingClientRect().bottom : null });
          requestAnimationFrame(frame);
        };
        requestAnimationFrame(frame);
      });
      await page.goto(dashboard.url);
      await fleetRow(page, hostName(HOSTS - 1)).waitFor();
      // A few frames with the live table on screen, so that a late block (the banner, the summary) would be seen.
      await page.waitForFunction(() => (window as unknown as { nfLayout: { frames: { live: boolean }[] } }).nfLayout.frames.filter((f) => f.live).length >= 5);
      const seen = await page.evaluate(() => (window as unknown as { nfLayout: { shifts: number; frames: { live: boolean; rows: number; table: number | null; tenthRow: number | null; tableBottom: number | null }[] } }).nfLayout);
      // The page's first frame waits for its table (worker/fleet-page.ts's TABLE_RENDER_BLOCK): it already holds every written row.
      const [first] = seen.frames;
      expect(first).toMatchObject({ live: false, rows: WRITTEN_ROWS });
      expect(first!.table).toBeGreaterThan(0);
      // The rows it does not write have their places kept: the components' first rows end where its table ends.
      const firstLive = seen.frames.find((frame) => frame.live && frame.rows === FIRST_ROWS);
      expect(firstLive, "no frame of the components with their first rows").toBeDefined();
      expect(Math.abs(firstLive!.tableBottom! - first!.tableBottom!), `the table's end moved by ${firstLive!.tableBottom! - first!.tableBottom!} px`).toBeLessThanOrEqual(1);
      for (const frame of seen.frames) {
        expect(frame.table, `a frame ${frame.live ? "of the components" : "of the written page"} without its table`).not.toBeNull();
        expect(Math.abs(frame.table! - first!.table!), `the table moved by ${frame.table! - first!.table!} px`).toBeLessThanOrEqual(1);
        expect(Math.abs(frame.tenthRow! - first!.tenthRow!), `the tenth row moved by ${frame.tenthRow! - first!.tenthRow!} px`).toBeLessThanOrEqual(1);
      }
      expect(seen.shifts).toBeLessThan(0.01);
    } finally {
      await page.close();
    }
  });
});
