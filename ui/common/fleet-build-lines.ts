/**
 * The banner's fleet build, line by line (docs/fleet-build.md): the verdict
 * and each host's state with how long it took and what it changes. Only
 * nf-fleet-build-status uses it, so it loads with that element.
 */
import type { FleetBuildHostState, FleetBuildHostView, FleetBuildVerdict } from "../../common/protocol.ts";
import { formatSizeDelta } from "./format.ts";
import { formatDuration } from "../../common/text.ts";

type Tone = "good" | "bad" | "busy" | "warn" | "muted";

export const VERDICTS: Record<FleetBuildVerdict, { label: string; tone: Tone }> = {
  pending: { label: "building", tone: "busy" },
  success: { label: "builds everywhere", tone: "good" },
  failure: { label: "build failed", tone: "bad" },
};

export const BUILD_STEPS: Record<FleetBuildHostState, { icon: string; label: string; tone: Tone }> = {
  waiting: { icon: "…", label: "waiting", tone: "muted" },
  queued: { icon: "…", label: "queued", tone: "muted" },
  building: { icon: "⟳", label: "building…", tone: "busy" },
  built: { icon: "✓", label: "built", tone: "good" },
  failed: { icon: "✗", label: "failed", tone: "bad" },
  offline: { icon: "○", label: "offline", tone: "warn" },
  cancelled: { icon: "–", label: "cancelled", tone: "muted" },
};

/** How long the host's build took, from its duration or its times; null before it started. */
function buildTook(host: FleetBuildHostView, now: number): number | null {
  if (host.durationMs !== undefined) return host.durationMs;
  if (!host.startedAt) return null;
  const start = Date.parse(host.startedAt);
  const end = host.finishedAt ? Date.parse(host.finishedAt) : now;
  return Number.isNaN(start) || Number.isNaN(end) ? null : Math.max(0, end - start);
}

/** What follows the host's state on its banner line: "in 41 s (+12.4 MiB)", "12 s so far", or the reason. */
export function hostBuildDetail(host: FleetBuildHostView, now: number): string {
  const took = buildTook(host, now);
  switch (host.state) {
    case "built": {
      const size = host.closureDiff ? ` (${formatSizeDelta(host.closureDiff.totalSizeDelta)})` : "";
      return `${took === null ? "" : `in ${formatDuration(took)}`}${size}`.trim();
    }
    case "building":
      return took === null ? "" : `${formatDuration(took)} so far`;
    default:
      return host.reason ?? "";
  }
}
