/**
 * How an update PR's fleet build reads on the dashboard (docs/fleet-build.md):
 * what the update changes on a host (the Lock tooltip, the host page) and each
 * host's mark (the deploy confirmation, the host page). The banner's lines are
 * in fleet-build-lines.ts, loaded with the banner's build status only.
 * Pure, so the words are tested without a browser.
 */
import type { ClosureDiff, ClosureDiffEntry, FleetBuildHostView, FleetBuildView } from "../../common/protocol.ts";
import { describeVersionChange, versionsChanged } from "../../common/closure-diff.ts";
import { formatSizeDelta } from "./format.ts";

type Tone = "good" | "bad" | "busy" | "warn" | "muted";

/** The host's part in the build, or null when the build does not cover it. */
export function hostBuild(build: FleetBuildView | null | undefined, host: string): FleetBuildHostView | null {
  return build?.hosts.find((h) => h.name === host) ?? null;
}

/** A build that answers the PR's current head: older heads' builds say nothing about what would be merged. */
export function currentBuild(pr: { headSha: string; fleetBuild: FleetBuildView | null } | null): FleetBuildView | null {
  const build = pr?.fleetBuild ?? null;
  return build !== null && build.headSha === pr?.headSha ? build : null;
}

/** One package's change: "openssl 3.0.14 → 3.0.15", "libfoo 1.2 (added)", "libbar 0.9 (removed)", "glibc +1.2 MiB". */
export function describeClosureEntry(entry: ClosureDiffEntry): string {
  return versionsChanged(entry) ? describeVersionChange(entry) : `${entry.name} ${formatSizeDelta(entry.sizeDelta)}`;
}

/**
 * The packages whose version changes, for one line: "openssl 3.0.14 → 3.0.15,
 * firefox 131.0 → 132.0 and 4 more (+12.4 MiB)". Size-only changes are left
 * to the full diff on the host page.
 */
export function closureSummary(diff: ClosureDiff, limit = 3): string {
  const changed = diff.entries.filter(versionsChanged);
  const shown = changed.slice(0, limit).map(describeClosureEntry).join(", ");
  const more = changed.length - limit + diff.omitted;
  const size = `(${formatSizeDelta(diff.totalSizeDelta)})`;
  if (changed.length === 0) return `no package version changes ${size}`;
  return `${shown}${more > 0 ? ` and ${more} more` : ""} ${size}`;
}

/**
 * What the update means for one host, for the Lock tooltip and the host page:
 * "The update builds on this host; it changes: openssl 3.0.14 → 3.0.15 (+12.4 MiB)."
 * Null when the build does not cover the host.
 */
export function hostBuildNote(host: FleetBuildHostView | null): string | null {
  if (host === null) return null;
  const why = host.reason ? `: ${host.reason}` : "";
  switch (host.state) {
    case "built":
      if (host.closureDiff) return `The update builds on this host; it changes: ${closureSummary(host.closureDiff)}.`;
      return `The update builds on this host${host.closureDiffProblem ? ` (what it changes is unknown: ${host.closureDiffProblem})` : ""}.`;
    case "failed":
      return `The update does not build on this host${why}.`;
    case "building":
      return "The update is building on this host.";
    case "queued":
    case "waiting":
      return `The update's build on this host is ${host.state}${why}.`;
    case "offline":
      return `The update has not been built on this host${why || ": offline"}.`;
    case "cancelled":
      return `The update's build on this host was cancelled${why}.`;
  }
}

/** A host's mark in the deploy confirmation and on its page: "✓ built, +12.4 MiB", "✗ build failed", "not built (offline)". */
export function buildMark(host: FleetBuildHostView | null): { text: string; tone: Tone } | null {
  if (host === null) return null;
  switch (host.state) {
    case "built":
      return { text: `✓ built${host.closureDiff ? `, ${formatSizeDelta(host.closureDiff.totalSizeDelta)}` : ""}`, tone: "good" };
    case "failed":
      return { text: "✗ build failed", tone: "bad" };
    case "building":
    case "queued":
    case "waiting":
      return { text: host.state === "building" ? "building…" : `build ${host.state}`, tone: "busy" };
    case "offline":
    case "cancelled":
      return { text: `not built (${host.state})`, tone: "warn" };
  }
}

/** The hosts whose build of the head failed: the deploy confirmation leaves them out unless told otherwise. */
export function failedBuildHosts(build: FleetBuildView | null): string[] {
  return build === null ? [] : build.hosts.filter((h) => h.state === "failed").map((h) => h.name);
}
