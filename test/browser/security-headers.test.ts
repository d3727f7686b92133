/**
 * The dashboard under its own Content-Security-Policy and frame refusal, in Chromium against the real control
 * plane (wrangler dev serving dist/ui with its _headers): the fleet, a host page and the Settings page (a lazy
 * chunk) render and the event socket brings a live update without one CSP violation; an injected script is
 * refused; a page on another origin that frames the dashboard gets a blocked frame.
 */
import { createServer, type Server } from "node:http";
import type { Page, WebSocket } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWithBrowser, openBrowser, type BrowserSession } from "./browser.ts";
import { startDashboard, type Dashboard } from "./dashboard.ts";
import { addHostThroughApi, agentPoll, fleetRow } from "./helpers.ts";

/** What a securitypolicyviolation event says, as the page reports it. */
interface Violation {
  directive: string;
  blocked: string;
  sample: string;
  url: string;
}

describeWithBrowser("the dashboard under its security headers in Chromium", () => {
  let dashboard: Dashboard;
  let session: BrowserSession;
  let page: Page;
  const violations: Violation[] = [];
  const cspErrors = () => session.errors.filter((error) => /Content Security Policy|Content-Security-Policy/i.test(error));

  beforeAll(async () => {
    dashboard = await startDashboard();
    await addHostThroughApi(dashboard, "web1");
    session = await openBrowser();
    page = session.page;
    // Before any of the page's own scripts, in every document the page loads.
    await page.exposeFunction("__reportCspViolation", (violation: Violation) => void violations.push(violation));
    await page.addInitScript(() => {
      document.addEventListener(
        "securitypolicyviolation",
        (event) => {
          const report = (window as unknown as { __reportCspViolation(v: Violation): void }).__reportCspViolation;
          report({ directive: event.effectiveDirective, blocked: event.blockedURI, sample: event.sample, url: event.documentURI });
        },
        true,
      );
    });
  });
  afterAll(async () => {
    await session?.close();
    await dashboard?.stop();
  });

  it("renders the fleet, gets a live update over its socket, a host page and the Settings page with no CSP violation", async () => {
    const socket = page.waitForEvent("websocket", (ws) => new URL(ws.url()).pathname === "/api/events");
    const response = await page.goto(dashboard.url);
    expect(response?.headers()["content-security-policy"]).toContain("frame-ancestors 'none'");
    await fleetRow(page, "web1").waitFor();

    // A host enrolled behind the page's back whose agent polls arrives as an event on the socket and shows up without a reload.
    const events: WebSocket = await socket;
    const liveUpdate = events.waitForEvent("framereceived", (frame) => String(frame.payload).includes('"host":"db1"'));
    const { token } = await addHostThroughApi(dashboard, "db1");
    expect((await agentPoll(dashboard.url, token)).status).toBe(200);
    await liveUpdate;
    await fleetRow(page, "db1").waitFor();

    await fleetRow(page, "web1").getByRole("link", { name: "web1" }).click();
    await page.getByRole("heading", { name: "web1", level: 1 }).waitFor();

    // A deep link (the single-page fallback, with the same headers) to a page that lives in a lazy chunk.
    const settings = await page.goto(`${dashboard.url}/settings`);
    expect(settings?.headers()["content-security-policy"]).toBe(response?.headers()["content-security-policy"]);
    await page.getByRole("button", { name: "Save settings" }).waitFor();
    // The Settings form's static style="display:grid;…" applies (allowed by its hash: no violation below).
    const display = await page.locator("nf-settings-panel fieldset").first().evaluate((fieldset) => getComputedStyle(fieldset).display);
    expect(display).toBe("grid");
    // Lit's adopted style sheets apply (the heading is styled by the panel's static styles, not the browser's default).
    expect(await page.locator("nf-settings-panel").evaluate((panel) => panel.shadowRoot?.adoptedStyleSheets.length ?? 0)).toBeGreaterThan(0);

    expect(violations).toEqual([]);
    expect(cspErrors()).toEqual([]);
  });

  // Also what proves the listener above hears a violation. (eval cannot be tried from here: DevTools' evaluation is exempt.)
  it("refuses a script injected into the page and reports it", async () => {
    await page.goto(dashboard.url);
    await fleetRow(page, "web1").waitFor();
    const ran = await page.evaluate(async () => {
      const script = document.createElement("script");
      script.textContent = "window.__injectedRan = true";
      document.head.append(script);
      return "__injectedRan" in window;
    });
    expect(ran).toBe(false);
    await expect.poll(() => violations.map((v) => `${v.directive} ${v.blocked}`)).toEqual(["script-src-elem inline"]);
    await expect.poll(cspErrors).toHaveLength(1);
    violations.length = 0;
    session.errors.length = 0;
  });

  it("cannot be framed by a page on another origin: the frame stays blocked while an unprotected one renders", async () => {
    const framer: Server = createServer((req, res) => {
      res.setHeader("content-type", "text/html");
      if (req.url === "/plain") return void res.end("<!doctype html><p>plain page</p>");
      // The control frame is cross-origin too (localhost vs 127.0.0.1), so both frames differ only in their headers.
      const port = (framer.address() as { port: number }).port;
      res.end(`<!doctype html><iframe id="dashboard" src="${dashboard.url}/"></iframe><iframe id="control" src="http://localhost:${port}/plain"></iframe>`);
    });
    await new Promise<void>((resolve) => framer.listen(0, "127.0.0.1", resolve));
    const attacker = await session.context.newPage();
    try {
      const refused = attacker.waitForEvent("console", (message) => message.text().includes("frame-ancestors 'none'"));
      await attacker.goto(`http://127.0.0.1:${(framer.address() as { port: number }).port}/`);
      const control = await (await attacker.locator("#control").elementHandle())!.contentFrame();
      await control!.getByText("plain page").waitFor();
      await refused;
      const framed = await (await attacker.locator("#dashboard").elementHandle())!.contentFrame();
      expect(framed!.url()).not.toContain(dashboard.url);
      expect(await framed!.locator("nf-app").count()).toBe(0);
    } finally {
      await attacker.close();
      // Chromium keeps its connections alive, and close() would wait for them.
      framer.closeAllConnections();
      await new Promise((resolve) => framer.close(resolve));
    }
  });
});
