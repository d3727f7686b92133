/**
 * `npm run bench:ui -- --decompose [--runs N] [--variants a,b]`: where the first table's time above the health page's
 * goes. Each variant of the page GET / writes is served by a loopback proxy of its own in front of the same Worker: it
 * forwards every request, and cuts the page at / on its way back, so the fleet read and the Worker stay in each load.
 * Each variant's first contentful paint is timed in a cold Chromium, interleaved with the others and with the
 * baseline (the health page, loaded directly, as bench:ui does), so a load that drifts weighs on all alike. The page
 * as is and the health page are timed both directly and through a proxy, which prices the proxy itself. A variant
 * that changes the stylesheet goes without the Content-Security-Policy header, whose hash would no longer match.
 * The floor variants (h to k, and bcd_no_css) trade the table's looks away, down to its rows' text in a <pre>: what
 * they pay above the health page, no stylesheet or script for the same rows can avoid. The result is written to
 * bench/results/ui-decompose.json.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { openBrowser } from "../test/browser/chromium.ts";
import { TABLE_END_ID, TABLE_RENDER_BLOCK } from "../worker/fleet-page.ts";

/** The rows a 1280 × 800 viewport shows below the blocks above the table, with a few to spare. */
const FIRST_SCREEN_ROWS = 12;
/**
 * A cold Chromium starts its own pages as it opens (a WebUI renderer for the omnibox popup, about a second of
 * CPU-bound module loading on a 2-core machine) while the bench's page loads; the settled variants navigate after it.
 */
const SETTLE_MS = 1_500;

const withoutModule = (page: string) => page.replace(/<script type="module"[^>]*><\/script>/g, "").replace(/<link rel="(?:module)?preload"[^>]*>/g, "");
const withoutAnswers = (page: string) => page.replace(/<script type="application\/json"[^>]*>[^<]*<\/script>/g, "");
const withoutRenderBlock = (page: string) => page.replace(TABLE_RENDER_BLOCK, "");
const withoutStyle = (page: string) => page.replace(/<style>[\s\S]*?<\/style>/, "");
function firstScreenRows(page: string): string {
  const starts = [...page.matchAll(/<div class="tr row"/g)].map((match) => match.index);
  const end = page.indexOf(`\n</div></div><div id="${TABLE_END_ID}"`);
  if (starts.length <= FIRST_SCREEN_ROWS || end < 0) throw new Error("the page has no table to cut");
  return page.slice(0, starts[FIRST_SCREEN_ROWS]) + page.slice(end);
}
function oneFontFamily(page: string): string {
  return page
    .replace(/--nf-font:[^;]+;/, "--nf-font: sans-serif;")
    .replace(/--nf-mono:[^;]+;/, "--nf-mono: sans-serif;")
    .replace(/font-family:[^;}]+/g, "font-family: sans-serif");
}
/** Rules appended to the page's stylesheet, which win over its own (the looks the floor variants trade away). */
const withRules = (rules: string) => (page: string) => page.replace("</style>", `${rules}</style>`);
const ONE_STRIKE = ".first-table * { font-family: sans-serif !important; font-size: 14px !important; font-weight: 400 !important; letter-spacing: normal !important; }";
const PLAIN_CELLS = ".first-table .cell { border: 0 !important; border-radius: 0 !important; background: none !important; } .first-table .cell .icon, .first-table .icon-btn, .first-table .chip span { display: none !important; } .first-table .dot { border-radius: 0 !important; box-shadow: none !important; } .first-table .logo { background: var(--nf-accent) !important; }";
/**
 * The written rows' text alone, a line each, in a <pre>: no stylesheet, no element but the <pre>, no script. The least
 * any page that shows the first screen's hosts can draw, a floor for every way of writing the table.
 */
