/**
 * `node bench/ui-markup.ts`: how soon a fleet table that came in the page's markup could paint (issue 26's
 * first way), before anyone builds one. It loads the real dashboard on 100 hosts (wrangler dev), takes the
 * painted page's DOM with every shadow root as declarative shadow DOM and its styles, drops the scripts and
 * preloads, and serves that static page and /api/health's answer from one loopback server: a cold Chromium's
 * first contentful paint of each, alternately, with their ratio. No script runs and no data is read before
 * the first byte, so it is the markup's floor (parse, style, layout and paint of the same rows), not what a
 * Worker rendering them would take. Prints JSON; writes nothing.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { buildUi } from "../scripts/build-ui.mjs";
import { chromiumInstalled, CHROMIUM, openBrowser } from "../test/browser/chromium.ts";
import { startControlPlane } from "../test/support/control-plane.ts";
import { addHosts } from "./hosts.ts";
import { runInfo } from "./run-info.ts";

const HOSTS = 100;
const RUNS = 9;
/**
 * Run in the page (a string: the bench's tsconfig has no DOM types). Lit's styles are adopted sheets, which
 * serialising leaves out, so each shadow root gets them as a <style> first.
 */
const SERIALISE_PAGE = `(() => {
  const roots = [];
  const visit = (node) => {
    for (const element of node.querySelectorAll("*")) {
      if (!element.shadowRoot) continue;
      roots.push(element.shadowRoot);
      visit(element.shadowRoot);
    }
  };
  visit(document);
  for (const root of roots) {
    const style = document.createElement("style");
    style.textContent = root.adoptedStyleSheets.flatMap((sheet) => [...sheet.cssRules].map((rule) => rule.cssText)).join("\\n");
    root.prepend(style);
  }
  for (const element of document.querySelectorAll("script, link[rel=preload]")) element.remove();
  return "<!doctype html>" + document.documentElement.getHTML({ shadowRoots: roots });
})()`;

if (!chromiumInstalled) {
  console.error(`bench/ui-markup.ts needs ${CHROMIUM}: apt-get install chromium`);
  process.exit(1);
}

await buildUi();
const plane = await startControlPlane();
let markup = "";
let health = "";
try {
  await addHosts(plane.url, 0, HOSTS);
  health = await (await fetch(`${plane.url}/api/health`)).text();
  const session = await openBrowser({ viewport: { width: 1280, height: 800 } });
  try {
    await session.page.goto(plane.url);
    await session.page.waitForFunction(
      (hosts) => performance.getEntriesByName("nf-fleet-table-painted").some((entry) => entry instanceof PerformanceMark && (entry.detail as { hosts?: number } | null)?.hosts === hosts),
      HOSTS,
      { timeout: 60_000, polling: 10 },
    );
    const serialised = await session.page.evaluate(SERIALISE_PAGE);
    if (typeof serialised !== "string") throw new Error("the page could not be serialised");
    markup = serialised;
  } finally {
    await session.close();
  }
} finally {
  await plane.stop();
}

const rows = markup.match(/data-host=/g)?.length ?? 0;
if (rows !== HOSTS) throw new Error(`the page's markup holds ${rows} rows, not ${HOSTS}`);
const server = createServer((request, response) => {
  const json = request.url === "/api/health";
  response.writeHead(200, { "content-type": json ? "application/json" : "text/html; charset=utf-8" });
  response.end(json ? health : markup);
});
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

async function firstContentfulPaint(path: string): Promise<number> {
  const session = await openBrowser({ viewport: { width: 1280, height: 800 } });
  try {
    await session.page.goto(`${origin}${path}`, { waitUntil: "commit" });
    const handle = await session.page.waitForFunction(() => performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? null, undefined, {
      timeout: 30_000,
      polling: 10,
    });
    const ms = await handle.jsonValue();
    if (typeof ms !== "number") throw new Error(`no first contentful paint for ${path}`);
    return Math.round(ms * 10) / 10;
  } finally {
    await session.close();
  }
}

try {
  const baseline: number[] = [];
  const table: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    baseline.push(await firstContentfulPaint("/api/health"));
    table.push(await firstContentfulPaint("/"));
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  console.log(
    JSON.stringify(
      {
        ...(await runInfo()),
        hosts: HOSTS,
        measure: "navigation start → first contentful paint of the painted dashboard's markup (no script), and of /api/health's answer, from one loopback server, alternately",
        markup_bytes: Buffer.byteLength(markup),
        table_first_paint_ms_p50: median(table),
        table_runs: table,
        baseline_first_paint_ms_p50: median(baseline),
        baseline_runs: baseline,
        table_over_baseline: Math.round((median(table) / median(baseline)) * 100) / 100,
      },
      null,
      2,
    ),
  );
} finally {
  server.close();
}
