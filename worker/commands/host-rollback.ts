/**
 * A host that rolled a switch back by itself (the safety net, docs/hosts.md "When a switch goes wrong
 * on the host") remembers the system and reports it; the control plane then sends no switch to that
 * commit to that host again unless the operator forces it. Pure: the report in, a refusal or null out.
 */
import type { CommandKind, Report } from "../../common/protocol.ts";
import { shortSha, storePathName } from "../../common/text.ts";
import { refuse, type Refusal } from "../outcome.ts";

export function refuseRolledBackSwitch(hostName: string, report: Report | null, kind: CommandKind, commit: string | null): Refusal | null {
  if (kind !== "switch" && kind !== "pull-switch") return null;
  // A switch without a commit activates the clone's HEAD; a pull-switch without one, origin's head, which no report names.
  const target = commit ?? (kind === "switch" ? (report?.repo.commit.value ?? null) : null);
  if (target === null) return null;
  const rejected = report?.safetyNet?.rejected.find((system) => system.commit === target);
  if (rejected === undefined) return null;
  return refuse(
    409,
    "system_rolled_back",
    `${hostName} rolled ${storePathName(rejected.storePath)} (commit ${shortSha(target)}) back by itself at ${rejected.at}: ` +
      `it is not switched to it again unless the command is sent with "force": true`,
  );
}
