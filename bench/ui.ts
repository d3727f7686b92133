/**
 * `npm run bench:ui`: the dashboard with 100 hosts on the real control plane
 * (wrangler dev), in headless Chromium with a cold profile each run. Measures
 * navigation → the fleet table with all 100 rows painted (the
 * `nf-fleet-table-painted` performance mark: the task after the frame that
 * first drew them), the median of the runs; then the same fleet grown to
 * 1,000 hosts, whose first frame holds the table's first rows (FIRST_ROWS
 * in ui/common/table-rows.ts; the others follow a frame at a time), so
 * there navigation → that frame, and → all 1,000 rows painted. Each median
 * is also divided by the baseline's, measured in the same run. And the gzip
 * size of the JS: the
 * first paint's (the module inline in the page) and the lazily loaded chunks'
 * together (fetched when a rarely used page is first opened). With `--sizes`
 * it builds, prints only those and exits, writing nothing.
 * Each cold run is also split into its phases (from the page's own resource
 * timings and marks), so a figure over the target says what it is made of;
 * the machine's load average is recorded, since the runs share its CPUs.
 * Prints JSON and writes bench/results/ui.json.
 */
import { writeFile, mkdir } from "node:fs/promises";
import { loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { buildUi, lazyChunks, shippedJs } from "../scripts/build-ui.mjs";
import { chromiumInstalled, CHROMIUM, openBrowser } from "../test/browser/chromium.ts";
import { startControlPlane } from "../test/support/control-plane.ts";
import { addHosts } from "./hosts.ts";
import { runInfo } from "./run-info.ts";

const HOSTS = 100;
const LARGE_FLEET = 1_000;
const RUNS = 7;
// Issue 26's ratios to the same run's baseline; the JS limits are test/ui/build-ui.test.ts's.
const TARGETS = {
  first_table_over_baseline: 1.5,
  first_table_1000_over_baseline: 3,
  first_paint_js_gzip_bytes: 60_000,
  lazy_chunks_gzip_bytes: 82_000,
};
const root = fileURLToPath(new URL("..", import.meta.url));

await buildUi();
let firstPaintGzipBytes = 0;
for (const script of await shippedJs()) firstPaintGzipBytes += gzipSync(script, { level: 9 }).byteLength;
const chunks = await lazyChunks();
const sizes = {
  first_paint_js_gzip_bytes: firstPaintGzipBytes,
  lazy_chunks_gzip_bytes: chunks.reduce((sum, chunk) => sum + chunk.gzipBytes, 0),
  lazy_chunks: chunks.map((chunk) => ({ url: chunk.url, bytes: chunk.bytes, gzip_bytes: chunk.gzipBytes })),
};
if (process.argv.includes("--sizes")) {
  console.log(JSON.stringify({ ...sizes, targets: TARGETS }, null, 2));
  process.exit(0);
}

if (!chromiumInstalled) {
  console.error(`bench:ui needs ${CHROMIUM}: apt-get install chromium`);
  process.exit(1);
}

const loadBefore = loadavg()[0]!;
const plane = await startControlPlane();
try {
  await addHosts(plane.url, 0, HOSTS);

  // Baseline, in the same run: a cold browser's first paint of the smallest page the same server
  // answers (/api/health). What the dashboard adds on top of it is the dashboard's own cost. Taken
  // right before each dashboard run, so a load that drifts during the run (the machine is shared)
  // weighs on both sides of a ratio alike.
  async function baselineRun(into: number[]): Promise<void> {
    const session = await openBrowser({ viewport: { width: 1280, height: 800 } });
    try {
      await session.page.goto(`${plane.url}/api/health`, { waitUntil: "commit" });
      const handle = await session.page.waitForFunction(
        () => performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? null,
        undefined,
        { timeout: 30_000, polling: 10 },
      );
      const ms = await handle.jsonValue();
      if (typeof ms !== "number") throw new Error("no baseline measurement");
      into.push(Math.round(ms * 10) / 10);
    } finally {
      await session.close();
    }
  }

  const baseline: number[] = [];
  const runs: number[] = [];
  const warmRuns: number[] = [];
  const phases: Phases[] = [];
  for (let run = 0; run < RUNS; run++) {
    await baselineRun(baseline);
    const session = await openBrowser({ viewport: { width: 1280, height: 800 } });
    try {
      await session.page.goto(plane.url, { waitUntil: "commit" });
      runs.push(await painted(session.page, HOSTS, HOSTS));
      phases.push(await phasesOf(session.page, HOSTS));
      // A returning admin: the same browser, the dashboard's files in its cache.
      await session.page.goto(plane.url, { waitUntil: "commit" });
      warmRuns.push(await painted(session.page, HOSTS, HOSTS));
    } finally {
      await session.close();
    }
  }

  await addHosts(plane.url, HOSTS, LARGE_FLEET);
  /** The rows in the large fleet's first frame, as its table's marks say. */
  let firstRows = 0;
  const largeRuns: number[] = [];
  const largeAllRuns: number[] = [];
  const largePhases: Phases[] = [];
  const largeBaseline: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    await baselineRun(largeBaseline);
    const session = await openBrowser({ viewport: { width: 1280, height: 800 } });
    try {
      await session.page.goto(plane.url, { waitUntil: "commit" });
      largeRuns.push(await painted(session.page, "first", LARGE_FLEET));
      largePhases.push(await phasesOf(session.page, firstRows));
      largeAllRuns.push(await painted(session.page, LARGE_FLEET, LARGE_FLEET));
    } finally {
      await session.close();
    }
  }

  /**
   * When the frame that first painted `rows` of the fleet's `hosts` rows (or its
   * first rows, whatever their number) was drawn, in ms from navigation start.
   */
  async function painted(page: Awaited<ReturnType<typeof openBrowser>>["page"], rows: number | "first", hosts: number): Promise<number> {
    const handle = await page.waitForFunction(
      ({ rows, hosts }) => {
        const mark = performance
          .getEntriesByName("nf-fleet-table-painted")
          .map((entry) => (entry instanceof PerformanceMark ? { at: entry.startTime, detail: entry.detail as unknown } : null))
          .find((mark) => {
            const detail = mark?.detail;
            return typeof detail === "object" && detail !== null && "rows" in detail && "hosts" in detail && detail.hosts === hosts && (rows === "first" || detail.rows === rows);
          });
        return mark ? { at: mark.at, rows: (mark.detail as { rows: number }).rows } : null;
      },
      { rows, hosts },
      { timeout: 60_000, polling: 10 },
    );
    const seen = await handle.jsonValue();
    if (!seen || typeof seen.at !== "number") throw new Error("no measurement");
    if (rows === "first") firstRows = seen.rows;
    const rendered = await page.locator("nf-fleet-table [role=row][data-host]").count();
    if (rendered < seen.rows) throw new Error(`expected ${seen.rows} rows, found ${rendered}`);
    return Math.round(seen.at * 10) / 10;
  }

  type Phases = Awaited<ReturnType<typeof phasesOf>>;

  /** Where the cold run's time went, in ms from navigation start, read from the page after the table was painted. */
  async function phasesOf(page: Awaited<ReturnType<typeof openBrowser>>["page"], firstRows: number) {
    return page.evaluate((rows) => {
      // The first entry: the preload, for /api/hosts (the store's refetch on connect comes later).
      const loaded = (type: string, path: string | null) => {
        const entry = performance.getEntries().find((e) => e.entryType === type && (path === null || new URL(e.name).pathname === path));
        return entry && "responseEnd" in entry && typeof entry.responseEnd === "number" ? entry.responseEnd : NaN;
      };
      const mark = (name: string) =>
        performance.getEntriesByName(name).find((entry) => {
          if (!name.startsWith("nf-fleet-table-")) return true;
          const detail: unknown = entry instanceof PerformanceMark ? entry.detail : null;
          return typeof detail === "object" && detail !== null && "rows" in detail && detail.rows === rows;
        })?.startTime ?? NaN;
      return {
        page_loaded: loaded("navigation", null),
        // The module is inline in the page (scripts/build-ui.mjs); an app.js of its own would be counted here.
        code_loaded: Math.max(loaded("navigation", null), loaded("resource", "/app.js") || 0),
        fleet_answer_loaded: loaded("resource", "/api/hosts"),
        modules_evaluated: mark("nf-modules-evaluated"),
        table_rendered: mark("nf-fleet-table-rendered"),
        table_painted: mark("nf-fleet-table-painted"),
      };
    }, firstRows);
  }

  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const round = (ms: number) => Math.round(ms * 10) / 10;
  const phasesMedian = (of: Phases[]) => {
    const phaseMedian = (pick: (p: Phases) => number) => round(median(of.map(pick)));
    return {
      page_loaded: phaseMedian((p) => p.page_loaded),
      code_loaded: phaseMedian((p) => p.code_loaded),
      fleet_answer_loaded: phaseMedian((p) => p.fleet_answer_loaded),
      modules_evaluate: phaseMedian((p) => p.modules_evaluated - p.code_loaded),
      parse_and_render_rows: phaseMedian((p) => p.table_rendered - Math.max(p.modules_evaluated, p.fleet_answer_loaded)),
      style_layout_paint: phaseMedian((p) => p.table_painted - p.table_rendered),
      fleet_answer_waited_for: phaseMedian((p) => Math.max(0, p.fleet_answer_loaded - p.modules_evaluated)),
    };
  };
  const ratio = (ms: number, to = baseline) => Math.round((ms / median(to)) * 100) / 100;
  const result = {
    ...(await runInfo()),
    hosts: HOSTS,
    measure: "navigation start → the frame that first painted the fleet table with all rows; cold Chromium profile per run",
    first_table_ms_p50: median(runs),
    runs,
    warm_measure: "the same, navigating again in the same browser (the dashboard's files cached)",
    first_table_warm_ms_p50: median(warmRuns),
    warm_runs: warmRuns,
    baseline_measure: "navigation start → first contentful paint of /api/health on the same server, cold profile, one right before each cold run",
    baseline_first_paint_ms_p50: median(baseline),
    baseline_runs: baseline,
    /** Computed from the two medians (not a median of per-run differences): first_table_ms_p50 − baseline_first_paint_ms_p50. */
    dashboard_over_baseline_ms_computed: Math.round((median(runs) - median(baseline)) * 10) / 10,
    /** first_table_ms_p50 / baseline_first_paint_ms_p50, two medians of this run. */
    first_table_over_baseline: ratio(median(runs)),
    phases_measure:
      "cold runs, p50 of each, ms: when the page, the dashboard's code (inline in the page) and the fleet answer (preloaded by the page) had arrived; how long the modules took to evaluate after the code arrived; the fleet answer parsed and the 100 rows rendered into the DOM after both; style, layout and paint up to the frame",
    phases_ms_p50: phasesMedian(phases),
    large_fleet: {
      hosts: LARGE_FLEET,
      measure: `the same fleet grown to ${LARGE_FLEET} hosts: navigation start → the frame that first painted the table (its first rows; the others follow a frame at a time); cold profile per run`,
      first_frame_rows: firstRows,
      first_table_ms_p50: median(largeRuns),
      runs: largeRuns,
      /** The baseline again, one right before each of these runs. */
      baseline_first_paint_ms_p50: median(largeBaseline),
      baseline_runs: largeBaseline,
      /** first_table_ms_p50 / baseline_first_paint_ms_p50 (both of these runs). */
      first_table_over_baseline: ratio(median(largeRuns), largeBaseline),
      all_rows_measure: `navigation start → the frame that painted all ${LARGE_FLEET} rows, same runs`,
      all_rows_ms_p50: median(largeAllRuns),
      all_rows_runs: largeAllRuns,
      phases_ms_p50: phasesMedian(largePhases),
    },
    load_average_1m: { before: round(loadBefore), after: round(loadavg()[0]!) },
    ...sizes,
    targets: TARGETS,
  };
  console.log(JSON.stringify(result, null, 2));
  await mkdir(join(root, "bench/results"), { recursive: true });
  await writeFile(join(root, "bench/results/ui.json"), `${JSON.stringify(result, null, 2)}\n`);
} finally {
  await plane.stop();
}
