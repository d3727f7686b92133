/**
 * One cold load of a page under Chrome's tracing (CDP Tracing through playwright-core's CDP session), split into
 * what the renderer did between navigation start and the first contentful paint: the response's first byte,
 * then the main thread's HTML parse, style, layout, paint and script, and the raster threads' time, each as
 * wall time and as the threads' own CPU time (the events' thread clock): a busy machine stretches the first
 * (a cold load's layout took 60 ms of wall time for 19 ms of CPU at a load average of 9) and hardly the
 * second, so builds compare by the CPU. Also counted: the font family matches the renderer asked the browser for
 * (a count no load changes). Tracing slows the load itself, so bench:ui takes these from a run of
 * their own, not from its timed ones.
 */
import type { Page } from "playwright-core";

const CATEGORIES = ["devtools.timeline", "blink", "blink.user_timing", "loading", "v8", "toplevel", "cc", "navigation", "fonts"];

interface TraceEvent {
  name: string;
  ph: string;
  ts: number;
  dur?: number;
  /** The thread's CPU time in the event, µs. */
  tdur?: number;
  pid: number;
  args?: { data?: { documentLoaderURL?: string }; family_name?: string };
}

/** Trace event names summed into each phase; the raster tasks run off the main thread. */
const PHASES = {
  parse_html: ["ParseHTML"],
  style: ["UpdateLayoutTree"],
  layout: ["Layout"],
  paint: ["PrePaint", "Paint"],
  script: ["EvaluateScript", "v8.evaluateModule", "FunctionCall"],
  raster: ["RasterTask"],
} as const;

const ms = (us: number) => Math.round(us / 100) / 10;

/** The phases of `url`'s first contentful paint in a page that has not loaded anything yet (a cold profile). */
export async function tracedFirstPaint(page: Page, url: string) {
  const cdp = await page.context().newCDPSession(page);
  const events: TraceEvent[] = [];
  cdp.on("Tracing.dataCollected", ({ value }) => events.push(...(value as unknown as TraceEvent[])));
  await cdp.send("Tracing.start", { traceConfig: { includedCategories: CATEGORIES }, transferMode: "ReportEvents" });
  await page.goto(url, { waitUntil: "load" });
  await page.waitForFunction(() => performance.getEntriesByName("first-contentful-paint").length > 0, undefined, { timeout: 30_000 });
  const complete = new Promise<void>((resolve) => cdp.once("Tracing.tracingComplete", () => resolve()));
  await cdp.send("Tracing.end");
  await complete;
  await cdp.detach();

  const start = events.find((e) => e.name === "navigationStart" && e.args?.data?.documentLoaderURL === url);
  if (!start) throw new Error(`the trace has no navigation to ${url}`);
  const inPage = events.filter((e) => e.pid === start.pid);
  const paint = inPage.find((e) => e.name === "firstContentfulPaint" && e.ts >= start.ts);
  if (!paint) throw new Error(`the trace has no first contentful paint of ${url}`);
  const before = inPage.filter((e) => e.ph === "X" && e.ts >= start.ts && e.ts < paint.ts);
  const sum = (names: readonly string[], of: (e: TraceEvent) => number) => ms(before.filter((e) => names.includes(e.name)).reduce((total, e) => total + of(e), 0));
  const phases = (of: (e: TraceEvent) => number) =>
    Object.fromEntries(Object.entries(PHASES).map(([phase, names]) => [phase, sum(names, of)])) as Record<keyof typeof PHASES, number>;
  const response = inPage.find((e) => e.name === "ResourceReceiveResponse" && e.ts >= start.ts);
  // Each font family the page names is matched by the browser process (fontconfig, a synchronous call): a family that is
  // not installed costs a call too. The renderer's main thread waits through them, so they show as wall time, not CPU.
  const matches = before.filter((e) => e.name === "FontDataManager::onMatchFamilyStyle");
  return {
    font_family_matches: matches.length,
    font_families_matched: [...new Set(matches.map((e) => e.args?.family_name ?? "?"))],
    font_match_wall: ms(matches.reduce((total, e) => total + (e.dur ?? 0), 0)),
    response_start: response ? ms(response.ts - start.ts) : null,
    first_contentful_paint: ms(paint.ts - start.ts),
    wall: phases((e) => e.dur ?? 0),
    thread_cpu: phases((e) => e.tdur ?? e.dur ?? 0),
  };
}
