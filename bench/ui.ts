/**
 * `npm run bench:ui`: the dashboard with 100 hosts on the real control plane
 * (wrangler dev), in headless Chromium with a cold profile each run. Measures
 * navigation → the fleet table with all 100 rows painted (the
 * `nf-fleet-table-painted` performance mark: the task after the frame that
 * first drew them), the median of the runs, and the gzip size of the shipped JS.
 * Prints JSON and writes bench/results/ui.json.
 */
import { readdir, readFile, writeFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { buildUi } from "../scripts/build-ui.mjs";
import { chromiumInstalled, CHROMIUM, openBrowser } from "../test/browser/chromium.ts";
import { startControlPlane } from "../test/support/control-plane.ts";

const HOSTS = 100;
const RUNS = 7;
const TARGETS = { first_table_ms: 300, js_gzip_bytes: 61_440 };
const root = fileURLToPath(new URL("..", import.meta.url));

if (!chromiumInstalled) {
  console.error(`bench:ui needs ${CHROMIUM}: apt-get install chromium`);
  process.exit(1);
}

await buildUi();
const jsFiles = (await readdir(join(root, "dist/ui"))).filter((file) => file.endsWith(".js"));
let jsGzipBytes = 0;
for (const file of jsFiles) jsGzipBytes += gzipSync(await readFile(join(root, "dist/ui", file)), { level: 9 }).byteLength;

const plane = await startControlPlane();
try {
  for (let i = 0; i < HOSTS; i += 10) {
    await Promise.all(
      Array.from({ length: Math.min(10, HOSTS - i) }, async (_, j) => {
        const name = `host-${String(i + j).padStart(3, "0")}`;
        const response = await fetch(`${plane.url}/api/hosts`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ name, platform: "nixos" }),
        });
        if (response.status !== 201) throw new Error(`adding ${name}: ${response.status} ${await response.text()}`);
      }),
    );
  }

  // Baseline, in the same run: a cold browser's first paint of the smallest page the same server
  // answers (/api/health). What the dashboard adds on top of it is the dashboard's own cost.
  const baseline: number[] = [];
  for (let run = 0; run < RUNS; run++) {
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
      baseline.push(Math.round(ms * 10) / 10);
    } finally {
      await session.close();
    }
  }

  const runs: number[] = [];
  const warmRuns: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const session = await openBrowser({ viewport: { width: 1280, height: 800 } });
    try {
      runs.push(await firstTable(session.page, plane.url));
      // A returning admin: the same browser, the dashboard's files in its cache.
      warmRuns.push(await firstTable(session.page, plane.url));
    } finally {
      await session.close();
    }
  }

  async function firstTable(page: Awaited<ReturnType<typeof openBrowser>>["page"], url: string): Promise<number> {
    await page.goto(url, { waitUntil: "commit" });
    const handle = await page.waitForFunction(
      (rows) => {
        const mark = performance.getEntriesByName("nf-fleet-table-painted").find((entry) => {
          const detail: unknown = entry instanceof PerformanceMark ? entry.detail : null;
          return typeof detail === "object" && detail !== null && "rows" in detail && detail.rows === rows;
        });
        return mark ? mark.startTime : null;
      },
      HOSTS,
      { timeout: 30_000, polling: 10 },
    );
    const ms = await handle.jsonValue();
    if (typeof ms !== "number") throw new Error("no measurement");
    const rendered = await page.locator("nf-fleet-table [role=row][data-host]").count();
    if (rendered !== HOSTS) throw new Error(`expected ${HOSTS} rows, found ${rendered}`);
    return Math.round(ms * 10) / 10;
  }

  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const result = {
    hosts: HOSTS,
    measure: "navigation start → the frame that first painted the fleet table with all rows; cold Chromium profile per run",
    first_table_ms_p50: median(runs),
    runs,
    warm_measure: "the same, navigating again in the same browser (the dashboard's files cached)",
    first_table_warm_ms_p50: median(warmRuns),
    warm_runs: warmRuns,
    baseline_measure: "navigation start → first contentful paint of /api/health on the same server, cold profile",
    baseline_first_paint_ms_p50: median(baseline),
    baseline_runs: baseline,
    dashboard_over_baseline_ms_p50: Math.round((median(runs) - median(baseline)) * 10) / 10,
    js_gzip_bytes: jsGzipBytes,
    targets: TARGETS,
  };
  console.log(JSON.stringify(result, null, 2));
  await mkdir(join(root, "bench/results"), { recursive: true });
  await writeFile(join(root, "bench/results/ui.json"), `${JSON.stringify(result, null, 2)}\n`);
} finally {
  await plane.stop();
}
