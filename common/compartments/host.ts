/**
 * What every compartment rule reads: the inputs, the host's facts read once, the commands' states,
 * and the verdict they give (common/compartments.ts puts the five rules together).
 */
import type {
  CommandKind,
  CommandView,
  Compartment,
  CompartmentName,
  CompartmentState,
  Platform,
  RepoState,
  Report,
  SuggestedAction,
  UpdatePr,
} from "../protocol.ts";
import { firstErrorLine, utcClock } from "../text.ts";

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
  /** What CI published for this host (`POST /api/desired`), for hosts whose desired source is "ci". */
  desiredPublished?: { commit: string; outPath: string } | null;
  /** Fleet builds that failed on this host, newest first: System is red when one built main's tree. */
  failedBuilds?: readonly { commit: string; tree: string | null; error: string | null }[];
}

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
  // Old generations and dead store paths go; what runs and what the compartments judge stays.
  gc: [],
  // The host comes back on the boot default: the running system, and the agent restarts with it.
  reboot: ["system", "agent"],
};

/** The compartments a command of this kind moves (blue while it runs, red when it fails). */
export function compartmentsOfCommand(kind: CommandKind): readonly CompartmentName[] {
  return COMMAND_COMPARTMENTS[kind];
}

// ---------------------------------------------------------------------------
// What is known about the host, read once

export class HostFacts {
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
// Commands: running, failed, lost

/**
 * Delivered or running: the host has the command in hand. Narrower than an active command
 * (common/commands.ts) on purpose: a queued one has not touched the host, so it never decides a
 * compartment (see `decisive`).
 */
export const isUnderWayOnHost = (command: CommandView): boolean => command.state === "delivered" || command.state === "running";

export const isFailure = (command: CommandView): boolean =>
  command.state === "failed" || command.state === "timed-out" || command.state === "lost";

export const isOverdue = (command: CommandView, now: number): boolean => time(command.deadlineAt) < now;

export const commandStart = (command: CommandView): string => command.startedAt ?? command.deliveredAt ?? command.createdAt;

export const commandEnd = (command: CommandView): string => command.finishedAt ?? command.deadlineAt;

/** A pull-switch whose pull half finished: the agent records the commit it pulled to. */
export function pullHalfDone(command: CommandView): boolean {
  return command.kind === "pull-switch" && command.state === "failed" && command.result?.commitAfter != null;
}

export function failure(command: CommandView, host: HostFacts, action: SuggestedAction): Compartment {
  if (command.state !== "failed") return lostContact(command, host, action);
  const detail = firstErrorLine(command.error) ?? (command.exitCode === null ? "no error message" : `exit code ${command.exitCode}`);
  const what = command.kind === "test" ? "test run" : command.kind;
  return verdict("red", `${what} failed: ${detail}`, action, commandEnd(command), command.id);
}

/** Nothing stays blue forever: a command past its deadline, timed out or lost is red. */
export function lostContact(command: CommandView, host: HostFacts, action: SuggestedAction): Compartment {
  const reason =
    command.state === "lost"
      ? `lost contact: the agent restarted before the ${command.kind} reported back`
      : `lost contact: ${command.kind} did not report back by ${utcClock(command.deadlineAt, host.now)}`;
  return verdict("red", reason, action, command.deadlineAt, command.id);
}

export function queuedNote(host: HostFacts, name: CompartmentName): string {
  const queued = host.queued(name);
  return queued === undefined ? "" : ` (${queued.kind} queued)`;
}

// ---------------------------------------------------------------------------
// Small helpers

export function verdict(
  state: CompartmentState,
  reason: string,
  action: SuggestedAction,
  since: string | null,
  commandId: string | null = null,
): Compartment {
  return { state, reason, action, since, stale: false, commandId };
}

export function neverConnected(inputs: CompartmentInputs): Compartment {
  return inputs.online
    ? verdict("gray", "waiting for the host's first report", null, null)
    : verdict("gray", "never connected", null, null);
}

export function time(iso: string): number {
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? 0 : ms;
}

export function listNames(names: readonly string[], max = 3): string {
  if (names.length <= max) return names.join(", ");
  return `${names.slice(0, max).join(", ")} +${names.length - max} more`;
}
