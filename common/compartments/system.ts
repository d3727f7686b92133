/** The System compartment: does the running system match what the host's commit builds (docs/compartments.md "System"). */
import type { CommandKind, CommandView, Compartment } from "../protocol.ts";
import { shortSha, storePathName } from "../text.ts";
import {
  commandEnd,
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

const SYSTEM_DOING: Partial<Record<CommandKind, string>> = {
  switch: "switching…",
  "pull-switch": "pulling, then switching…",
  rollback: "rolling back…",
};

export function systemCompartment(host: HostFacts): Compartment {
  const { report, inputs } = host;
  if (report === null) return neverConnected(inputs);

  // A pull-switch that failed before its switch half never touched the system.
  const command = host.decisive(
    "system",
    (c) => c.kind === "pull-switch" && c.state === "failed" && !pullHalfDone(c),
  );
  if (command !== undefined) {
    if (isUnderWayOnHost(command)) {
      if (isOverdue(command, host.now)) return lostContact(command, host, command.kind === "rollback" ? null : "switch");
      return verdict("blue", SYSTEM_DOING[command.kind] ?? "working…", null, commandStart(command), command.id);
    }
    if (isFailure(command) && !systemRecovered(command, host)) {
      // Retrying a timed-out switch is safe; retrying a failed one fails again, and a
      // second rollback would step back yet another generation.
      const retry = command.state !== "failed" && command.kind !== "rollback" ? "switch" : null;
      return failure(command, host, retry);
    }
  }

  const queued = queuedNote(host, "system");
  const current = report.system.current.value;
  if (current === null) {
    const why = report.system.current.reason ?? "the agent could not read it";
    return verdict("gray", `running system unknown: ${why}${queued}`, null, inputs.reportedAt);
  }
  const desired = report.system.desired?.value ?? null;
  const clone = host.hostCommit;

  if (command?.kind === "rollback" && command.state === "succeeded") {
    const after = command.result?.systemAfter ?? null;
    if (after === null || after === current) {
      if (desired !== null && desired === current) {
        return verdict("green", `rolled back; running what the clone builds${queued}`, null, commandEnd(command));
      }
      const cloneAtRollback = command.result?.commitAfter ?? command.result?.commitBefore ?? null;
      const cloneMoved = cloneAtRollback !== null && clone !== null && clone !== cloneAtRollback;
      // Right after a rollback the clone still holds the config that was rolled away from.
      return cloneMoved
        ? verdict("yellow", `rolled back; switch needed: the clone moved to ${shortSha(clone)}${queued}`, "switch", commandEnd(command))
        : verdict("yellow", `rolled back; running an older generation${queued}`, null, commandEnd(command));
    }
  }

  if (desired !== null) {
    return desired === current
      ? verdict("green", `running what the clone builds${queued}`, null, inputs.reportedAt)
      : verdict("yellow", `switch needed: the clone builds ${storePathName(desired)}${queued}`, "switch", inputs.reportedAt);
  }

  const built = report.system.builtFromCommit ?? builtFromCommands(host, current);
  if (built === null || clone === null) {
    return verdict(
      "gray",
      `cannot tell what the running system was built from (not switched by NixFleet yet)${queued}`,
      "switch",
      inputs.reportedAt,
    );
  }
  if (built === clone) {
    return verdict("green", `running ${shortSha(built)}, the clone's commit${queued}`, null, inputs.reportedAt);
  }
  return verdict(
    "yellow",
    `switch needed: running ${shortSha(built)}, clone at ${shortSha(clone)}${queued}`,
    "switch",
    inputs.reportedAt,
  );
}

/** The commit the last successful switch built, when that switch is what still runs. */
function builtFromCommands(host: HostFacts, current: string): string | null {
  const command = host.commands.find(
    (c) => (c.kind === "switch" || c.kind === "pull-switch") && c.state === "succeeded" && c.result?.systemAfter === current,
  );
  return command?.result?.commitAfter ?? command?.result?.commitBefore ?? null;
}

/**
 * A failed switch stops mattering once the host reports a running system other
 * than the one the failure left: something switched it since (a manual rebuild).
 */
function systemRecovered(command: CommandView, host: HostFacts): boolean {
  const left = command.result?.systemAfter ?? command.result?.systemBefore ?? null;
  const current = host.report?.system.current.value ?? null;
  return left !== null && current !== null && current !== left && host.reportedSince(command);
}
