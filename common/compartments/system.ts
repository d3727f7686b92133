/** The System compartment: does the running system match what the host's commit builds (docs/compartments.md "System"). */
import type { CommandKind, CommandView, Compartment, RebootStatus } from "../protocol.ts";
import { shortSha, storePathName } from "../text.ts";
import { runningAgainstMain } from "./desired.ts";
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
  const running = report.desired === undefined || rolledBack(command, current) ? runningAgainstClone(host, current, command) : runningAgainstMain(host, current, report.desired);
  return withRebootNote(running, rebootNote(report.system.reboot?.value ?? null), queued);
}

/** A rollback that left the host on the generation it went back to: said so until something switches it. */
function rolledBack(command: CommandView | undefined, current: string): boolean {
  if (command?.kind !== "rollback" || command.state !== "succeeded") return false;
  const after = command.result?.systemAfter ?? null;
  return after === null || after === current;
}

/** What the running system is against what the clone builds; the caller adds the reboot and queued notes. */
function runningAgainstClone(host: HostFacts, current: string, command: CommandView | undefined): Compartment {
  const { report, inputs } = host;
  const desired = report?.system.desired?.value ?? null;
  const clone = host.hostCommit;

  if (command?.kind === "rollback" && command.state === "succeeded") {
    const after = command.result?.systemAfter ?? null;
    if (after === null || after === current) {
      if (desired !== null && desired === current) {
        return verdict("green", "rolled back; running what the clone builds", null, commandEnd(command));
      }
      const cloneAtRollback = command.result?.commitAfter ?? command.result?.commitBefore ?? null;
      const cloneMoved = cloneAtRollback !== null && clone !== null && clone !== cloneAtRollback;
      // Right after a rollback the clone still holds the config that was rolled away from.
      return cloneMoved
        ? verdict("yellow", `rolled back; switch needed: the clone moved to ${shortSha(clone)}`, "switch", commandEnd(command))
        : verdict("yellow", "rolled back; running an older generation", null, commandEnd(command));
    }
  }

  if (desired !== null) {
    return desired === current
      ? verdict("green", "running what the clone builds", null, inputs.reportedAt)
      : verdict("yellow", `switch needed: the clone builds ${storePathName(desired)}`, "switch", inputs.reportedAt);
  }

  const built = report?.system.builtFromCommit ?? builtFromCommands(host, current);
  if (built === null || clone === null) {
    return verdict("gray", "cannot tell what the running system was built from (not switched by NixFleet yet)", "switch", inputs.reportedAt);
  }
  if (built === clone) {
    return verdict("green", `running ${shortSha(built)}, the clone's commit`, null, inputs.reportedAt);
  }
  return verdict("yellow", `switch needed: running ${shortSha(built)}, clone at ${shortSha(clone)}`, "switch", inputs.reportedAt);
}

/**
 * A reboot due turns a current system yellow and is added to a yellow one's
 * reason; blue, red and gray say something worse and keep their reason.
 */
function withRebootNote(running: Compartment, reboot: string | null, queued: string): Compartment {
  if (reboot !== null && running.state === "green") return verdict("yellow", `${reboot}${queued}`, null, running.since);
  const note = reboot !== null && running.state === "yellow" ? `; ${reboot}` : "";
  return { ...running, reason: `${running.reason}${note}${queued}` };
}

/** "reboot needed: kernel 6.6.1 → 6.6.8", "reboot needed: initrd changed"; null when none is due. */
export function rebootNote(status: RebootStatus | null): string | null {
  if (status === null || !status.needed) return null;
  const { kernel } = status;
  if (kernel !== null) {
    return kernel.booted !== null && kernel.next !== null && kernel.booted !== kernel.next
      ? `reboot needed: kernel ${kernel.booted} → ${kernel.next}`
      : "reboot needed: kernel changed";
  }
  const parts = status.changed.length > 0 ? status.changed.join(" and ") : "boot files";
  return `reboot needed: ${parts} changed`;
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