function rowsAsText(page: string): string {
  const end = page.indexOf(`<div id="${TABLE_END_ID}"`);
  const rows = page
    .slice(0, end)
    .split('<div class="tr ')
    .filter((part) => part.startsWith('row"'))
    .map((row) => row.replace(/^[^>]*>/, "").replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim());
  if (rows.length === 0 || end < 0) throw new Error("the page has no rows to write as text");
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>NixFleet</title></head><body><pre>${rows.join("\n")}</pre></body></html>`;
}
/** The health page's text (what Chromium shows for its JSON) in the dashboard's page, with the page's stylesheet. */
function healthTextWithPageStyle(page: string, healthText: string): string {
  const head = page.slice(0, page.indexOf("<body"));
  return `${withoutModule(head)}<body><pre>${healthText.replace(/</g, "&lt;")}</pre></body></html>`;
}

/** The page's first contentful paint and response start, once it has painted (run in the page; the bench's types are Node's). */
function firstPaint() {
  const fcp = performance.getEntriesByName("first-contentful-paint")[0]?.startTime;
  const navigation = performance.getEntriesByType("navigation" as never)[0] as unknown as { responseStart: number; decodedBodySize: number } | undefined;
  return fcp === undefined || !navigation ? null : { fcp, responseStart: navigation.responseStart, bytes: navigation.decodedBodySize };
}

export type Variant = { name: string; describe: string; path: "/" | "/api/health"; transform: ((page: string) => string) | null; dropCsp?: boolean; settleMs?: number };

/** A loopback server that forwards to `upstream` and hands the page at `path` through `transform`. */
export async function proxy(upstream: string, path: string, transform: (page: string) => string, dropCsp: boolean): Promise<{ url: string; server: Server }> {
  const server = createServer((request, response) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of request) chunks.push(chunk as Buffer);
      const headers = Object.fromEntries(Object.entries(request.headers).filter(([name]) => !["host", "connection", "content-length"].includes(name))) as Record<string, string>;
      const answer = await fetch(`${upstream}${request.url}`, { method: request.method, headers, body: chunks.length > 0 ? Buffer.concat(chunks) : undefined, redirect: "manual" });
      const out: Record<string, string> = {};
      answer.headers.forEach((value, name) => {
        if (!["content-length", "content-encoding", "transfer-encoding", "connection"].includes(name) && !(dropCsp && name === "content-security-policy")) out[name] = value;
      });
      const bytes = request.url === path ? Buffer.from(transform(await answer.text())) : Buffer.from(await answer.arrayBuffer());
      response.writeHead(answer.status, { ...out, "content-length": String(bytes.byteLength) });
      response.end(bytes);
    })().catch((error: unknown) => {
      response.writeHead(502);
      response.end(String(error));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

/** The variants of the page, by name; the health page's text is what `f` shows. */
export function pageVariants(healthText: string): Variant[] {
  const same = (page: string) => page;
  return [
    { name: "baseline", describe: "the health page, directly (bench:ui's baseline)", path: "/api/health", transform: null },
    { name: "health_proxied", describe: "the health page through a proxy", path: "/api/health", transform: same },
    { name: "baseline_settled", describe: `the health page, directly, navigated ${SETTLE_MS} ms after the browser started`, path: "/api/health", transform: null, settleMs: SETTLE_MS },
    { name: "a_direct", describe: "the page as is, directly", path: "/", transform: null },
    { name: "a_settled", describe: `the page as is, directly, navigated ${SETTLE_MS} ms after the browser started`, path: "/", transform: null, settleMs: SETTLE_MS },
    { name: "a_proxied", describe: "the page as is, through a proxy", path: "/", transform: same },
    { name: "b_no_module", describe: "without the module script and the preloads", path: "/", transform: withoutModule },
    { name: "c_no_answers", describe: "without the JSON data blocks", path: "/", transform: withoutAnswers },
    { name: "d_no_render_block", describe: "without rel=expect blocking=render", path: "/", transform: withoutRenderBlock },
    { name: "e_first_screen", describe: `only the first ${FIRST_SCREEN_ROWS} rows`, path: "/", transform: firstScreenRows },
    { name: "f_health_text_page_css", describe: "the health page's text in the page's head (its CSS, fonts), no module", path: "/", transform: (page) => healthTextWithPageStyle(page, healthText) },
    { name: "g_one_font", describe: "every font family sans-serif", path: "/", transform: oneFontFamily, dropCsp: true },
    { name: "h_one_font_strike", describe: "one font, size and weight for all text (sans-serif, 14 px, 400)", path: "/", transform: withRules(ONE_STRIKE), dropCsp: true },
    { name: "i_plain_cells", describe: "state cells without fills, borders, rounded corners or icons; square dots, a flat logo", path: "/", transform: withRules(PLAIN_CELLS), dropCsp: true },
    { name: "j_plain", describe: "h and i together: the plainest styled table", path: "/", transform: withRules(ONE_STRIKE + PLAIN_CELLS), dropCsp: true },
    { name: "k_rows_as_text", describe: "the written rows' text alone, a line each, in a <pre>", path: "/", transform: rowsAsText, dropCsp: true },
    { name: "bcd_markup_only", describe: "b, c and d together: the written markup and its CSS only", path: "/", transform: (page) => withoutRenderBlock(withoutAnswers(withoutModule(page))) },
    { name: "bcd_no_css", describe: "the written markup without the stylesheet", path: "/", transform: (page) => withoutStyle(withoutRenderBlock(withoutAnswers(withoutModule(page)))) },
    { name: "bcde_first_screen_markup", describe: "b, c, d and e together", path: "/", transform: (page) => firstScreenRows(withoutRenderBlock(withoutAnswers(withoutModule(page)))) },
  ];
}

export async function decompose(planeUrl: string, runs: number) {
  const variants = pageVariants(await (await fetch(`${planeUrl}/api/health`)).text());
  const only = process.argv.indexOf("--variants");
  const chosen = only >= 0 ? variants.filter((v) => v.name === "baseline" || process.argv[only + 1]!.split(",").includes(v.name)) : variants;
  const proxies = new Map<string, { url: string; server: Server }>();
  for (const variant of chosen) if (variant.transform) proxies.set(variant.name, await proxy(planeUrl, variant.path, variant.transform, variant.dropCsp ?? false));
  const figures = new Map<string, { fcp: number[]; response_start: number[]; bytes: number[] }>(chosen.map((v) => [v.name, { fcp: [], response_start: [], bytes: [] }]));
  try {
    for (let run = 0; run < runs; run++) {
      // Rotated each run, so no variant always follows the same one.
      const order = chosen.map((_, i) => chosen[(i + run) % chosen.length]!);
      for (const variant of order) {
        const url = `${proxies.get(variant.name)?.url ?? planeUrl}${variant.path}`;
        const session = await openBrowser({ viewport: { width: 1280, height: 800 } });
        try {
          if (variant.settleMs) await new Promise((resolve) => setTimeout(resolve, variant.settleMs));
          await session.page.goto(url, { waitUntil: "load" });
          const seen = await session.page.waitForFunction(firstPaint, undefined, { timeout: 30_000, polling: 10 });
          const value = await seen.jsonValue();
          if (!value) throw new Error(`no first paint of ${variant.name}`);
          const into = figures.get(variant.name)!;
          into.fcp.push(Math.round(value.fcp * 10) / 10);
          into.response_start.push(Math.round(value.responseStart * 10) / 10);
          into.bytes.push(value.bytes);
        } finally {
          await session.close();
        }
      }
    }
  } finally {
    for (const { server } of proxies.values()) server.close();
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const baseline = median(figures.get("baseline")!.fcp);
  return {
    measure:
      "navigation start → first contentful paint, cold profile per load, p50 over the runs; each variant of the page GET / writes is served by a loopback proxy in front of the Worker that cuts the page; over_baseline is its p50 − the health page's p50 (ms) and ratio its p50 / the health page's",
    runs,
    variants: chosen.map((variant) => {
      const f = figures.get(variant.name)!;
      const p50 = median(f.fcp);
      return {
        variant: variant.name,
        describe: variant.describe,
        fcp_ms_p50: p50,
        fcp_ms_min: Math.min(...f.fcp),
        fcp_ms_max: Math.max(...f.fcp),
        response_start_ms_p50: median(f.response_start),
        fcp_after_response_start_ms_p50: Math.round(median(f.fcp.map((fcp, i) => fcp - f.response_start[i]!)) * 10) / 10,
        over_baseline_ms: Math.round((p50 - baseline) * 10) / 10,
        ratio: Math.round((p50 / baseline) * 100) / 100,
        page_bytes: median(f.bytes),
        runs: f.fcp,
      };
    }),
  };
}
