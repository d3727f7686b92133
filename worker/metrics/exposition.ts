/**
 * The Prometheus text exposition format (version 0.0.4), written by hand: a
 * handful of families, so no client library.
 * https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format
 */

export type Labels = Record<string, string>;

export interface Sample {
  labels?: Labels;
  value: number;
}

export interface HistogramSample {
  labels?: Labels;
  /** Upper bounds, ascending, without +Inf. */
  bounds: readonly number[];
  /** Non-cumulative: counts[i] fell in (bounds[i-1], bounds[i]]; the last entry is above every bound. */
  counts: readonly number[];
  sum: number;
}

export type MetricFamily =
  | { name: string; help: string; type: "gauge" | "counter"; samples: Sample[] }
  | { name: string; help: string; type: "histogram"; samples: HistogramSample[] };

export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const escapeHelp = (text: string): string => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
const escapeLabel = (text: string): string => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "+Inf";
  if (value === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(value);
}

function formatLabels(labels: Labels | undefined, extra?: Labels): string {
  const entries = Object.entries({ ...labels, ...extra });
  if (entries.length === 0) return "";
  return `{${entries.map(([key, value]) => `${key}="${escapeLabel(value)}"`).join(",")}}`;
}

/** Every family with its HELP and TYPE lines, then its samples; a histogram as cumulative buckets, _sum and _count. */
export function renderExposition(families: readonly MetricFamily[]): string {
  const lines: string[] = [];
  for (const family of families) {
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`, `# TYPE ${family.name} ${family.type}`);
    if (family.type === "histogram") {
      for (const sample of family.samples) {
        let cumulative = 0;
        sample.bounds.forEach((bound, i) => {
          cumulative += sample.counts[i] ?? 0;
          lines.push(`${family.name}_bucket${formatLabels(sample.labels, { le: formatValue(bound) })} ${cumulative}`);
        });
        cumulative += sample.counts[sample.bounds.length] ?? 0;
        lines.push(`${family.name}_bucket${formatLabels(sample.labels, { le: "+Inf" })} ${cumulative}`);
        lines.push(`${family.name}_sum${formatLabels(sample.labels)} ${formatValue(sample.sum)}`);
        lines.push(`${family.name}_count${formatLabels(sample.labels)} ${cumulative}`);
      }
    } else {
      for (const sample of family.samples) lines.push(`${family.name}${formatLabels(sample.labels)} ${formatValue(sample.value)}`);
    }
  }
  return `${lines.join("\n")}\n`;
}
