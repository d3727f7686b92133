/** The Agent compartment: is the agent running the control plane's version (docs/compartments.md "Agent"). */
import semver from "semver";
import type { Compartment } from "../protocol.ts";
import {
  commandStart,
  failure,
  type HostFacts,
  isFailure,
  isOverdue,
  isUnderWayOnHost,
  lostContact,
  neverConnected,
  verdict,
} from "./host.ts";

export function agentCompartment(host: HostFacts): Compartment {
  const { report, inputs } = host;
  if (report === null) return neverConnected(inputs);

  const command = host.decisive("agent");
  if (command !== undefined) {
    if (isUnderWayOnHost(command)) {
      if (isOverdue(command, host.now)) return lostContact(command, host, "restart-agent");
      return verdict("blue", "restarting the agent…", null, commandStart(command), command.id);
    }
    // The agent coming back and reporting is the proof a restart worked.
    if (isFailure(command) && !host.reportedSince(command)) {
      return failure(command, host, "restart-agent");
    }
  }

  const version = report.agentVersion;
  const expected = inputs.expectedAgentVersion;
  const since = inputs.reportedAt;
  if (semver.valid(version) === null) {
    return verdict("red", `unknown agent version "${version}": Pull + Switch installs ${expected}`, "pull-switch", since);
  }
  if (semver.valid(expected) === null) {
    return verdict("gray", `the control plane's version "${expected}" is not semver; cannot compare`, null, since);
  }
  if (semver.lt(version, expected)) {
    if (inputs.platform === "darwin" && switchedToHead(host)) {
      // launchd keeps the old agent running after darwin-rebuild; the new binary is in place.
      return verdict(
        "red",
        `agent still ${version} after the switch: restart the agent to load ${expected}`,
        "restart-agent",
        since,
      );
    }
    const macNote = inputs.platform === "darwin" ? " (on macOS, Restart Agent may be needed after the switch)" : "";
    return verdict("red", `agent ${version} is older than ${expected}: Pull + Switch updates it${macNote}`, "pull-switch", since);
  }
  if (semver.gt(version, expected)) {
    return verdict("green", `agent ${version} (newer than the control plane's ${expected})`, null, since);
  }
  return verdict("green", `agent ${version} is current`, null, since);
}

/** The host's last switch succeeded, was reported on, and built the branch head. */
function switchedToHead(host: HostFacts): boolean {
  const command = host.decisive("system");
  return (
    command !== undefined &&
    command.kind !== "rollback" &&
    command.state === "succeeded" &&
    host.reportedSince(command) &&
    host.headSha !== null &&
    host.hostCommit === host.headSha &&
    host.report?.system.builtFromCommit === host.headSha
  );
}
