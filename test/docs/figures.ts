/**
 * The rule that ties the docs' performance figures to bench/results/*.json
 * (test/docs/figures.test.ts applies it to docs/*.md and README.md).
 *
 * A figure names its source in an HTML comment right after it, which renders
 * as nothing: `465 ms<!-- bench: ui.json#first_table_ms_p50 -->`. The path is
 * dotted (`runs.0.dispatch_p50_ms`; `min`/`max` of an array), and `*100` scales
 * a fraction into the percent the text shows. The text's number must equal the
 * JSON's value rounded to as many decimals as the text gives.
 *
 * A performance section is a section (heading to heading) that names a
 * benchmark (`npm run bench:…` or `bench/results/`). In one, every number with
 * a unit of measure must carry a marker, unless its clause says it is a target,
 * or a limit (`≤`, `<`, `target`, `limit`, `up to`, …). Whole
 * seconds count as settings (the 90 s poll, the 5 s soak); a measured time in
 * seconds has a decimal. Numbers in `code` are not figures.
 */

export interface Marker {
  /** The figure as the text gives it, e.g. "61,118". */
  text: string;
  file: string;
  path: string;
  scale: number;
  line: number;
}

export interface Mismatch {
  marker: Marker;
  problem: string;
}

export interface UnmarkedFigure {
  figure: string;
  line: number;
  section: string;
}

const NUMBER = String.raw`\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?`;
const MARKER_COMMENT = String.raw`<!-- bench: ([\w.-]+\.json)#([\w.-]+?)(?:\*(\d+))? -->`;
/** A figure and its marker: the number, then at most a unit, then the comment. */
const MARKED = new RegExp(String.raw`(?<![\w.,])(${NUMBER})(?:\s?(?:ms|s|MB|KB|kB|MiB|KiB|B|%|×))?${MARKER_COMMENT}`, "g");
/**
 * A number with a unit of measure. Requests and D1 rows may have up to two
 * names between ("940 Worker requests", "4 D1 rows"); other rows (the 100 rows
 * of the fleet table) are what was measured, not a measurement.
 */
const FIGURE = new RegExp(
  String.raw`(?<![\w.,])(${NUMBER})(?:\s?(ms|s|MB|KB|kB|MiB|KiB|B|%|×)(?![\w-])|((?:\s+[A-Z][\w-]*){0,2})\s+(requests|rows)\b)`,
  "g",
);
/** Words that make a clause's number a target, a limit or a setting rather than a measurement. */
const NOT_MEASURED = /[≤≥<>]|\btarget|\blimit|\bat most\b|\bup to\b|\bthreshold/i;

const lineOf = (text: string, index: number) => text.slice(0, index).split("\n").length;

export function markersIn(markdown: string): Marker[] {
  return [...markdown.matchAll(MARKED)].map((match) => ({
    text: match[1]!,
    file: match[2]!,
    path: match[3]!,
    scale: match[4] === undefined ? 1 : Number(match[4]),
    line: lineOf(markdown, match.index),
  }));
}

/** The value at a dotted path; `min` and `max` of an array of numbers. */
export function valueAt(json: unknown, path: string): unknown {
  let value = json;
  for (const key of path.split(".")) {
    if (Array.isArray(value) && (key === "min" || key === "max") && value.every((v) => typeof v === "number")) {
      value = key === "min" ? Math.min(...value) : Math.max(...value);
    } else if (Array.isArray(value) && /^\d+$/.test(key)) {
      value = value[Number(key)];
    } else if (typeof value === "object" && value !== null && !Array.isArray(value) && Object.hasOwn(value, key)) {
      value = (value as Record<string, unknown>)[key];
    } else {
      return undefined;
    }
  }
  return value;
}

/** Checks each marker against its result file; `results` maps a file name to its parsed JSON. */
export function mismatches(markers: Marker[], results: ReadonlyMap<string, unknown>): Mismatch[] {
  const found: Mismatch[] = [];
  for (const marker of markers) {
    if (!results.has(marker.file)) {
      found.push({ marker, problem: `bench/results/${marker.file} does not exist` });
      continue;
    }
    const value = valueAt(results.get(marker.file), marker.path);
    if (typeof value !== "number") {
      found.push({ marker, problem: `${marker.file}#${marker.path} is ${JSON.stringify(value)}, not a number` });
      continue;
    }
    const decimals = marker.text.split(".")[1]?.length ?? 0;
    const expected = (value * marker.scale).toFixed(decimals);
    const quoted = Number(marker.text.replaceAll(",", "")).toFixed(decimals);
    if (quoted !== expected) found.push({ marker, problem: `the text says ${marker.text}, ${marker.file}#${marker.path} gives ${expected}` });
  }
  return found;
}

/** The sections (heading to heading) that name a benchmark, with the line each starts on. */
export function performanceSections(markdown: string): Array<{ heading: string; text: string; firstLine: number }> {
  const sections: Array<{ heading: string; text: string; firstLine: number }> = [];
  let current = { heading: "(top)", lines: [] as string[], firstLine: 1 };
  const flush = () => {
    const text = current.lines.join("\n");
    if (/npm run bench:|bench\/results\//.test(text)) sections.push({ heading: current.heading, text, firstLine: current.firstLine });
  };
  let fenced = false;
  markdown.split("\n").forEach((line, index) => {
    if (line.startsWith("```")) fenced = !fenced;
    if (!fenced && /^#{1,6} /.test(line)) {
      flush();
      current = { heading: line.replace(/^#+ /, ""), lines: [], firstLine: index + 1 };
    }
    current.lines.push(line);
  });
  flush();
  return sections;
}

/** Figures with a unit in the performance sections that carry no marker and are not a target, limit or setting. */
export function unmarkedFigures(markdown: string): UnmarkedFigure[] {
  const found: UnmarkedFigure[] = [];
  for (const section of performanceSections(markdown)) {
    // Same length as the text, so indexes still give line numbers: marked figures and code blanked out.
    const blank = (match: string) => match.replace(/[^\n]/g, " ");
    const text = section.text.replace(MARKED, blank).replace(/`[^`\n]*`/g, blank).replace(/\]\([^)\s]*\)/g, blank);
    for (const match of text.matchAll(FIGURE)) {
      const [figure, number, unit, names, count] = match;
      if (unit === "s" && !number!.includes(".")) continue;
      if (count === "rows" && !/\bD1\b/.test(names ?? "") && !text.startsWith(" written", match.index + figure.length)) continue;
      const before = text.slice(Math.max(0, match.index - 40), match.index);
      const clause = before.split(/[|(;:]|[,.]\s/).pop()!;
      if (NOT_MEASURED.test(clause)) continue;
      found.push({ figure: figure.replace(/\s+/g, " "), line: section.firstLine + lineOf(text, match.index) - 1, section: section.heading });
    }
  }
  return found;
}
