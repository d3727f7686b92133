/**
 * The one protocol module: every message that crosses a boundary between the
 * worker, the agent and the dashboard is a zod schema here, parsed on arrival.
 * Types are inferred from the schemas, never written twice.
 */
import * as z from "zod";

/** Bumped when a message changes shape in a way an older peer cannot read. */
export const PROTOCOL_VERSION = 1;

// ---------------------------------------------------------------------------
// Hosts

export const PLATFORMS = ["nixos", "darwin", "home-manager"] as const;
export const Platform = z.enum(PLATFORMS);
export type Platform = z.infer<typeof Platform>;

/** DNS-label-like, because host names end up in URLs, unit names and flake attributes. */
export const HostName = z
  .string()
  .min(1, "host name is empty")
  .max(63, "host name is longer than 63 characters")
  .regex(
    /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/,
    "host name may contain only lowercase letters, digits and inner hyphens (like a DNS label)",
  );

/** A flake output attribute such as `hsb0`, `"my.host"` or Home Manager's `alice@laptop`; no spaces, no `#`. */
export const FlakeAttr = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9_.'"@-]+$/, "flake attribute may not contain spaces, '#' or shell characters");

export const CreateHostRequest = z.strictObject({
  name: HostName,
  platform: Platform,
  flakeAttr: FlakeAttr.optional(),
});
export type CreateHostRequest = z.infer<typeof CreateHostRequest>;

// ---------------------------------------------------------------------------
// Commands

/** Every command kind, in one place. Nothing else may list them. */
export const COMMAND_KINDS = [
  "pull",
  "switch",
  "pull-switch",
  "test",
  "rollback",
  "stop",
  "restart-agent",
  "refresh",
] as const;
export const CommandKind = z.enum(COMMAND_KINDS);
export type CommandKind = z.infer<typeof CommandKind>;

export const COMMAND_STATES = [
  "queued",
  "delivered",
  "running",
  "succeeded",
  "failed",
  "cancelled",
  "timed-out",
  "lost",
] as const;
export const CommandState = z.enum(COMMAND_STATES);
export type CommandState = z.infer<typeof CommandState>;

export const FINAL_COMMAND_STATES: ReadonlySet<CommandState> = new Set([
  "succeeded",
  "failed",
  "cancelled",
  "timed-out",
  "lost",
]);
export const isFinalCommandState = (state: CommandState): boolean => FINAL_COMMAND_STATES.has(state);

/**
 * How long a command may run once delivered before the worker declares it
 * `timed-out`. A switch builds a whole system, so it gets the most.
 */
export const COMMAND_DEADLINE_SECONDS: Record<CommandKind, number> = {
  pull: 5 * 60,
  switch: 30 * 60,
  "pull-switch": 35 * 60,
  test: 15 * 60,
  rollback: 15 * 60,
  stop: 60,
  "restart-agent": 5 * 60,
  refresh: 2 * 60,
};

/** Commands that change what the host runs; `stop` and friends bypass the one-at-a-time rule. */
export const EXCLUSIVE_COMMAND_KINDS: ReadonlySet<CommandKind> = new Set([
  "pull",
  "switch",
  "pull-switch",
  "test",
  "rollback",
  "restart-agent",
]);

export const CommandId = z.string().regex(/^cmd_[A-Za-z0-9_-]{10,40}$/, "not a command id");

export const CreateCommandRequest = z.strictObject({
  kind: CommandKind,
});
export type CreateCommandRequest = z.infer<typeof CreateCommandRequest>;

/** What the agent receives for each command to run. */
export const CommandDelivery = z.object({
  id: CommandId,
  kind: CommandKind,
  /** For `stop`: the command to cancel. */
  target: CommandId.nullable().default(null),
  createdAt: z.string(),
  deadlineAt: z.string(),
});
export type CommandDelivery = z.infer<typeof CommandDelivery>;

