/** Whether a commit changes a host's system (docs/rollouts.md "Hosts a commit does not change"). Pure. */
import type { Report } from "../../common/protocol.ts";

/** The commit a rollout deploys, with what else tells its desired systems: its tree and what CI published for it. */
export interface CommitDesired {
  commit: string;
  /** The commit's git tree when known: an evaluation at another commit of the same tree counts. */
  tree: string | null;
  /** Host name → the store path CI published for this commit (hosts whose desired source is "ci"). */
  published: ReadonlyMap<string, string>;
}

/**
 * True only when the host's desired system at the commit is known and is the one it runs; unknown
 * (no evaluation of that commit yet, an older agent, an evaluation error) is false: the host is switched.
 */
export function unchangedBy(hostName: string, report: Report | null | undefined, at: CommitDesired): boolean {
  const running = report?.system.current.value ?? null;
  const desired = report?.desired;
  if (running === null || desired === undefined) return false;
  if (desired.source === "ci") return at.published.get(hostName) === running;
  const latest = desired.latest;
  if (latest === null || !("outPath" in latest)) return false;
  const sameCommit = latest.commit === at.commit || (at.tree !== null && latest.tree === at.tree);
  return sameCommit && latest.outPath === running;
}
