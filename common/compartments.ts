/**
 * The five compartments of spec 001 — Agent, Git, Lock, System, Tests — computed
 * from what the control plane knows about one host. Pure and synchronous: the
 * worker and the dashboard run this same function on the same inputs and get
 * the same colours and the same words.
 *
 * The rules, their precedence and the reasons behind the choices the spec
 * leaves open are in docs/compartments.md; keep the two in step.
 */
import semver from "semver";
import { renderLockTooltip } from "./lock-diff.ts";
import { COMPARTMENT_NAMES } from "./protocol.ts";
import type {
  CommandKind,
  CommandView,
  Compartment,
  CompartmentName,
  CompartmentState,
  Compartments,
  Platform,
  RepoState,
  Report,
  SuggestedAction,
  TestRun,
  UpdatePr,
} from "./protocol.ts";
import { shortSha } from "./text.ts";

/** Everything the compartments are computed from, for one host. */
export interface CompartmentInputs {
  platform: Platform;
  /** The host's last report (null: it never reported). */
  report: Report | null;
  /** When the worker received that report. */
  reportedAt: string | null;
  online: boolean;
  lastSeenAt: string | null;
  /** The host's recent commands (up to ~20), newest first, in any state. */
  commands: CommandView[];
  /** The default branch as the control plane last read it (null: not read yet). */
  repo: RepoState | null;
  /**
   * Update PRs, newest first: the open ones (superseded ones flagged), plus any
   * merged after `repo.updatedAt` — a merge the control plane has heard of but
   * whose commit it has not yet read as the branch head (see docs/compartments.md,
   * "Scenario 5 and the weekly flow"). Closed and older merged PRs are ignored.
   */
  updatePrs: UpdatePr[];
  /** The agent version the control plane ships (NIXFLEET_VERSION). */
  expectedAgentVersion: string;
  now: Date;
}

/** Lock age thresholds in days (spec 000): up to `fresh` fine, past `stale` needs an update. */
export const LOCK_AGE_DAYS = { fresh: 7, stale: 30 } as const;

const COMMAND_COMPARTMENTS: Record<CommandKind, readonly CompartmentName[]> = {
  pull: ["git"],
  switch: ["system"],
  "pull-switch": ["git", "system"],
  test: ["tests"],
  rollback: ["system"],
  "restart-agent": ["agent"],
  refresh: [],
  stop: [],
  // A build changes nothing on the host; its verdict belongs to the commit, not to a compartment.
  build: [],
};

/** The compartments a command of this kind moves (blue while it runs, red when it fails). */
export function compartmentsOfCommand(kind: CommandKind): readonly CompartmentName[] {
  return COMMAND_COMPARTMENTS[kind];
}

/** One colour per compartment for one host. */
export function computeCompartments(inputs: CompartmentInputs): Compartments {
  const host = new HostFacts(inputs);
  const computed: Compartments = {
    agent: agentCompartment(host),
    git: gitCompartment(host),
    lock: lockCompartment(host),
    system: systemCompartment(host),
    tests: testsCompartment(host),
  };
  return inputs.report !== null && !inputs.online ? markOffline(computed, host) : computed;
}

/** How many hosts show each colour in each compartment; every count present, zeros included. */
export function summarizeFleet(all: Compartments[]): Record<CompartmentName, Record<CompartmentState, number>> {
  const zero = (): Record<CompartmentState, number> => ({ green: 0, yellow: 0, red: 0, blue: 0, gray: 0 });
  const summary = {
    agent: zero(),
    git: zero(),
    lock: zero(),
    system: zero(),
    tests: zero(),
  } satisfies Record<CompartmentName, Record<CompartmentState, number>>;
  for (const compartments of all) {
    for (const name of COMPARTMENT_NAMES) summary[name][compartments[name].state] += 1;
  }
  return summary;
}

// ---------------------------------------------------------------------------
// What is known about the host, read once

class HostFacts {
  readonly inputs: CompartmentInputs;
  readonly now: number;
  /** Newest first by creation, whatever order they came in. */
  readonly commands: CommandView[];

  constructor(inputs: CompartmentInputs) {
    this.inputs = inputs;
    this.now = inputs.now.getTime();
    this.commands = [...inputs.commands].sort((a, b) => time(b.createdAt) - time(a.createdAt));
  }

  get report(): Report | null {
    return this.inputs.report;
  }

  get branch(): string {
    return this.inputs.repo?.branch ?? "main";
  }

