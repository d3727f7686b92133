/**
 * The System compartment's exact rule: the running system against the host's desired system at
 * main's head (docs/compartments.md "System"). Used for reports that carry a `desired` section;
 * older agents keep the clone-based rule in system.ts.
 */
import { describeVersionChange, versionsChanged } from "../closure-diff.ts";
import type { Compartment, DesiredChanges, DesiredClosureDiff, DesiredReport } from "../protocol.ts";
import { firstErrorLine, plural, pluralWord, shortSha, storePathName } from "../text.ts";
import { describeDesiredChanges } from "./desired-changes.ts";
import { type HostFacts, verdict } from "./host.ts";

/** A fleet build that failed on this host: its commit and git tree (a merge commit's tree usually equals the PR head's). */
export interface FailedBuildOnHost {
  commit: string;
  tree: string | null;
  error: string | null;
}

/** What the host should run at main's head: a store path, nix's error, or why it is not known. */
export type DesiredForMain =
  | {
      kind: "out-path";
      commit: string;
      tree: string | null;
      outPath: string;
      changes: DesiredChanges | null;
      closureDiff: DesiredClosureDiff | null;
    }
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
    return { kind: "out-path", commit: main, tree: mainTree, outPath: published.outPath, changes: null, closureDiff: null };
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
  return { kind: "out-path", commit: latest.commit, tree: latest.tree, outPath: latest.outPath, changes: latest.changes, closureDiff: latest.closureDiff ?? null };
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
  return verdict("yellow", `switch needed: ${whatChanges(wanted, current)}`, "switch", since);
}

function whatChanges(wanted: Extract<DesiredForMain, { kind: "out-path" }>, current: string): string {
  const diff = wanted.closureDiff;
  const builtHere = `main's system ${storePathName(wanted.outPath)} is built here, ready to activate`;
  if (diff !== null && diff.comparedWith === current) return packagesThatChange(diff) ?? `${builtHere}; no package changes its version`;
  if (wanted.changes === null) return `main builds ${storePathName(wanted.outPath)}`;
  // Null: nothing to build or fetch, as when a fleet build (or an earlier switch) realised it already.
  return describeDesiredChanges(wanted.changes) ?? builtHere;
}

/** The version changes named in a compartment's line, at most; the host page lists them all. */
const NAMED_CHANGES = 2;
const NAMED_CHANGES_MAX_CHARS = 80;

/**
 * "3 packages change (linux 6.6.1 → 6.6.8, hello 1.0 → 1.1 and 1 more), built here": the first
 * version changes while they stay short; size-only changes are counted, not named. Null when
 * nix lists no package (none changed its version, none its size by 8 KiB or more).
 */
function packagesThatChange(diff: DesiredClosureDiff): string | null {
  const count = diff.entries.length + diff.omitted;
  if (count === 0) return null;
  const named: string[] = [];
  for (const entry of diff.entries.filter(versionsChanged).slice(0, NAMED_CHANGES)) {
    const words = describeVersionChange(entry);
    // The first is named however long: the protocol bounds a name and its versions.
    if (named.length > 0 && [...named, words].join(", ").length > NAMED_CHANGES_MAX_CHARS) break;
    named.push(words);
  }
  const more = count - named.length;
  const list = named.length === 0 ? "sizes only" : `${named.join(", ")}${more > 0 ? ` and ${more} more` : ""}`;
  return `${plural(count, "package")} ${pluralWord(count, "changes", "change")} (${list}), built here`;
}
