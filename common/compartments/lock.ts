/** The Lock compartment: is the host's flake.lock the branch's, and how old it is (docs/compartments.md "Lock"). */
import { renderLockTooltip } from "../lock-diff.ts";
import type { Compartment } from "../protocol.ts";
import { plural } from "../text.ts";
import { type HostFacts, listNames, neverConnected, verdict } from "./host.ts";

/** Lock age thresholds in days: up to `fresh` fine, past `stale` needs an update (see docs/compartments.md "Lock", lock age). */
export const LOCK_AGE_DAYS = { fresh: 7, stale: 30 } as const;

export function lockCompartment(host: HostFacts): Compartment {
  const { report, inputs } = host;
  if (report === null) return neverConnected(inputs);

  const hostHash = report.lock.hash.value;
  if (hostHash === null) {
    const why = report.lock.hash.reason ?? "the agent could not read flake.lock";
    return verdict("gray", `flake.lock unknown: ${why}`, null, inputs.reportedAt);
  }

  const repo = inputs.repo;
  const mainHash = repo?.lock.hash ?? null;
  const merge = host.unseenMerge;
  const pending = host.pendingUpdatePr;
  const pendingNote = pending === undefined ? "" : `; update PR #${pending.number} pending`;
  const hostHasMerge = merge !== undefined && merge.mergeCommitSha === host.hostCommit;

  if (repo !== null && mainHash !== null && hostHash !== mainHash && !hostHasMerge) {
    const changed = changedInputs(report.lock.lastModified, repo.lock.lastModified);
    return verdict("yellow", `new flake.lock on ${host.branch}${changed}${pendingNote}`, "pull", repo.updatedAt);
  }
  if (merge !== undefined && !hostHasMerge) {
    const inputsNamed = listNames(merge.lockChanges.map((change) => change.input));
    const what = inputsNamed === "" ? "" : ` (${inputsNamed})`;
    return verdict(
      "yellow",
      `update PR #${merge.number} merged${what}: pull to get the new flake.lock`,
      "pull",
      merge.mergedAt,
    );
  }
  if (pending !== undefined) {
    // Merging is a repository action, not a host command, so nothing to suggest here.
    const reason =
      pending.lockDiff === "pending"
        ? `Update PR pending: #${pending.number}, reading its flake.lock changes…`
        : pending.lockDiff === "failed"
          ? `Update PR pending: #${pending.number} (its flake.lock changes could not be read: ${pending.lockDiffProblem ?? "unknown problem"})`
          : renderLockTooltip(pending.lockChanges);
    return verdict("yellow", reason, null, pending.createdAt);
  }

  const age = lockAge(report.lock.lastModified, host.now);
  if (age !== null && age.days > LOCK_AGE_DAYS.stale) {
    const since = new Date((age.lastModified + LOCK_AGE_DAYS.stale * DAY_SECONDS) * 1000).toISOString();
    return verdict("yellow", `${age.input} is ${age.days} days old: needs update`, null, since);
  }
  const ageNote =
    age === null
      ? ""
      : age.days > LOCK_AGE_DAYS.fresh
        ? `; ${age.input} is ${age.days} days old, consider updating`
        : `; ${age.input} is ${age.days === 0 ? "less than a day" : plural(age.days, "day")} old`;
  if (hostHasMerge) {
    return verdict("green", `flake.lock from update PR #${merge.number}${ageNote}`, null, inputs.reportedAt);
  }
  if (mainHash === null) {
    return verdict("gray", `flake.lock on ${host.branch} not read yet${ageNote}`, null, inputs.reportedAt);
  }
  return verdict("green", `flake.lock matches ${host.branch}${ageNote}`, null, inputs.reportedAt);
}

const DAY_SECONDS = 24 * 60 * 60;

/**
 * How old the lock is. nixpkgs is what ages a system (security fixes), so the
 * oldest root-level nixpkgs input decides when there is one; otherwise the
 * newest input says when the lock was last updated.
 */
export function lockAge(
  lastModified: Record<string, number>,
  now: number,
): { input: string; lastModified: number; days: number } | null {
  const entries = Object.entries(lastModified);
  const nixpkgs = entries.filter(([input]) => /^nixpkgs([-_].*)?$/.test(input));
  const pick =
    nixpkgs.length > 0
      ? nixpkgs.reduce((oldest, entry) => (entry[1] < oldest[1] ? entry : oldest))
      : entries.reduce<[string, number] | null>((newest, entry) => (newest === null || entry[1] > newest[1] ? entry : newest), null);
  if (pick === null) return null;
  const [input, seconds] = pick;
  const days = Math.max(0, Math.floor((now / 1000 - seconds) / DAY_SECONDS));
  return { input: nixpkgs.length > 0 ? input : "flake.lock", lastModified: seconds, days };
}

/** " (nixpkgs, home-manager changed)" from the two lastModified maps, or "" when they tell nothing. */
function changedInputs(hostInputs: Record<string, number>, mainInputs: Record<string, number>): string {
  const names = [...new Set([...Object.keys(hostInputs), ...Object.keys(mainInputs)])]
    .filter((input) => hostInputs[input] !== mainInputs[input])
    .sort();
  if (Object.keys(hostInputs).length === 0 || Object.keys(mainInputs).length === 0 || names.length === 0) return "";
  return ` (${listNames(names)} changed)`;
}