  get headSha(): string | null {
    return this.inputs.repo?.head?.sha ?? null;
  }

  get hostCommit(): string | null {
    return this.report?.repo.commit.value ?? null;
  }

  /**
   * The command that decides a compartment: the newest of its kinds that was
   * delivered, is running or has finished. Queued ones have not touched the host
   * yet and cancelled ones changed nothing, so both are looked past.
   */
  decisive(name: CompartmentName, skip: (command: CommandView) => boolean = () => false): CommandView | undefined {
    return this.commands.find(
      (command) =>
        compartmentsOfCommand(command.kind).includes(name) &&
        command.state !== "queued" &&
        command.state !== "cancelled" &&
        !skip(command),
    );
  }

  queued(name: CompartmentName): CommandView | undefined {
    const newest = this.commands.find((command) => compartmentsOfCommand(command.kind).includes(name));
    return newest?.state === "queued" ? newest : undefined;
  }

  /** A report arrived after the command ended: the host has spoken since. */
  reportedSince(command: CommandView): boolean {
    const reportedAt = this.inputs.reportedAt;
    return reportedAt !== null && time(reportedAt) > time(commandEnd(command));
  }

  /**
   * An update PR merged into the branch after the control plane last read it:
   * GitHub has the new flake.lock, the recorded head does not yet.
   */
  get unseenMerge(): UpdatePr | undefined {
    const repo = this.inputs.repo;
    if (repo === null || repo.head === null) return undefined;
    const head = repo.head.sha;
    return this.inputs.updatePrs.find(
      (pr) =>
        pr.state === "merged" &&
        pr.mergedAt !== null &&
        pr.mergeCommitSha !== null &&
        pr.mergeCommitSha !== head &&
        pr.baseRef === repo.branch &&
        time(pr.mergedAt) > time(repo.updatedAt),
    );
  }

  get pendingUpdatePr(): UpdatePr | undefined {
    return this.inputs.updatePrs.find((pr) => pr.state === "open" && !pr.superseded);
  }
}

// ---------------------------------------------------------------------------
// Agent

