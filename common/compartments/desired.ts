/**
 * The System compartment's exact rule: the running system against the host's desired system at
 * main's head (docs/compartments.md "System"). Used for reports that carry a `desired` section;
 * older agents keep the clone-based rule in system.ts.
 */
import type { Compartment, DesiredReport } from "../protocol.ts";
import { firstErrorLine, plural, shortSha, storePathName } from "../text.ts";
import { type HostFacts, verdict } from "./host.ts";

/** A fleet build that failed on this host: its commit and git tree (a merge commit's tree usually equals the PR head's). */
export interface FailedBuildOnHost {
  commit: string;
  tree: string | null;
  error: string | null;
}

/** What the host should run at main's head: a store path, nix's error, or why it is not known. */
export type DesiredForMain =
  | { kind: "out-path"; commit: string; tree: string | null; outPath: string; changes: { toBuild: number; toFetch: number } | null }
  | { kind: "error"; commit: string; tree: string | null; error: string }
  | { kind: "unknown"; reason: string };

/**
 * The desired system at main's head from the host's report (or CI's publication for source "ci").
 * An evaluation of an older commit still counts when its tree equals main's: the same files build the same system.
 */
export function desiredForMain(host: HostFacts, desired: DesiredReport): DesiredForMain {
  const main = host.headSha;
  const mainTree = host.inputs.repo?.head?.tree ?? null;
  if (desired.source === "ci") {
    const published = host.inputs.desiredPublished ?? null;
    if (main === null) return { kind: "unknown", reason: "main's head is not known yet" };
    if (published === null || published.commit !== main) return { kind: "unknown", reason: `waiting for CI's evaluation of ${shortSha(main)}` };
    return { kind: "out-path", commit: main, tree: mainTree, outPath: published.outPath, changes: null };
  }
  const latest = desired.latest;
  const isForMain = latest !== null && (main === null || latest.commit === main || (latest.tree !== null && latest.tree === mainTree));
  if (latest === null || !isForMain) {
    if (main === null) return { kind: "unknown", reason: "waiting for the host's first evaluation of main" };
    const doing = desired.evaluating === main ? "the host is evaluating" : "waiting for the host's evaluation of";
    const older = latest === null ? "" : `; its last evaluation is of ${shortSha(latest.commit)}, an older commit`;
    return { kind: "unknown", reason: `${doing} ${shortSha(main)}${older}` };
  }
  if ("error" in latest) return { kind: "error", commit: latest.commit, tree: latest.tree, error: latest.error };
  return { kind: "out-path", commit: latest.commit, tree: latest.tree, outPath: latest.outPath, changes: latest.changes };
}

/** A failed fleet build of the tree main is at, on this host. */
function failedBuildOfMain(host: HostFacts, tree: string | null): FailedBuildOnHost | undefined {
  const mainTree = tree ?? host.inputs.repo?.head?.tree ?? null;
  if (mainTree === null) return undefined;
  return (host.inputs.failedBuilds ?? []).find((build) => build.tree === mainTree);
}

const DOES_NOT_BUILD = "main does not build on this host";

/** Green, yellow, red or gray from the desired system at main's head; the caller adds the reboot and queued notes. */
export function runningAgainstMain(host: HostFacts, current: string, desired: DesiredReport): Compartment {
  const since = host.inputs.reportedAt;
  const wanted = desiredForMain(host, desired);
  if (wanted.kind === "error") {
    return verdict("red", `${DOES_NOT_BUILD}: ${firstErrorLine(wanted.error) ?? "the evaluation failed"}`, null, since);
  }
  const failedBuild = failedBuildOfMain(host, wanted.kind === "out-path" ? wanted.tree : null);
  if (failedBuild !== undefined) {
    const detail = firstErrorLine(failedBuild.error) ?? "no error message";
    return verdict("red", `${DOES_NOT_BUILD}: its build of ${shortSha(failedBuild.commit)} failed: ${detail}`, null, since);
  }
  if (wanted.kind === "unknown") return verdict("gray", `unknown: ${wanted.reason}`, null, since);
  if (wanted.outPath === current) return verdict("green", "running main's system", null, since);
  return verdict("yellow", `switch needed: ${whatChanges(wanted)}`, "switch", since);
}

function whatChanges(wanted: Extract<DesiredForMain, { kind: "out-path" }>): string {
  if (wanted.changes === null) return `main builds ${storePathName(wanted.outPath)}`;
  const { toBuild, toFetch } = wanted.changes;
  // A fleet build (or an earlier switch) may have realised it already: nothing to do but activate it.
  if (toBuild === 0 && toFetch === 0) return `main's system ${storePathName(wanted.outPath)} is built here, ready to activate`;
  return `${plural(toBuild, "path")} to build, ${plural(toFetch, "path")} to fetch`;
}
