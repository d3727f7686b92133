/**
 * nf-notification-deliveries in Chromium against the real control plane: Send test reaches a local
 * receiver and the channel's list shows the delivered row. The element is bundled here on its own
 * and mounted on a blank page of the control plane's origin (same origin: the dashboard's own API
 * calls, CSRF and all). Chromium is handed that page by the test itself: every page the control plane
 * serves has a CSP that runs only the dashboard's own scripts, so none of them would run this bundle.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWithBrowser, openBrowser, type BrowserSession } from "./browser.ts";
import { startDashboard, type Dashboard } from "./dashboard.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** Mounts the element with the channels the page was given, as the Settings page will. */
const MOUNT = `
import "./ui/components/nf-notification-deliveries.ts";
import { DashboardApi } from "./ui/data/api.ts";
import { FleetStore } from "./ui/data/store.ts";
const store = new FleetStore({ api: new DashboardApi() });
const element = document.createElement("nf-notification-deliveries");
element.channels = window.__channels;
element.store = store;
document.body.replaceChildren(element);
`;

describeWithBrowser("notification deliveries in the dashboard", () => {
  let dashboard: Dashboard;
  let receiver: Server;
  let session: BrowserSession;
  let module: string;
  const received: { path: string; body: string }[] = [];

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
      req.on("end", () => {
        received.push({ path: req.url ?? "", body });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    const port = (receiver.address() as AddressInfo).port;
    const channels = [{ kind: "webhook", id: "ch_browser", name: "Ops hook", url: `http://127.0.0.1:${port}/in`, secret: "browser-test-signing-secret" }];
    dashboard = await startDashboard({ NOTIFICATION_CHANNELS: JSON.stringify(channels) });
    const bundled = await build({ stdin: { contents: MOUNT, resolveDir: ROOT, loader: "ts" }, bundle: true, write: false, format: "esm", platform: "browser" });
    module = bundled.outputFiles[0]!.text;
    session = await openBrowser();
  });

  afterAll(async () => {
    await session?.close();
    await dashboard?.stop();
    await new Promise((resolve) => receiver?.close(resolve));
  });

  it("Send test delivers to the channel and its list shows the delivered row", async () => {
    const { page } = session;
    const mountPage = `${dashboard.url}/__notification-deliveries-test`;
    await page.route(mountPage, (route) => route.fulfill({ contentType: "text/html", body: "<!doctype html><title>nf-notification-deliveries</title>" }));
    await page.goto(mountPage);
    // The channels as the settings API shows them: the URL and secret never reach the page.
    await page.evaluate(() => {
      (window as unknown as { __channels: unknown }).__channels = [{ kind: "webhook", id: "ch_browser", name: "Ops hook", url: "********", secret: "********" }];
    });
    await page.addScriptTag({ content: module, type: "module" });
    const channel = page.locator('nf-notification-deliveries section[data-channel="ch_browser"]');
    await channel.getByText("Ops hook (Webhook)").waitFor();
    await channel.getByText("No deliveries yet.").waitFor();

    await channel.getByRole("button", { name: "Send test" }).click();
    const row = channel.locator('li[data-state="delivered"]');
    await expect.poll(() => row.innerText()).toMatch(/delivered · 1 try · HTTP 204[\s\S]*test: NixFleet test notification/);
    expect(received).toHaveLength(1);
    expect(JSON.parse(received[0]!.body)).toMatchObject({ title: "NixFleet test notification", details: { test: true } });
    expect(session.errors).toEqual([]);
  });
});
