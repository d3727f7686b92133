/** The Tests compartment: did the host's tests pass for the system it runs (docs/compartments.md "Tests"). */
import type { CommandView, Compartment, TestRun } from "../protocol.ts";
import { plural, utcDay } from "../text.ts";
import {
  commandEnd,
  commandStart,
  compartmentsOfCommand,
  failure,
  type HostFacts,
  isFailure,
  isOverdue,
  isUnderWayOnHost,
  listNames,
  lostContact,
  neverConnected,
  queuedNote,
  time,
  verdict,
} from "./host.ts";

export function testsCompartment(host: HostFacts): Compartment {
  const { report, inputs } = host;
  if (report === null) return neverConnected(inputs);
  if (!report.tests.configured) return verdict("gray", "no tests configured", null, null);

  const command = host.decisive("tests");
  if (command !== undefined && isUnderWayOnHost(command)) {
    if (isOverdue(command, host.now)) return lostContact(command, host, "test");
    return verdict("blue", "running tests…", null, commandStart(command), command.id);
  }

  const run = latestTestRun(host);
  const runCommand = run === null ? undefined : commandWithRun(host, run);
  if (command !== undefined && isFailure(command) && command.result?.tests === undefined) {
    // The runner itself failed or vanished; a newer run (e.g. after the next switch) supersedes it.
    if (run === null || time(run.finishedAt) <= time(commandEnd(command))) return failure(command, host, "test");
  }

  const queued = queuedNote(host, "tests");
  if (run === null) return verdict("yellow", `not run yet${queued}`, "test", inputs.reportedAt);
  const current = report.system.current.value;
  const otherSystem = run.system !== null && current !== null && run.system !== current;
  if (otherSystem || switchedSince(host, run)) {
    return verdict("yellow", `not run for this system (last run ${utcDay(run.finishedAt)})${queued}`, "test", inputs.reportedAt);
  }
  if (run.results.length === 0) {
    return verdict("gray", `the last run found no tests${queued}`, "test", run.finishedAt, runCommand?.id ?? null);
  }
  const failed = run.results.filter((result) => !result.passed).map((result) => result.name);
  if (failed.length > 0) {
    return verdict("red", `tests failed: ${listNames(failed, 5)}${queued}`, "rollback", run.finishedAt, runCommand?.id ?? null);
  }
  return verdict("green", `${plural(run.results.length, "test")} passed${queued}`, null, run.finishedAt, runCommand?.id ?? null);
}

/** The newest run, from the report or from a finished command's result. */
function latestTestRun(host: HostFacts): TestRun | null {
  let newest = host.report?.tests.last ?? null;
  for (const command of host.commands) {
    const run = command.result?.tests;
    if (run !== undefined && (newest === null || time(run.finishedAt) > time(newest.finishedAt))) newest = run;
  }
  return newest;
}

function commandWithRun(host: HostFacts, run: TestRun): CommandView | undefined {
  return host.commands.find((command) => command.result?.tests?.finishedAt === run.finishedAt);
}

/** When runs do not name their system, a successful switch after the run makes it stale. */
function switchedSince(host: HostFacts, run: TestRun): boolean {
  if (run.system !== null && host.report?.system.current.value != null) return false;
  return host.commands.some(
    (command) =>
      compartmentsOfCommand(command.kind).includes("system") &&
      command.state === "succeeded" &&
      command.result?.tests === undefined &&
      time(commandEnd(command)) > time(run.finishedAt),
  );
}
