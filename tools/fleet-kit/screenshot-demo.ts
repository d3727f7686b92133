/**
 * `npm run screenshots:demo`: the README's demo screenshots, taken on purpose
 * (never by a test) from a real `npm run demo` fleet in Debian Chromium:
 * docs/screenshots/demo.png, four hosts on the fleet's configuration and the
 * update PR with its lock diff and green CI. Pass another folder as the first
 * argument to write elsewhere.
 */
import { mkdir } from "node:fs/promises";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { CHROMIUM, chromiumInstalled, openBrowser } from "../../test/browser/chromium.ts";
import { DEMO_HOSTS, startDemo } from "./demo.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));
const out = resolve(root, process.argv[2] ?? "docs/screenshots");

if (!chromiumInstalled) {
  console.error(`screenshots:demo needs ${CHROMIUM}: apt-get install chromium`);
  process.exit(1);
}

const port = await new Promise<number>((done, fail) => {
  const server = createServer();
  server.once("error", fail);
  server.listen(0, "127.0.0.1", () => {
    const address = server.address();
    server.close(() => done(typeof address === "object" && address ? address.port : 0));
  });
});

const demo = await startDemo({ port, log: (line) => console.log(`demo: ${line}`) });
const browser = await openBrowser({ viewport: { width: 1280, height: 800 } });
try {
  await mkdir(out, { recursive: true });
  const { page } = browser;
  await page.goto(demo.url.replace("localhost", "127.0.0.1"));
  const banner = page.locator("nf-update-pr-banner");
  await banner.locator("#merge-deploy").waitFor({ timeout: 30_000 });
  for (const { name: host } of DEMO_HOSTS) {
    await page.locator(`nf-fleet-table [role=row][data-host="${host}"] [data-compartment="system"].state-green`).first().waitFor({ timeout: 30_000 });
  }
  const dismiss = page.getByRole("button", { name: "Dismiss" });
  while ((await dismiss.count()) > 0) await dismiss.first().click();
  await page.mouse.move(0, 0);
  await page.screenshot({ path: join(out, "demo.png") });
  console.log(`wrote ${join(out, "demo.png")}`);
} finally {
  await browser.close();
  await demo.stop();
}
