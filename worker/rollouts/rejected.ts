/**
 * A system a host's safety net rolled back is not sent to that host again without force (docs/hosts.md
 * "When a switch goes wrong on the host"): a rollout leaves such a host out (docs/rollouts.md "Who is
 * in a rollout"). Pure.
 */
import type { RejectedSystem, Report } from "../../common/protocol.ts";
import { shortSha, storePathName } from "../../common/text.ts";
import type { CommitDesired } from "./unchanged.ts";

/** The host's desired store path at the commit, when its report or CI's publication names it. */
function desiredAt(hostName: string, report: Report, at: CommitDesired): string | null {
  const desired = report.desired;
  if (desired === undefined) return null;
  if (desired.source === "ci") return at.published.get(hostName) ?? null;
  const latest = desired.latest;
  if (latest === null || !("outPath" in latest)) return null;
  return latest.commit === at.commit || (at.tree !== null && latest.tree === at.tree) ? latest.outPath : null;
}

/**
 * The rolled-back system the commit would send the host back to: the same commit, or another commit whose
 * desired system at this one is that same store path. Null when the host never rejected it.
 */
export function rejectedAt(hostName: string, report: Report | null | undefined, at: CommitDesired): RejectedSystem | null {
  const rejected = report?.safetyNet?.rejected ?? [];
  if (report == null || rejected.length === 0) return null;
  const path = desiredAt(hostName, report, at);
  return rejected.findLast((system) => system.commit === at.commit || (path !== null && system.storePath === path)) ?? null;
}

/** Why the rollout leaves the host out, in the plan's and the rollout's words. */
export function describeRejected(system: RejectedSystem): string {
  const commit = system.commit === null ? "" : ` (commit ${shortSha(system.commit)})`;
  return `its safety net rolled ${storePathName(system.storePath)}${commit} back at ${system.at}: not sent again without force`;
}
