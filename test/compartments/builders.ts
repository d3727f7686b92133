/**
 * Builders for realistic protocol values: full 40-hex commits, sha256 lock
 * hashes, /nix/store paths, reports and commands as the agent and the worker
 * produce them. Every builder parses its result with the protocol schema, so a
 * builder that drifts from the protocol fails loudly instead of testing fiction.
 */
import { createHash } from "node:crypto";
import {
  COMMAND_DEADLINE_SECONDS,
  CommandView,
  LockChange,
  PROTOCOL_VERSION,
  RepoState,
  Report,
  TestRun,
  UpdatePr,
} from "../../common/protocol.ts";
import type { CommandKind, CommandResult, CommandState, DesiredReport, Platform, RebootStatus } from "../../common/protocol.ts";
import type { CompartmentInputs } from "../../common/compartments.ts";
import { NIXFLEET_VERSION } from "../../common/version.ts";

// ---------------------------------------------------------------------------
// Identifiers and time

/** A full git sha, derived from a label so the same label gives the same commit. */
export const sha = (label: string): string => createHash("sha1").update(label).digest("hex");

/** A flake.lock hash as the agent and the worker report it (sha256 hex). */
export const lockHash = (label: string): string => createHash("sha256").update(label).digest("hex");

const NIX_BASE32 = "0123456789abcdfghijklmnpqrsvwxyz";

/** A /nix/store path with a valid-looking 32-character hash. */
export function storePath(name: string): string {
  const digest = createHash("sha256").update(name).digest();
  const hash = Array.from(digest.subarray(0, 32), (byte) => NIX_BASE32[byte % 32]).join("");
  return `/nix/store/${hash}-${name}`;
}

/** A command id the protocol accepts. */
export const commandId = (label: string): string =>
  `cmd_${createHash("sha256").update(label).digest("base64url").slice(0, 20)}`;

/** The tests' fixed clock: a Wednesday noon, UTC. */
export const NOW = new Date("2025-12-17T12:00:00.000Z");

export const minutesAgo = (minutes: number, now: Date = NOW): string =>
  new Date(now.getTime() - minutes * 60_000).toISOString();

export const hoursAgo = (hours: number, now: Date = NOW): string => minutesAgo(hours * 60, now);

export const daysAgo = (days: number, now: Date = NOW): string => minutesAgo(days * 24 * 60, now);

/** Unix seconds, as flake.lock's lastModified. */
export const unixDaysAgo = (days: number, now: Date = NOW): number =>
  Math.floor(now.getTime() / 1000) - Math.round(days * 24 * 60 * 60);

// ---------------------------------------------------------------------------
// Reports

export interface TestRunOptions {
  system: string | null;
  finishedAt: string;
  /** Test name → passed. */
  results: Record<string, boolean>;
}

export function buildTestRun(options: TestRunOptions): TestRun {
  return TestRun.parse({
    system: options.system,
    finishedAt: options.finishedAt,
    results: Object.entries(options.results).map(([name, passed]) => ({
      name,
      passed,
      exitCode: passed ? 0 : 1,
      durationMs: 1200,
      output: passed ? `${name}: ok\n` : `${name}: FAILED\n`,
    })),
  });
}

export interface ReportOptions {
  agentVersion?: string;
  platform?: Platform;
  hostname?: string;
  commit?: string | null;
  commitReason?: string;
  branch?: string;
  dirty?: boolean | null;
  lockHash?: string | null;
  lockReason?: string;
  lastModified?: Record<string, number>;
  current?: string | null;
  currentReason?: string;
  /** Leave out when the agent did not evaluate what the clone would build. */
  desired?: string | null;
  builtFromCommit?: string | null;
  /** Leave out for an agent that does not report it (older agents). */
  reboot?: { value: RebootStatus; reason?: undefined } | { value: null; reason: string };
  testsConfigured?: boolean;
  autoRunAfterSwitch?: boolean;
  lastTestRun?: TestRun | null;
  /** The desired system at main's head (Report.desired); leave out for an older agent. */
  mainDesired?: DesiredReport;
}

