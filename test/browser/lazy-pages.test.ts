import { afterAll, beforeAll, expect, it } from "vitest";
import type { Page } from "playwright-core";
import { describeWithBrowser, openBrowser, type BrowserSession } from "./browser.ts";
import { startDashboard, type Dashboard } from "./dashboard.ts";
import { addHostThroughApi, deepFocus, fleetRow } from "./helpers.ts";

/** The chunk URLs a page asked for, in order. */
function chunkRequests(page: Page): string[] {
  const urls: string[] = [];
  page.on("request", (request) => {
    const path = new URL(request.url()).pathname;
    if (path.startsWith("/chunks/")) urls.push(path);
  });
  return urls;
}

const nav = (page: Page) => page.getByRole("navigation", { name: "Main" });

describeWithBrowser("lazily loaded pages in Chromium", () => {
  let dashboard: Dashboard;
  let session: BrowserSession;
  let page: Page;
  let requested: string[];

  beforeAll(async () => {
    dashboard = await startDashboard();
    await addHostThroughApi(dashboard, "web1");
    session = await openBrowser();
    page = session.page;
    requested = chunkRequests(page);
  });
  afterAll(async () => {
    await session?.close();
    await dashboard?.stop();
  });

  it("renders the fleet table before asking for any chunk, then fetches the host page's alone", async () => {
    await page.goto(dashboard.url);
    await fleetRow(page, "web1").waitFor();
    await expect.poll(() => requested.filter((url) => url.includes("nf-"))).toEqual([expect.stringMatching(/^\/chunks\/nf-host-panel-\w+\.js$/)]);
    // Resource timings are recorded as each chunk's answer ends.
    const chunkStarts = () =>
      page.evaluate(() =>
        performance
          .getEntriesByType("resource")
          .filter((entry) => new URL(entry.name).pathname.startsWith("/chunks/nf-host-panel-"))
          .map((entry) => entry.startTime),
      );
    await expect.poll(chunkStarts).toHaveLength(1);
    const [fetched] = await chunkStarts();
    // Asked for in the task after the table's frame (as bench/ui.ts's painted mark is, so the two may come in either order).
    const rendered = await page.evaluate(() => performance.getEntriesByName("nf-fleet-table-rendered").map((mark) => mark.startTime));
    expect(rendered).toHaveLength(1);
    expect(fetched).toBeGreaterThan(rendered[0]!);
    expect(session.errors).toEqual([]);
  });

  it("opens /audit and /rollouts by their address: each loads its chunk and renders", async () => {
    await page.goto(`${dashboard.url}/audit`);
    await page.getByRole("heading", { name: "Audit log", level: 1 }).waitFor();
    await page.locator("nf-audit-panel td.action").getByText("host.create").waitFor();
    expect(requested).toContainEqual(expect.stringMatching(/^\/chunks\/nf-audit-panel-\w+\.js$/));
    expect(requested).not.toContainEqual(expect.stringMatching(/nf-rollouts-panel/));

    await page.goto(`${dashboard.url}/rollouts`);
    await page.getByRole("heading", { name: "Update history", level: 1 }).waitFor();
    await page.getByText("No rollout yet.").waitFor();
    expect(requested).toContainEqual(expect.stringMatching(/^\/chunks\/nf-rollouts-panel-\w+\.js$/));
    expect(session.errors).toEqual([]);
  });

  it("loads a page's chunk on first navigation from a nested path, once, and focus lands on the heading", async () => {
    requested.length = 0;
    await page.goto(`${dashboard.url}/hosts/web1`);
    await page.getByRole("heading", { name: "web1", level: 1 }).waitFor();
    await page.evaluate(() => Object.assign(window, { __nixfleetNoReload: true }));
    expect(requested.filter((url) => url.includes("nf-"))).toEqual([expect.stringMatching(/^\/chunks\/nf-host-panel-\w+\.js$/)]);
    requested.length = 0;

    await nav(page).getByRole("link", { name: "Updates" }).click();
    await page.getByRole("heading", { name: "Update history", level: 1 }).waitFor();
    await expect.poll(() => deepFocus(page)).toBe("h1:Update history");
    await nav(page).getByRole("link", { name: "Audit log" }).click();
    await page.locator("nf-audit-panel td.action").getByText("host.create").waitFor();
    await expect.poll(() => deepFocus(page)).toBe("h1:Audit log");
    await nav(page).getByRole("link", { name: "Updates" }).click();
    await page.getByRole("heading", { name: "Update history", level: 1 }).waitFor();

    expect(await page.evaluate(() => "__nixfleetNoReload" in window)).toBe(true);
    expect(requested.filter((url) => url.includes("nf-"))).toEqual([
      expect.stringMatching(/^\/chunks\/nf-rollouts-panel-\w+\.js$/),
      expect.stringMatching(/^\/chunks\/nf-audit-panel-\w+\.js$/),
    ]);
    expect(session.errors).toEqual([]);
  });

  it("serves a chunk as immutable, revalidates it with its ETag, answers a missing one 404 that nobody keeps, and the page itself is not immutable", async () => {
    // The static page (/ is the Worker's, with the module as a file): its inline module names the chunks.
    const html = await (await fetch(`${dashboard.url}/audit`)).text();
    const chunk = /import\("(\/chunks\/nf-audit-panel-\w+\.js)"\)/.exec(html)?.[1];
    expect(chunk).toBeDefined();
    const response = await fetch(`${dashboard.url}${chunk}`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/javascript/);
    expect(response.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(await response.text()).toContain("nf-audit-panel");
    const etag = response.headers.get("etag");
    expect(etag).toBeTruthy();
    const again = await fetch(`${dashboard.url}${chunk}`, { headers: { "if-none-match": etag! } });
    expect(again.status).toBe(304);
    expect(again.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");

    for (const path of [chunk!.replace(/-\w+\.js$/, "-GONE0000.js"), "/chunks/nothing-here"]) {
      const gone = await fetch(`${dashboard.url}${path}`);
      expect([path, gone.status, gone.headers.get("cache-control")]).toEqual([path, 404, "no-store"]);
      expect(await gone.json()).toMatchObject({ error: { code: "not_found" } });
    }
    const index = await fetch(`${dashboard.url}/audit`);
    expect(index.headers.get("cache-control") ?? "").not.toContain("immutable");
    expect(await index.text()).toContain('<script type="module">');
  });
});

describeWithBrowser("a lazily loaded page whose chunk cannot be loaded, in Chromium", () => {
  let dashboard: Dashboard;
  let session: BrowserSession;
  let page: Page;

  beforeAll(async () => {
    dashboard = await startDashboard();
    await addHostThroughApi(dashboard, "web1");
  });
  afterAll(async () => {
    await session?.close();
    await dashboard?.stop();
  });

  /** A browser of its own per test, so no chunk is in its cache or its module map. */
  async function fresh(): Promise<Page> {
    await session?.close();
    session = await openBrowser();
    page = session.page;
    return page;
  }

  it("says so, with a reload that brings the page once the chunk can be had", async () => {
    page = await fresh();
    // Every lazy chunk; the fleet page's own module (chunks/first-paint-*) still loads.
    const lazyChunk = (url: URL) => url.pathname.startsWith("/chunks/") && !url.pathname.startsWith("/chunks/first-paint-");
    await page.route(lazyChunk, (route) => route.abort("internetdisconnected"));
    await page.goto(dashboard.url);
    await fleetRow(page, "web1").waitFor();
    await nav(page).getByRole("link", { name: "Audit log" }).click();
    const failure = page.getByRole("alert").filter({ has: page.getByRole("heading", { name: "This page could not be loaded" }) });
    await failure.waitFor();
    await expect.poll(() => deepFocus(page)).toBe("h1:This page could not be loaded");
    // The rest of the dashboard goes on working.
    await nav(page).getByRole("link", { name: "Fleet" }).click();
    await fleetRow(page, "web1").waitFor();
    await nav(page).getByRole("link", { name: "Audit log" }).click();
    await failure.waitFor();

    await page.unroute(lazyChunk);
    await failure.getByRole("button", { name: "Reload" }).click();
    await page.locator("nf-audit-panel td.action").getByText("host.create").waitFor();
    expect(new URL(page.url()).pathname).toBe("/audit");
  });

  it("says so when the chunk the page names is gone (a deploy since)", async () => {
    page = await fresh();
    // What a page opened before a deploy asks for: a chunk name that no longer exists.
    await page.route("**/chunks/nf-rollouts-panel-*.js", (route) => route.continue({ url: `${dashboard.url}/chunks/nf-rollouts-panel-GONE0000.js` }));
    await page.goto(`${dashboard.url}/rollouts`);
    const failure = page.getByRole("alert").filter({ has: page.getByRole("heading", { name: "This page could not be loaded" }) });
    await failure.waitFor();
    await failure.getByRole("button", { name: "Reload" }).waitFor();
    expect(await page.locator("nf-rollouts-panel").count()).toBe(0);
  });
});