/** A command as the admin API and the dashboard see it. */
export const CommandView = z.object({
  id: CommandId,
  host: HostName,
  kind: CommandKind,
  state: CommandState,
  target: CommandId.nullable(),
  actor: z.string(),
  createdAt: z.string(),
  deliveredAt: z.string().nullable(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  deadlineAt: z.string(),
  expiresAt: z.string(),
  exitCode: z.number().int().nullable(),
  error: z.string().nullable(),
  result: z.lazy(() => CommandResult).nullable(),
});
export type CommandView = z.infer<typeof CommandView>;

// ---------------------------------------------------------------------------
// Reports: the host's state as the agent sees it

export const TestResult = z.object({
  name: z.string().min(1).max(200),
  passed: z.boolean(),
  exitCode: z.number().int().nullable(),
  durationMs: z.number().nonnegative(),
  /** The last lines of the test's output, for the tooltip and the host page. */
  output: z.string().max(4000).default(""),
});
export type TestResult = z.infer<typeof TestResult>;

export const TestRun = z.object({
  /** The system store path the tests ran against: a later switch makes them stale. */
  system: z.string().nullable(),
  finishedAt: z.string(),
  results: z.array(TestResult).max(200),
});
export type TestRun = z.infer<typeof TestRun>;

/**
 * A value the agent could not read says why instead of guessing.
 * `{ value: null, reason: "git not found" }`.
 */
const known = <T extends z.ZodTypeAny>(value: T) =>
  z.object({ value: value.nullable(), reason: z.string().max(500).optional() });

export const Sha1 = z.string().regex(/^[0-9a-f]{40}$/, "not a full git sha");
export const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, "not a sha256 hex digest");

export const Report = z.object({
  protocol: z.literal(PROTOCOL_VERSION),
  agentVersion: z.string().min(1).max(64),
  platform: Platform,
  hostname: z.string().max(253),
  /** e.g. "NixOS 25.05 (Warbler)", "macOS 15.1". */
  os: known(z.string().max(200)),
  /** nixpkgs version string of the running system, e.g. "25.05.20250101.abcdef0". */
  nixpkgsVersion: known(z.string().max(100)),
  nixVersion: known(z.string().max(100)),
  repo: z.object({
    commit: known(Sha1),
    branch: known(z.string().max(255)),
    /** Local changes in the agent's clone (the agent resets them on pull). */
    dirty: z.boolean().nullable().default(null),
  }),
  lock: z.object({
    /** sha256 of the flake.lock bytes at the clone's HEAD (see common/lock-diff.ts). */
    hash: known(Sha256Hex),
    /** Input path → lastModified (unix seconds), for the lock-age rule. */
    lastModified: z.record(z.string(), z.number().int().nonnegative()).default({}),
  }),
  system: z.object({
    /** What runs now (/run/current-system or the profile the agent reads). */
    current: known(z.string().max(500)),
    /** What the clone's HEAD would build, when the agent has evaluated it. */
    desired: known(z.string().max(500)).optional(),
    /** Commit the running system was built from, when the agent switched it. */
    builtFromCommit: Sha1.nullable().default(null),
  }),
  tests: z.object({
    /** Whether the host has any tests configured. */
    configured: z.boolean(),
    autoRunAfterSwitch: z.boolean().default(false),
    last: TestRun.nullable(),
  }),
  /** Seconds since the host booted. */
  uptimeSeconds: z.number().nonnegative().nullable(),
  /** Seconds since this agent process started: a restart shows as a drop. */
  agentUptimeSeconds: z.number().nonnegative(),
  /** Rollout settings from the host's Nix configuration (spec 002). */
  rollout: z
    .object({
      autoUpdate: z.boolean().default(true),
      priority: z.number().int().default(100),
      canary: z.boolean().default(false),
    })
    .default({ autoUpdate: true, priority: 100, canary: false }),
});
export type Report = z.infer<typeof Report>;

// ---------------------------------------------------------------------------
// Agent ⇄ worker

/** `POST /api/agent/poll`: one request per cycle, with the report only when it changed. */
export const PollRequest = z.object({
  protocol: z.literal(PROTOCOL_VERSION),
  /** Identifies this agent process; a new one after a restart tells the worker what was lost. */
  agentSession: z.string().min(8).max(64),
  /** Commands the agent holds and has not finished (received or running, incl. detached ones). */
  activeCommands: z.array(CommandId).max(20).default([]),
  /** Command ids received since the last poll: the delivery acknowledgement. */
  acks: z.array(CommandId).max(50).default([]),
  report: Report.optional(),
});
export type PollRequest = z.infer<typeof PollRequest>;

export const PollResponse = z.object({
  protocol: z.literal(PROTOCOL_VERSION),
  commands: z.array(CommandDelivery),
  /** Set when the worker has no report for this agent session yet. */
  wantReport: z.boolean().default(false),
  /** The server's hold time, so the agent can tell a cut poll from a normal one. */
  pollTimeoutSeconds: z.number().int().nonnegative(),
});
export type PollResponse = z.infer<typeof PollResponse>;