/** A report as a NixOS agent sends it; every field overridable. */
export function buildReport(options: ReportOptions = {}): Report {
  const platform = options.platform ?? "nixos";
  const known = (value: unknown, reason?: string) => (reason === undefined ? { value } : { value, reason });
  return Report.parse({
    protocol: PROTOCOL_VERSION,
    agentVersion: options.agentVersion ?? NIXFLEET_VERSION,
    platform,
    hostname: options.hostname ?? "hsb0",
    os: known(platform === "darwin" ? "macOS 15.1" : "NixOS 25.05 (Warbler)"),
    nixpkgsVersion: known("25.05.20251210.abc1234"),
    nixVersion: known("2.28.3"),
    repo: {
      commit: known(options.commit === undefined ? sha("initial") : options.commit, options.commitReason),
      branch: known(options.branch ?? "main"),
      dirty: options.dirty ?? false,
    },
    lock: {
      hash: known(options.lockHash === undefined ? lockHash("initial") : options.lockHash, options.lockReason),
      lastModified: options.lastModified ?? {},
    },
    system: {
      current: known(
        options.current === undefined ? storePath("nixos-system-hsb0-25.05.20251210.abc1234") : options.current,
        options.currentReason,
      ),
      ...(options.desired === undefined ? {} : { desired: known(options.desired) }),
      builtFromCommit: options.builtFromCommit ?? null,
      ...(options.reboot === undefined ? {} : { reboot: options.reboot }),
    },
    tests: {
      configured: options.testsConfigured ?? true,
      autoRunAfterSwitch: options.autoRunAfterSwitch ?? false,
      last: options.lastTestRun ?? null,
    },
    uptimeSeconds: 3 * 24 * 3600,
    agentUptimeSeconds: 3 * 24 * 3600,
    ...(options.mainDesired === undefined ? {} : { desired: options.mainDesired }),
  });
}

// ---------------------------------------------------------------------------
// Commands

export interface CommandOptions {
  kind: CommandKind;
  state: CommandState;
  id?: string;
  host?: string;
  createdAt?: string;
  /** Defaults to a second after creation, when the state implies delivery. */
  deliveredAt?: string | null;
  startedAt?: string | null;
  finishedAt?: string | null;
  deadlineAt?: string;
  exitCode?: number | null;
  error?: string | null;
  result?: CommandResult | null;
  target?: string | null;
}

const DELIVERED_STATES: ReadonlySet<CommandState> = new Set([
  "delivered",
  "running",
  "succeeded",
  "failed",
  "timed-out",
  "lost",
]);
const STARTED_STATES: ReadonlySet<CommandState> = new Set(["running", "succeeded", "failed", "timed-out", "lost"]);
const FINISHED_STATES: ReadonlySet<CommandState> = new Set(["succeeded", "failed", "cancelled", "timed-out", "lost"]);

const plusSeconds = (iso: string, seconds: number): string => new Date(Date.parse(iso) + seconds * 1000).toISOString();

/**
 * A command as the admin API shows it. Timestamps follow from the state
 * (delivered a second after creation, started a second later, finished a
 * minute later; the deadline counted from delivery) unless given.
 */
export function buildCommand(options: CommandOptions): CommandView {
  const createdAt = options.createdAt ?? minutesAgo(10);
  const deliveredAt =
    options.deliveredAt !== undefined ? options.deliveredAt : DELIVERED_STATES.has(options.state) ? plusSeconds(createdAt, 1) : null;
  const startedAt =
    options.startedAt !== undefined ? options.startedAt : STARTED_STATES.has(options.state) ? plusSeconds(createdAt, 2) : null;
  const deadlineAt = options.deadlineAt ?? plusSeconds(deliveredAt ?? createdAt, COMMAND_DEADLINE_SECONDS[options.kind]);
  const finishedAt =
    options.finishedAt !== undefined
      ? options.finishedAt
      : !FINISHED_STATES.has(options.state)
        ? null
        : options.state === "timed-out"
          ? deadlineAt
          : plusSeconds(createdAt, 60);
  const failed = options.state === "failed";
  return CommandView.parse({
    id: options.id ?? commandId(`${options.kind}-${options.state}-${createdAt}`),
    host: options.host ?? "hsb0",
    kind: options.kind,
    state: options.state,
    target: options.target ?? null,
    actor: "admin@example.com",
    createdAt,
    deliveredAt,
    startedAt,
    finishedAt,
    deadlineAt,
    expiresAt: plusSeconds(createdAt, 3600),
    exitCode: options.exitCode !== undefined ? options.exitCode : options.state === "succeeded" ? 0 : failed ? 1 : null,
    error: options.error ?? null,
    result: options.result ?? null,
  });
}

