/**
 * The docs' performance figures come from committed benchmark results
 * (bench/results/*.json): each carries a marker naming its value, and a
 * section about a benchmark quotes no figure without one (the rule is in
 * ./figures.ts).
 */
import { readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { markersIn, mismatches, unmarkedFigures } from "./figures.ts";

const REPO_ROOT = path.resolve(import.meta.dirname, "..", "..");
const DOCS = ["README.md", ...readdirSync(path.join(REPO_ROOT, "docs")).filter((name) => name.endsWith(".md")).map((name) => `docs/${name}`)];
const RESULTS = new Map<string, unknown>(
  readdirSync(path.join(REPO_ROOT, "bench", "results"))
    .filter((name) => name.endsWith(".json"))
    .map((name) => [name, JSON.parse(readFileSync(path.join(REPO_ROOT, "bench", "results", name), "utf8")) as unknown]),
);
const read = (doc: string) => readFileSync(path.join(REPO_ROOT, doc), "utf8");

describe("the docs' performance figures", () => {
  it("equal, at the precision the text gives, the bench/results value each one's marker names", () => {
    const problems: string[] = [];
    let markers = 0;
    for (const doc of DOCS) {
      const found = markersIn(read(doc));
      markers += found.length;
      for (const { marker, problem } of mismatches(found, RESULTS)) problems.push(`${doc}:${marker.line}: ${problem}`);
    }
    expect(problems).toEqual([]);
    // The seven results the docs discuss are each quoted, so a marker syntax the rule no longer reads cannot pass unnoticed.
    expect(markers).toBeGreaterThan(30);
    const quoted = new Set(DOCS.flatMap((doc) => markersIn(read(doc)).map((marker) => marker.file)));
    expect([...quoted].sort()).toEqual(["agent.json", "cache.json", "dispatch.json", "rollout.json", "soak.json", "ui-decompose.json", "ui.json"]);
  });

  it("carry a marker wherever a section about a benchmark quotes a time, a size, a ratio or a count of requests", () => {
    const unmarked = DOCS.flatMap((doc) => unmarkedFigures(read(doc)).map((figure) => `${doc}:${figure.line} (${figure.section}): ${figure.figure}`));
    expect(unmarked).toEqual([]);
  });
});

describe("the figure rule (figures.ts)", () => {
  const results = new Map<string, unknown>([
    ["ui.json", { first_table_ms_p50: 465.2, phases_ms_p50: { modules_evaluate: 139 }, first_paint_js_gzip_bytes: 61118 }],
    ["agent.json", { details: { growth_after_commands: 0.071, startups_ms: [447, 283, 709] } }],
  ]);

  it.each([
    ["465 ms<!-- bench: ui.json#first_table_ms_p50 -->", []],
    ["465.2 ms<!-- bench: ui.json#first_table_ms_p50 -->", []],
    ["61,118 B<!-- bench: ui.json#first_paint_js_gzip_bytes --> gzip", []],
    ["(+7.1 %<!-- bench: agent.json#details.growth_after_commands*100 -->)", []],
    ["283<!-- bench: agent.json#details.startups_ms.min -->–709 ms<!-- bench: agent.json#details.startups_ms.max -->", []],
    ["466 ms<!-- bench: ui.json#first_table_ms_p50 -->", ["the text says 466, ui.json#first_table_ms_p50 gives 465"]],
    ["465.0 ms<!-- bench: ui.json#first_table_ms_p50 -->", ["the text says 465.0, ui.json#first_table_ms_p50 gives 465.2"]],
    ["139 ms<!-- bench: ui.json#phases_ms_p50.parse -->", ["ui.json#phases_ms_p50.parse is undefined, not a number"]],
    ["5 ms<!-- bench: gone.json#x -->", ["bench/results/gone.json does not exist"]],
  ])("checks %s against its result", (text, problems) => {
    expect(mismatches(markersIn(text), results).map((mismatch) => mismatch.problem)).toEqual(problems);
  });

  const section = (body: string) => `# Doc\n\n## Speed\n\n\`npm run bench:x\` measures it.\n${body}\n\n## Other\n\nIt takes 465 ms.\n`;

  it.each([
    // What the docs said before their figures were tied to results.
    ["the table at 465 ms p50 (baseline 104 ms", ["465 ms", "104 ms"]],
    ["Measured: the first paint 61,118 B gzip (61,851 before), the chunks 3,753 B together", ["61,118 B", "3,753 B"]],
    ["527 ms p50 for the build before, 423 ms after.", ["527 ms", "423 ms"]],
    ["that is 940 Worker requests, 937 Durable Object\nrequests and about 4 D1 rows per host-day", ["940 Worker requests", "937 Durable Object requests", "4 D1 rows"]],
    ["at the 90 s default, 960 requests of each", ["960 requests"]],
    ["On a quiet machine the agent polls about 130 ms after it was spawned.", ["130 ms"]],
    ["idle, 55 MB (1.43 × bare Node), 0.13 s of CPU, +7.1 %", ["55 MB", "1.43 ×", "0.13 s", "7.1 %"]],
  ])("flags the unmarked figures in %j", (body, figures) => {
    expect(unmarkedFigures(section(body)).map((found) => found.figure)).toEqual(figures);
  });

  it.each([
    "465 ms<!-- bench: ui.json#first_table_ms_p50 --> p50, 940<!-- bench: dispatch.json#x --> Worker requests",
    "The target is 300 ms; (target p99 ≤ 50 ms), under 1 s, limit 40 KB, the daily limits of 100,000 requests",
    "a 90 s poll, a 5 s soak, waves of 10, the 100 rows of the table",
    "`--max-semi-space-size=1` and [results](../bench/results/ui.json)",
  ])("lets %j pass: marked figures, targets, limits, settings and code", (body) => {
    expect(unmarkedFigures(section(body))).toEqual([]);
  });

  it("looks only at sections that name a benchmark", () => {
    expect(unmarkedFigures("# Doc\n\nIt takes 465 ms.\n\n## Later\n\nAbout 55 MB.\n")).toEqual([]);
    expect(unmarkedFigures(section("")).map((found) => found.figure)).toEqual([]);
    expect(unmarkedFigures(section("It takes 465 ms.")).map((found) => [found.figure, found.line, found.section])).toEqual([["465 ms", 6, "Speed"]]);
  });
});