export const OutputStream = z.enum(["stdout", "stderr", "system"]);
export type OutputStream = z.infer<typeof OutputStream>;

export const OutputChunk = z.object({
  /** Per-command sequence number, so a retried post is not stored twice. */
  seq: z.number().int().nonnegative(),
  stream: OutputStream,
  data: z.string().max(64 * 1024),
});
export type OutputChunk = z.infer<typeof OutputChunk>;

/**
 * What a finished command proved. Exit code 0 is not proof: the agent checks
 * the outcome (the new commit, the new system link, each test) and says so here.
 */
export const CommandResult = z.object({
  commitBefore: Sha1.nullable().optional(),
  commitAfter: Sha1.nullable().optional(),
  systemBefore: z.string().nullable().optional(),
  systemAfter: z.string().nullable().optional(),
  tests: TestRun.optional(),
  /** For `stop`: whether something was actually killed. */
  stopped: z.boolean().optional(),
});
export type CommandResult = z.infer<typeof CommandResult>;

/** `POST /api/agent/commands/:id/events`, `type`-tagged. */
export const CommandEvent = z.discriminatedUnion("type", [
  z.object({ type: z.literal("started"), at: z.string() }),
  z.object({ type: z.literal("output"), chunks: z.array(OutputChunk).min(1).max(200) }),
  z.object({
    type: z.literal("finished"),
    at: z.string(),
    outcome: z.enum(["succeeded", "failed", "cancelled"]),
    exitCode: z.number().int().nullable(),
    error: z.string().max(4000).nullable().default(null),
    result: CommandResult.default({}),
  }),
]);
export type CommandEvent = z.infer<typeof CommandEvent>;

// ---------------------------------------------------------------------------
// Roles (from the Cloudflare Access identity; see worker/roles.ts)

/** Each role may do everything the ones before it may. */
export const ROLES = ["viewer", "operator", "admin"] as const;
export const Role = z.enum(ROLES);
export type Role = z.infer<typeof Role>;

export const hasRole = (role: Role, needed: Role): boolean => ROLES.indexOf(role) >= ROLES.indexOf(needed);

/** `GET /api/me`: who the dashboard acts as, and with which role. */
export const MeResponse = z.object({ actor: z.string(), role: Role });
export type MeResponse = z.infer<typeof MeResponse>;

// ---------------------------------------------------------------------------
// Errors

export const ErrorBody = z.object({
  error: z.object({ code: z.string(), message: z.string() }),
});
export type ErrorBody = z.infer<typeof ErrorBody>;

// ---------------------------------------------------------------------------
// flake.lock changes (computed by common/lock-diff.ts)

export const LockedRef = z.object({
  /** github, gitlab, sourcehut, git, tarball, file, path, indirect, or "unrecognised". */
  type: z.string(),
  rev: z.string().nullable(),
  narHash: z.string().nullable(),
  /** ISO date of lastModified, when the lock has it. */
  lastModified: z.string().nullable(),
  /** Where the source lives, e.g. https://github.com/NixOS/nixpkgs/tree/<rev>. */
  url: z.string().nullable(),
  /** The raw locked attrs when the shape was not recognised. */
  raw: z.unknown().optional(),
});
export type LockedRef = z.infer<typeof LockedRef>;

export const LockChange = z.object({
  /** Input path from the root as `nix flake update` prints it: `nixpkgs`, `home-manager/nixpkgs`. */
  input: z.string(),
  kind: z.enum(["added", "removed", "updated"]),
  old: LockedRef.nullable(),
  new: LockedRef.nullable(),
  /** github/gitlab compare page between the two revs. */
  compareUrl: z.string().nullable().default(null),
  /** Commits between old and new, when the GitHub API was asked. */
  commits: z.number().int().nonnegative().nullable().default(null),
});
export type LockChange = z.infer<typeof LockChange>;

// ---------------------------------------------------------------------------
// Repository state and update PRs (the fleet's target)

export const CommitInfo = z.object({
  sha: Sha1,
  message: z.string(),
  author: z.string(),
  committedAt: z.string(),
});
export type CommitInfo = z.infer<typeof CommitInfo>;