// ---------------------------------------------------------------------------
// Repository and update PRs

export interface RepoOptions {
  headSha?: string | null;
  message?: string;
  committedAt?: string;
  lockHash?: string | null;
  lastModified?: Record<string, number>;
  updatedAt?: string;
  source?: RepoState["source"];
  branch?: string;
  /** The head's git tree, when GitHub said it. */
  headTree?: string;
}

/** The default branch as the worker records it. */
export function buildRepoState(options: RepoOptions = {}): RepoState {
  const headSha = options.headSha === undefined ? sha("initial") : options.headSha;
  const committedAt = options.committedAt ?? daysAgo(1);
  return RepoState.parse({
    repository: "example/nixcfg",
    branch: options.branch ?? "main",
    head:
      headSha === null
        ? null
        : {
            sha: headSha,
            message: options.message ?? "hosts: update",
            author: "Markus",
            committedAt,
            ...(options.headTree === undefined ? {} : { tree: options.headTree }),
          },
    lock: {
      hash: options.lockHash === undefined ? lockHash("initial") : options.lockHash,
      lastModified: options.lastModified ?? {},
    },
    updatedAt: options.updatedAt ?? committedAt,
    source: options.source ?? "webhook",
  });
}

/** One github input's change, as common/lock-diff.ts computes it. */
export function buildLockChange(input: string, oldRev: string, newRev: string, oldSeconds: number, newSeconds: number): LockChange {
  const ref = (rev: string, seconds: number) => ({
    type: "github",
    rev,
    narHash: `sha256-${Buffer.from(lockHash(rev)).toString("base64").slice(0, 43)}=`,
    lastModified: new Date(seconds * 1000).toISOString(),
    url: `https://github.com/NixOS/${input}/tree/${rev}`,
  });
  return LockChange.parse({
    input,
    kind: "updated",
    old: ref(oldRev, oldSeconds),
    new: ref(newRev, newSeconds),
    compareUrl: `https://github.com/NixOS/${input}/compare/${oldRev}...${newRev}`,
    commits: 412,
  });
}

export interface UpdatePrOptions {
  number?: number;
  state?: UpdatePr["state"];
  headSha?: string;
  createdAt?: string;
  mergedAt?: string | null;
  mergeCommitSha?: string | null;
  superseded?: boolean;
  lockChanges?: LockChange[];
  baseRef?: string;
}

/** A weekly flake.lock update PR as the GitHub Action opens it. */
export function buildUpdatePr(options: UpdatePrOptions = {}): UpdatePr {
  const number = options.number ?? 42;
  const createdAt = options.createdAt ?? hoursAgo(6);
  const merged = options.state === "merged";
  return UpdatePr.parse({
    number,
    title: "flake.lock: Update",
    url: `https://github.com/example/nixcfg/pull/${number}`,
    state: options.state ?? "open",
    headSha: options.headSha ?? sha(`update-pr-${number}`),
    headRef: "update_flake_lock_action",
    baseRef: options.baseRef ?? "main",
    labels: ["automated", "dependencies"],
    ciState: "success",
    mergeable: merged ? null : true,
    createdAt,
    updatedAt: options.mergedAt ?? createdAt,
    mergedAt: options.mergedAt ?? null,
    mergeCommitSha: options.mergeCommitSha ?? null,
    superseded: options.superseded ?? false,
    lockChanges: options.lockChanges ?? [],
  });
}

// ---------------------------------------------------------------------------
// Inputs

/** Inputs for one online host; override what the test is about. */
export function buildInputs(overrides: Partial<CompartmentInputs> = {}): CompartmentInputs {
  const report = overrides.report === undefined ? buildReport() : overrides.report;
  return {
    platform: report?.platform ?? "nixos",
    report,
    reportedAt: report === null ? null : minutesAgo(1),
    online: report !== null,
    lastSeenAt: report === null ? null : minutesAgo(0.5),
    commands: [],
    repo: buildRepoState(),
    updatePrs: [],
    expectedAgentVersion: NIXFLEET_VERSION,
    now: NOW,
    ...overrides,
  };
}