function agentCompartment(host: HostFacts): Compartment {
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

// ---------------------------------------------------------------------------
// Git

function gitCompartment(host: HostFacts): Compartment {
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

/** A pull-switch whose pull half finished: the agent records the commit it pulled to. */
function pullHalfDone(command: CommandView): boolean {
  return command.kind === "pull-switch" && command.state === "failed" && command.result?.commitAfter != null;
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

// ---------------------------------------------------------------------------
// Lock

function lockCompartment(host: HostFacts): Compartment {
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

// ---------------------------------------------------------------------------
// System

const SYSTEM_DOING: Partial<Record<CommandKind, string>> = {
  switch: "switching…",
  "pull-switch": "pulling, then switching…",
  rollback: "rolling back…",
};

function systemCompartment(host: HostFacts): Compartment {
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
      : verdict("yellow", `switch needed: the clone builds ${storeName(desired)}${queued}`, "switch", inputs.reportedAt);
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

// ---------------------------------------------------------------------------
// Tests

function testsCompartment(host: HostFacts): Compartment {
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
    return verdict("yellow", `not run for this system (last run ${day(run.finishedAt)})${queued}`, "test", inputs.reportedAt);
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

// ---------------------------------------------------------------------------
// Offline: keep the last known colours, say they are old

function markOffline(computed: Compartments, host: HostFacts): Compartments {
  const { inputs } = host;
  const seen = inputs.lastSeenAt ?? inputs.reportedAt;
  const prefix = seen === null ? "offline" : `offline for ${duration(host.now - time(seen))}`;
  const stale = (compartment: Compartment): Compartment => ({
    ...compartment,
    stale: true,
    reason: `${prefix} — last known: ${compartment.reason}`,
  });
  const agent = computed.agent;
  return {
    // Spec 001: an agent that does not answer is unknown (gray), unless a command explains the silence.
    agent:
      agent.state === "blue" || (agent.state === "red" && agent.commandId !== null)
        ? stale(agent)
        : { ...stale(agent), state: "gray", action: null, since: seen },
    git: stale(computed.git),
    lock: stale(computed.lock),
    system: stale(computed.system),
    tests: stale(computed.tests),
  };
}

// ---------------------------------------------------------------------------
// Commands: running, failed, lost

/**
 * Delivered or running: the host has the command in hand. Narrower than an active command
 * (common/commands.ts) on purpose: a queued one has not touched the host, so it never decides a
 * compartment (see `decisive`).
 */
const isUnderWayOnHost = (command: CommandView): boolean => command.state === "delivered" || command.state === "running";

const isFailure = (command: CommandView): boolean =>
  command.state === "failed" || command.state === "timed-out" || command.state === "lost";

const isOverdue = (command: CommandView, now: number): boolean => time(command.deadlineAt) < now;

const commandStart = (command: CommandView): string => command.startedAt ?? command.deliveredAt ?? command.createdAt;

const commandEnd = (command: CommandView): string => command.finishedAt ?? command.deadlineAt;

function failure(command: CommandView, host: HostFacts, action: SuggestedAction): Compartment {
  if (command.state !== "failed") return lostContact(command, host, action);
  const detail = firstErrorLine(command.error) ?? (command.exitCode === null ? "no error message" : `exit code ${command.exitCode}`);
  const what = command.kind === "test" ? "test run" : command.kind;
  return verdict("red", `${what} failed: ${detail}`, action, commandEnd(command), command.id);
}

/** Nothing stays blue forever: a command past its deadline, timed out or lost is red. */
function lostContact(command: CommandView, host: HostFacts, action: SuggestedAction): Compartment {
  const reason =
    command.state === "lost"
      ? `lost contact: the agent restarted before the ${command.kind} reported back`
      : `lost contact: ${command.kind} did not report back by ${clock(command.deadlineAt, host.now)}`;
  return verdict("red", reason, action, command.deadlineAt, command.id);
}

function queuedNote(host: HostFacts, name: CompartmentName): string {
  const queued = host.queued(name);
  return queued === undefined ? "" : ` (${queued.kind} queued)`;
}

/**
 * The line of a command's error that says what went wrong: git's and nix's
 * `error:`/`fatal:`/`CONFLICT` lines first, then any line that mentions a
 * failure (nixos-rebuild's "the following units failed"), then the first line.
 */
/** Nix prints a problem it recovered from (a busy eval cache, say) as `error (ignored): …`: a warning, not the error. */
const NIX_IGNORED_ERROR = /^error \(ignored\)/i;

export function firstErrorLine(error: string | null): string | null {
  if (error === null) return null;
  const lines = error
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== "");
  const line =
    lines.find((l) => /^(error|fatal|CONFLICT)\b/i.test(l) && !NIX_IGNORED_ERROR.test(l)) ??
    lines.find((l) => /\b(error|failed|fatal|denied)\b/i.test(l)) ??
    lines[0];
  if (line === undefined) return null;
  const text = line.replace(/^(error|fatal):\s*/i, "");
  return text.length > 160 ? `${text.slice(0, 159)}…` : text;
}

// ---------------------------------------------------------------------------
// Small helpers

function verdict(
  state: CompartmentState,
  reason: string,
  action: SuggestedAction,
  since: string | null,
  commandId: string | null = null,
): Compartment {
  return { state, reason, action, since, stale: false, commandId };
}

function neverConnected(inputs: CompartmentInputs): Compartment {
  return inputs.online
    ? verdict("gray", "waiting for the host's first report", null, null)
    : verdict("gray", "never connected", null, null);
}

function time(iso: string): number {
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? 0 : ms;
}

/** `/nix/store/<hash>-nixos-system-hsb0-25.05…` → `nixos-system-hsb0-25.05…`. */
function storeName(path: string): string {
  const match = /^\/nix\/store\/[0-9a-z]{32}-(.+)$/.exec(path);
  return match?.[1] ?? path;
}

function listNames(names: readonly string[], max = 3): string {
  if (names.length <= max) return names.join(", ");
  return `${names.slice(0, max).join(", ")} +${names.length - max} more`;
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`;

/** UTC on purpose: the worker and every browser must write the same reason. */
function clock(iso: string, now: number): string {
  const at = new Date(time(iso)).toISOString();
  const sameDay = at.slice(0, 10) === new Date(now).toISOString().slice(0, 10);
  return `${sameDay ? "" : `${at.slice(0, 10)} `}${at.slice(11, 16)} UTC`;
}

const day = (iso: string): string => new Date(time(iso)).toISOString().slice(0, 10);

function duration(ms: number): string {
  const minutes = Math.floor(Math.max(0, ms) / 60_000);
  if (minutes < 1) return "less than a minute";
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h`;
  return `${Math.floor(hours / 24)} days`;
}