export const RepoState = z.object({
  repository: z.string(),
  branch: z.string(),
  head: CommitInfo.nullable(),
  lock: z.object({
    /** sha256 hex of the flake.lock bytes at head: the same digest the agent reports. */
    hash: Sha256Hex.nullable(),
    /** Input path → lastModified (unix seconds). */
    lastModified: z.record(z.string(), z.number().int()).default({}),
  }),
  updatedAt: z.string(),
  source: z.enum(["webhook", "schedule", "api"]),
});
export type RepoState = z.infer<typeof RepoState>;

export const CiState = z.enum(["pending", "success", "failure", "unknown"]);
export type CiState = z.infer<typeof CiState>;

export const UpdatePr = z.object({
  number: z.number().int().positive(),
  title: z.string(),
  url: z.string(),
  state: z.enum(["open", "closed", "merged"]),
  headSha: Sha1,
  headRef: z.string(),
  baseRef: z.string(),
  labels: z.array(z.string()),
  ciState: CiState,
  mergeable: z.boolean().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
  mergedAt: z.string().nullable(),
  mergeCommitSha: Sha1.nullable(),
  /** An older open update PR while a newer one exists: shown, not offered. */
  superseded: z.boolean(),
  lockChanges: z.array(LockChange),
  /** `pending` while the control plane reads the PR's flake.lock; `failed` says why in `lockDiffProblem`. */
  lockDiff: z.enum(["pending", "ready", "failed"]).default("ready"),
  lockDiffProblem: z.string().nullable().default(null),
});
export type UpdatePr = z.infer<typeof UpdatePr>;

// ---------------------------------------------------------------------------
// Compartments (computed by common/compartments.ts)

export const COMPARTMENT_NAMES = ["agent", "git", "lock", "system", "tests"] as const;
export const CompartmentName = z.enum(COMPARTMENT_NAMES);
export type CompartmentName = z.infer<typeof CompartmentName>;

export const CompartmentState = z.enum(["green", "yellow", "red", "blue", "gray"]);
export type CompartmentState = z.infer<typeof CompartmentState>;

/** The action a compartment suggests: a command kind a person can click, or none. */
export const SuggestedAction = CommandKind.extract([
  "pull",
  "switch",
  "pull-switch",
  "test",
  "rollback",
  "restart-agent",
]).nullable();
export type SuggestedAction = z.infer<typeof SuggestedAction>;

export const Compartment = z.object({
  state: CompartmentState,
  /** One line a person understands: "behind main by 3 commits: abc1234 → def5678". */
  reason: z.string(),
  action: SuggestedAction,
  /** Since when this state holds, when known (ISO). */
  since: z.string().nullable(),
  /** The host is offline: this is its last known colour. */
  stale: z.boolean().default(false),
  /** A command whose output explains the state (a failed switch's log). */
  commandId: CommandId.nullable().default(null),
});
export type Compartment = z.infer<typeof Compartment>;

export const Compartments = z.object({
  agent: Compartment,
  git: Compartment,
  lock: Compartment,
  system: Compartment,
  tests: Compartment,
});
export type Compartments = z.infer<typeof Compartments>;

export const HostView = z.object({
  id: z.string(),
  name: HostName,
  platform: Platform,
  flakeAttr: z.string(),
  createdAt: z.string(),
  online: z.boolean(),
  lastSeenAt: z.string().nullable(),
  report: Report.nullable(),
  reportedAt: z.string().nullable(),
  activeCommand: CommandView.nullable(),
  compartments: Compartments,
});
export type HostView = z.infer<typeof HostView>;

// ---------------------------------------------------------------------------
// Dashboard live events (coordinator → browser over WebSocket)

export const StoredOutputChunk = OutputChunk.extend({ at: z.string() });
export type StoredOutputChunk = z.infer<typeof StoredOutputChunk>;

export const DashboardEvent = z.discriminatedUnion("type", [
  z.object({ type: z.literal("hello"), protocol: z.number().int() }),
  z.object({ type: z.literal("pong") }),
  /** Something about the host changed (presence, report): fetch it again. */
  z.object({
    type: z.literal("host"),
    host: HostName,
    online: z.boolean().optional(),
    reportedAt: z.string().optional(),
    removed: z.boolean().optional(),
  }),
  z.object({ type: z.literal("command"), command: CommandView }),
  z.object({ type: z.literal("output"), host: HostName, commandId: CommandId, chunks: z.array(StoredOutputChunk) }),
  /** The repository state or the update PRs changed: every host's Git/Lock may have. */
  z.object({ type: z.literal("repo") }),
]);
export type DashboardEvent = z.infer<typeof DashboardEvent>;
