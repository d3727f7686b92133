/** The Git compartment: is the host's clone at the branch head (docs/compartments.md "Git"). */
import type { CommandView, Compartment } from "../protocol.ts";
import { shortSha } from "../text.ts";
import {
  commandStart,
  failure,
  type HostFacts,
  isFailure,
  isOverdue,
  isUnderWayOnHost,
  lostContact,
  neverConnected,
  pullHalfDone,
  queuedNote,
  verdict,
} from "./host.ts";

export function gitCompartment(host: HostFacts): Compartment {
  const { report, inputs } = host;
  if (report === null) return neverConnected(inputs);

  const command = host.decisive("git");
  if (command !== undefined) {
    if (isUnderWayOnHost(command)) {
      if (isOverdue(command, host.now)) return lostContact(command, host, "pull");
      const doing = command.kind === "pull-switch" ? "pulling (then switching)…" : "pulling…";
      return verdict("blue", doing, null, commandStart(command), command.id);
    }
    if (isFailure(command) && !pullHalfDone(command) && !gitRecovered(command, host)) {
      return failure(command, host, "pull");
    }
  }

  const queued = queuedNote(host, "git");
  const hostCommit = host.hostCommit;
  if (hostCommit === null) {
    const why = report.repo.commit.reason ?? "the agent could not read it";
    return verdict("gray", `host commit unknown: ${why}${queued}`, null, inputs.reportedAt);
  }
  const head = inputs.repo?.head ?? null;
  if (head === null) {
    return verdict("gray", `${host.branch} not read from GitHub yet${queued}`, null, inputs.repo?.updatedAt ?? null);
  }
  if (hostCommit === head.sha) {
    return verdict("green", `at ${host.branch}: ${shortSha(head.sha)}`, null, inputs.reportedAt);
  }
  const merge = host.unseenMerge;
  if (merge !== undefined && merge.mergeCommitSha === hostCommit) {
    // The host pulled a merge the control plane has not read as the head yet.
    return verdict("green", `at ${host.branch}: ${shortSha(hostCommit)} (update PR #${merge.number} merged)`, null, inputs.reportedAt);
  }
  const branchNow = report.repo.branch.value;
  const otherBranch = branchNow !== null && branchNow !== host.branch ? `, on branch ${branchNow}` : "";
  const dirty = report.repo.dirty === true ? ", local changes (pull resets them)" : "";
  return verdict(
    "yellow",
    `behind ${host.branch}: ${shortSha(hostCommit)} → ${shortSha(head.sha)}${otherBranch}${dirty}${queued}`,
    "pull",
    head.committedAt,
  );
}

/**
 * A failed pull stops mattering once the host reports the branch head from a
 * commit other than the one the pull started at: someone fixed the clone.
 */
function gitRecovered(command: CommandView, host: HostFacts): boolean {
  const hostCommit = host.hostCommit;
  if (hostCommit === null || hostCommit !== host.headSha || !host.reportedSince(command)) return false;
  const before = command.result?.commitBefore ?? null;
  return before === null || before !== hostCommit;
}
