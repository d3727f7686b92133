/**
 * The one protocol module: every message that crosses a boundary between the
 * worker, the agent and the dashboard is a zod schema here, parsed on arrival.
 * Types are inferred from the schemas, never written twice.
 */
import * as z from "zod";

/** Bumped when a message changes shape in a way an older peer cannot read. */
export const PROTOCOL_VERSION = 1;
/**
 * The oldest agent protocol the control plane still serves. An outdated agent
 * must always be able to poll, or it could never receive the pull-switch that
 * upgrades it.
 */
export const MIN_AGENT_PROTOCOL_VERSION = 1;

/** An agent's protocol version: any the control plane serves, so older agents keep working. */
export const AgentProtocolVersion = z
  .number()
  .int()
  .refine((v) => v >= MIN_AGENT_PROTOCOL_VERSION, `agent protocol is older than the oldest this control plane serves (${MIN_AGENT_PROTOCOL_VERSION}): upgrade the agent`)
  .refine((v) => v <= PROTOCOL_VERSION, `agent protocol is newer than this control plane's (${PROTOCOL_VERSION}): upgrade the control plane`);

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

/** Defined before the commands, whose deliveries name commits. */
export const Sha1 = z.string().regex(/^[0-9a-f]{40}$/, "not a full git sha");

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
  "build",
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
  /** A whole system built from scratch in the worst case (a mass rebuild after a nixpkgs update). */
  build: 60 * 60,
};

/**
 * Commands that change what the host runs, plus `build`: a build changes
 * nothing, but it is one at a time with them so it never runs during a switch
 * (and a switch never starts during a build: the control plane stops the build
 * first, see docs/fleet-build.md). `stop` and friends bypass the rule.
 */
export const EXCLUSIVE_COMMAND_KINDS: ReadonlySet<CommandKind> = new Set([
  "pull",
  "switch",
  "pull-switch",
  "test",
  "rollback",
  "restart-agent",
  "build",
]);

export const CommandId = z.string().regex(/^cmd_[A-Za-z0-9_-]{10,40}$/, "not a command id");

/** Kinds that act on an exact commit when one is given; `build` always needs one. */
export const COMMIT_KINDS: ReadonlySet<CommandKind> = new Set(["build", "pull", "pull-switch"]);

export const CreateCommandRequest = z
  .strictObject({
    kind: CommandKind,
    /** For `build` (required), `pull` and `pull-switch`: the exact commit of the followed branch to act on. */
    commit: Sha1.optional(),
  })
  .refine((r) => r.kind !== "build" || r.commit !== undefined, { message: "a build needs the commit to build", path: ["commit"] })
  .refine((r) => r.commit === undefined || COMMIT_KINDS.has(r.kind), { message: "only build, pull and pull-switch take a commit", path: ["commit"] });
export type CreateCommandRequest = z.infer<typeof CreateCommandRequest>;

/** What the agent receives for each command to run. */
export const CommandDelivery = z.object({
  id: CommandId,
  kind: CommandKind,
  /** For `stop`: the command to cancel. */
  target: CommandId.nullable().default(null),
  /**
   * For `build`: the commit to build (required). For `pull` / `pull-switch`:
   * when set, the exact commit to bring the clone to, which must be on
   * origin/<branch>; null means origin/<branch>'s head.
   */
  commit: Sha1.nullable().default(null),
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

export const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, "not a sha256 hex digest");

export const Report = z.object({
  protocol: AgentProtocolVersion,
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
  protocol: AgentProtocolVersion,
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
  /** The protocol the agent polled with, echoed: the answer is in the shape that agent reads. */
  protocol: z.number().int(),
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

/** One package whose versions or size differ between the running system and a build (`nix store diff-closures`). */
export const ClosureDiffEntry = z.object({
  /** The store path name without its version, e.g. `hello`, `nixos-system-web1`. */
  name: z.string().min(1).max(200),
  /** Versions only in the running system; `""` is a path without a version (nix prints `ε`). */
  old: z.array(z.string().max(100)).max(50),
  /** Versions only in the build. */
  new: z.array(z.string().max(100)).max(50),
  /** Bytes; 0 when nix did not print a size (it leaves out changes under 8 KiB). */
  sizeDelta: z.number().int(),
});
export type ClosureDiffEntry = z.infer<typeof ClosureDiffEntry>;

export const CLOSURE_DIFF_MAX_ENTRIES = 2000;

export const ClosureDiff = z.object({
  entries: z.array(ClosureDiffEntry).max(CLOSURE_DIFF_MAX_ENTRIES),
  /** Entries left out to stay under the bound. */
  omitted: z.number().int().nonnegative().default(0),
  /** Closure size of the build minus that of the running system, in bytes (`nix path-info -S`). */
  totalSizeDelta: z.number().int(),
});
export type ClosureDiff = z.infer<typeof ClosureDiff>;

/** What a `build` command built and how it differs from what runs. */
export const BuildResult = z.object({
  commit: Sha1,
  /** The built system's store path; null when the build failed. */
  storePath: z.string().max(500).nullable(),
  durationMs: z.number().int().nonnegative(),
  /** The running system the build was compared with, when there is one. */
  comparedWith: z.string().max(500).nullable().default(null),
  closureDiff: ClosureDiff.nullable(),
  /** Why there is no closure diff although the build succeeded. */
  closureDiffProblem: z.string().max(1000).optional(),
  /** A failed build: the last lines of nix's error output (the whole log is the command's output). */
  errorTail: z.string().max(4000).optional(),
});
export type BuildResult = z.infer<typeof BuildResult>;

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
  build: BuildResult.optional(),
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

/** Where in a request body a problem is: zod's issue path, for a form to show the message beside its field. */
export const ErrorIssue = z.object({ path: z.array(z.union([z.string(), z.number()])), message: z.string() });
export type ErrorIssue = z.infer<typeof ErrorIssue>;

export const ErrorBody = z.object({
  error: z.object({ code: z.string(), message: z.string(), issues: z.array(ErrorIssue).optional() }),
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
  /** The fleet's build of this head (null: none started). */
  fleetBuild: z.lazy(() => FleetBuildView).nullable().default(null),
  /** What the automation will do with it (null: never considered). */
  automation: z.lazy(() => UpdatePrAutomation).nullable().default(null),
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
  /** Left out of every rollout and automatic action while set (see HostHold). */
  hold: z.lazy(() => HostHold).nullable().default(null),
  /** The host's part in the running rollout, if any. */
  rollout: z.lazy(() => HostRolloutPart).nullable().default(null),
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
  /** A rollout was started or moved a step. */
  z.object({ type: z.literal("rollout"), rollout: z.lazy(() => RolloutView) }),
  /** An update PR's fleet build moved (a host started, finished or was cancelled; the verdict changed). */
  z.object({ type: z.literal("fleet-build"), build: z.lazy(() => FleetBuildView) }),
  /** The stored settings changed (now at `version`): a page showing them fetches them again. */
  z.object({ type: z.literal("settings"), version: z.number().int().nonnegative() }),
]);
export type DashboardEvent = z.infer<typeof DashboardEvent>;

// ---------------------------------------------------------------------------
// Rollouts and settings (rules in worker/rollouts/, defaults in worker/settings.ts)

export const WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;
export const Weekday = z.enum(WEEKDAYS);
export type Weekday = z.infer<typeof Weekday>;

export const ClockTime = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, "not a time of day as HH:MM (00:00–23:59)");

/** Asks the runtime's own time-zone database, so a name workerd and Node cannot resolve never gets stored. */
const isTimeZone = (name: string): boolean => {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: name });
    return true;
  } catch {
    return false;
  }
};
export const TimeZoneName = z
  .string()
  .min(1)
  .max(64)
  .refine(isTimeZone, { message: "not an IANA time zone (like Europe/Vienna or UTC)" });

/**
 * When hosts may be started by a rollout, in the window's own time zone (wall clock, so DST-correct).
 * `end` before `start` crosses midnight: the window opens on a listed day and closes the next day.
 * With `hosts` it applies to those hosts only; without, to every host that no window names.
 */
export const MaintenanceWindow = z
  .strictObject({
    days: z.array(Weekday).min(1, "a window needs at least one day"),
    start: ClockTime,
    end: ClockTime,
    timeZone: TimeZoneName,
    hosts: z.array(HostName).min(1).optional(),
  })
  .refine((w) => w.start !== w.end, { message: "a window's start and end are the same time", path: ["end"] });
export type MaintenanceWindow = z.infer<typeof MaintenanceWindow>;

/** A host left out of every rollout and automatic action until released (or until `until`). */
export const HostHold = z.object({
  reason: z.string().trim().min(1, "a hold needs a reason").max(500),
  until: z.iso.datetime({ offset: true }).nullable(),
  by: z.string().min(1).max(320),
  at: z.iso.datetime({ offset: true }),
});
export type HostHold = z.infer<typeof HostHold>;

export const ROLLOUT_HOST_STATES = [
  "waiting",
  "pulling",
  "switching",
  "verifying",
  "soaking",
  "done",
  "failed",
  "skipped",
  "cancelled",
  "pending",
] as const;
export const RolloutHostState = z.enum(ROLLOUT_HOST_STATES);
export type RolloutHostState = z.infer<typeof RolloutHostState>;

export const ROLLOUT_STATES = [
  "planned",
  "running",
  "soaking",
  "waiting-window",
  "succeeded",
  "failed",
  "cancelled",
] as const;
export const RolloutState = z.enum(ROLLOUT_STATES);
export type RolloutState = z.infer<typeof RolloutState>;

export const ROLLOUT_WAVE_STATES = ["waiting", "running", "soaking", "passed", "failed", "skipped", "cancelled"] as const;
export const RolloutWaveState = z.enum(ROLLOUT_WAVE_STATES);
export type RolloutWaveState = z.infer<typeof RolloutWaveState>;

export const DEPLOY_STRATEGIES = ["all", "online-only", "none"] as const;
export const DeployStrategy = z.enum(DEPLOY_STRATEGIES);
export type DeployStrategy = z.infer<typeof DeployStrategy>;

export const ROLLBACK_STRATEGIES = ["revert-pr", "revert-commit", "alert-only"] as const;
export const RollbackStrategy = z.enum(ROLLBACK_STRATEGIES);
export type RollbackStrategy = z.infer<typeof RollbackStrategy>;

export const MERGE_METHODS = ["merge", "squash", "rebase"] as const;
export const MergeMethod = z.enum(MERGE_METHODS);
export type MergeMethod = z.infer<typeof MergeMethod>;

export const LeftOutHost = z.object({ name: HostName, reason: z.string() });
export type LeftOutHost = z.infer<typeof LeftOutHost>;

export const RolloutHostView = z.object({
  name: HostName,
  state: RolloutHostState,
  reason: z.string().optional(),
  commandId: CommandId.optional(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
});
export type RolloutHostView = z.infer<typeof RolloutHostView>;

export const RolloutView = z.object({
  id: z.string().min(1),
  state: RolloutState,
  commit: Sha1,
  pr: z.number().int().positive().optional(),
  startedBy: z.string(),
  /** Started by the automation rather than a person (windows always apply then). */
  automatic: z.boolean(),
  startedAt: z.string(),
  /** Set once nothing the rollout started is still running (a failed rollout waits for running commands). */
  finishedAt: z.string().optional(),
  /** Hosts that passed their gate; `total` counts every host in the waves. */
  done: z.number().int().nonnegative(),
  total: z.number().int().nonnegative(),
  /** Hosts whose command waits in the offline queue: "succeeded with N pending". */
  pending: z.number().int().nonnegative(),
  /** 1-based index of the wave being deployed or soaked. */
  currentWave: z.number().int().nonnegative().optional(),
  /** "waiting for hsb0's window, Sat 02:00 Europe/Vienna". */
  waitingFor: z.string().optional(),
  waves: z.array(
    z.object({
      index: z.number().int().positive(),
      canary: z.boolean(),
      state: RolloutWaveState,
      soakUntil: z.string().optional(),
      hosts: z.array(RolloutHostView),
    }),
  ),
  leftOut: z.array(LeftOutHost),
  failure: z.object({ host: HostName, reason: z.string(), commandId: CommandId.nullable() }).optional(),
  revert: z
    .object({
      kind: RollbackStrategy.exclude(["alert-only"]),
      url: z.string().nullable(),
      state: z.enum(["requested", "opened", "failed"]),
      error: z.string().optional(),
    })
    .optional(),
  /** Why the rollout stopped early: "cancelled by alice", "superseded by ro_…". */
  stoppedBecause: z.string().optional(),
});
export type RolloutView = z.infer<typeof RolloutView>;

/**
 * The fleet's settings. Every field has its default, so `Settings.parse({})` is the default settings.
 * Strict at every level: `PUT /api/settings` refuses a key it does not know instead of dropping it.
 */
export const Settings = z.strictObject({
  /** Revision of the stored settings; 0 for the defaults from the `wrangler.toml` vars. */
  version: z.number().int().nonnegative().default(0),
  /** Spec 002's switch for the whole update-PR feature: off = no fleet builds, no automation, no update-PR notifications. */
  flakeUpdates: z.strictObject({ enabled: z.boolean().default(true) }).prefault({}),
  automation: z
    .strictObject({
      enabled: z.boolean().default(false),
      /** Fractions allowed: tests and impatient people use seconds. */
      mergeDelayMinutes: z.number().nonnegative().max(7 * 24 * 60).default(60),
      mergeMethod: MergeMethod.default("merge"),
      requireCi: z.boolean().default(true),
      requireFleetBuild: z.boolean().default(false),
      deployStrategy: DeployStrategy.default("all"),
    })
    .prefault({}),
  rollout: z
    .strictObject({
      /** Canary hosts picked by priority when no host sets `canary = true`; 0 = no canary wave then. */
      canary: z.number().int().nonnegative().default(1),
      /** Hosts per wave after the canary; null = a quarter of the rollout's hosts, at least 1. */
      waveSize: z.number().int().positive().nullable().default(null),
      soakSeconds: z.number().int().nonnegative().default(0),
      canarySoakSeconds: z.number().int().nonnegative().default(300),
    })
    .prefault({}),
  rollback: z
    .strictObject({
      strategy: RollbackStrategy.default("revert-pr"),
      /** Also send `rollback` to every host that already switched to the failed commit. */
      rollbackHosts: z.boolean().default(false),
    })
    .prefault({}),
  /** Build before deploy (docs/fleet-build.md). */
  fleetBuild: z
    .strictObject({
      /** Queue a `build` of an update PR's head on every host in rollout scope when it opens or its head moves. */
      buildOnUpdatePr: z.boolean().default(true),
      /** A host offline when the build starts keeps the verdict pending (true) or is listed as not built (false). */
      offlineHostsBlock: z.boolean().default(false),
      /** Held and `autoUpdate = false` hosts are built either way; true counts them toward the verdict. */
      countExcludedHosts: z.boolean().default(false),
    })
    .prefault({}),
  windows: z.array(MaintenanceWindow).default([]),
  notifications: z.array(z.lazy(() => NotificationChannel)).max(20).default([]),
});
export type Settings = z.infer<typeof Settings>;

/**
 * `PUT /api/settings`: the whole object, with the `version` the client read (a stale one is refused with
 * 409). A channel sent without an `id` is new: the Worker assigns it one and answers with it.
 */
export const SettingsUpdate = Settings.extend({
  version: z.number().int().nonnegative(),
  notifications: z.array(z.lazy(() => SubmittedChannel)).max(20).default([]),
});
export type SettingsUpdate = z.input<typeof SettingsUpdate>;
/** A `PUT /api/settings` body once parsed. */
export type SubmittedSettings = z.output<typeof SettingsUpdate>;

/** `GET` and `PUT /api/settings` answer: the settings in force, secrets replaced by `SECRET_PLACEHOLDER`. */
export const SettingsResponse = z.object({ settings: Settings });
export type SettingsResponse = z.infer<typeof SettingsResponse>;

// ---------------------------------------------------------------------------
// Notifications (worker/notifications/, delivered by the Notifier object)

export const NOTIFICATION_EVENTS = [
  "update-pr-opened",
  "ci-failed",
  "merge-scheduled",
  "merged",
  "rollout-started",
  "rollout-succeeded",
  "rollout-failed",
  "revert-opened",
  "host-offline",
  "agent-outdated",
  /** GitHub refused an automatic merge (a conflict, a moved head): not retried. */
  "merge-failed",
] as const;
export const NotificationEventName = z.enum(NOTIFICATION_EVENTS);
export type NotificationEventName = z.infer<typeof NotificationEventName>;

/**
 * What `GET /api/settings` shows in place of a stored secret (a channel's URL,
 * the webhook's signing secret, an ntfy token). A `PUT` that sends it back for
 * a channel with the same `id` keeps the stored value.
 */
export const SECRET_PLACEHOLDER = "********";

const HttpUrl = z.url({ protocol: /^https?$/, error: "not an http(s) URL" }).max(2000);
const SecretOrKept = <T extends z.ZodType<string>>(schema: T) => z.union([z.literal(SECRET_PLACEHOLDER), schema]);
/** A channel's stable id: Send test, the delivery log and kept secrets refer to it. */
export const ChannelId = z.string().regex(/^ch_[A-Za-z0-9_-]{4,40}$/, "not a channel id (ch_…)");
/** The channel kinds, with `id` as given (required where channels are stored, optional where they are submitted). */
const channelSchema = <Id extends z.ZodType<string | undefined>>(id: Id) => {
  const common = {
    id,
    name: z.string().trim().max(80).optional(),
    /** The events this channel gets; absent = every event. */
    events: z.array(NotificationEventName).min(1).optional(),
    /** Shown in GET answers instead of the URL itself: scheme, host and the URL's last 4 characters. */
    urlHint: z.string().max(200).optional(),
  };
  return z.discriminatedUnion("kind", [
    z.strictObject({
      kind: z.literal("webhook"),
      ...common,
      url: SecretOrKept(HttpUrl),
      /** HMAC-SHA256 key for `X-NixFleet-Signature-256: sha256=<hex>` of the raw body. */
      secret: SecretOrKept(z.string().min(16, "a signing secret needs at least 16 characters").max(200)).optional(),
    }),
    z.strictObject({ kind: z.literal("slack"), ...common, url: SecretOrKept(HttpUrl) }),
    z.strictObject({ kind: z.literal("discord"), ...common, url: SecretOrKept(HttpUrl) }),
    z.strictObject({
      kind: z.literal("ntfy"),
      ...common,
      /** The topic URL, e.g. https://ntfy.sh/my-fleet. */
      url: SecretOrKept(HttpUrl),
      token: SecretOrKept(z.string().min(1).max(200)).optional(),
    }),
  ]);
};
export const NotificationChannel = channelSchema(ChannelId);
/** A channel in `PUT /api/settings`: without an `id` it is a new channel and the Worker assigns one. */
export const SubmittedChannel = channelSchema(ChannelId.optional());
export type SubmittedChannel = z.infer<typeof SubmittedChannel>;
export type NotificationChannel = z.infer<typeof NotificationChannel>;

/** One thing that happened, as every channel is told about it (the generic webhook's body is exactly this). */
export const NotificationEvent = z.object({
  /** Idempotency key: the same fact published twice is delivered once ("ci-failed:12:<sha>"). */
  id: z.string().min(1).max(200),
  event: NotificationEventName,
  at: z.string(),
  /** One line: "CI failed on update PR #12". */
  title: z.string().max(300),
  /** The rest, plain text, a few lines at most. */
  text: z.string().max(4000),
  /** Where to look: the PR, the rollout, the host's page. */
  url: z.string().nullable(),
  pr: z.number().int().positive().optional(),
  rolloutId: z.string().optional(),
  host: HostName.optional(),
  commit: Sha1.optional(),
  details: z.record(z.string(), z.unknown()).default({}),
});
export type NotificationEvent = z.infer<typeof NotificationEvent>;

export const NotificationDelivery = z.object({
  id: z.string(),
  channelId: z.string(),
  channelKind: z.enum(["webhook", "slack", "discord", "ntfy"]),
  event: NotificationEventName,
  eventId: z.string(),
  title: z.string(),
  /** `test` deliveries come from Send test. */
  test: z.boolean(),
  state: z.enum(["pending", "retrying", "delivered", "failed"]),
  attempts: z.number().int().nonnegative(),
  /** HTTP status of the last attempt, null when it never got one. */
  lastStatus: z.number().int().nullable(),
  lastError: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
  nextAttemptAt: z.string().nullable(),
});
export type NotificationDelivery = z.infer<typeof NotificationDelivery>;

// ---------------------------------------------------------------------------
// Build before deploy (docs/fleet-build.md): an update PR's head built on every host

export const FLEET_BUILD_HOST_STATES = [
  /** Busy with another command: its build is queued the moment that ends. */
  "waiting",
  "queued",
  "building",
  "built",
  "failed",
  /** Offline when the build started: not built. */
  "offline",
  /** Stopped by a newer head, a switch, or a person. */
  "cancelled",
] as const;
export const FleetBuildHostState = z.enum(FLEET_BUILD_HOST_STATES);
export type FleetBuildHostState = z.infer<typeof FleetBuildHostState>;

export const FleetBuildHostView = z.object({
  name: HostName,
  state: FleetBuildHostState,
  /** Counts toward the verdict (held and `autoUpdate = false` hosts do not, unless configured). */
  counted: z.boolean(),
  /** Why not counted, why offline or cancelled, or a failed build's first error line. */
  reason: z.string().optional(),
  commandId: CommandId.optional(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  durationMs: z.number().int().nonnegative().optional(),
  storePath: z.string().nullable().optional(),
  closureDiff: ClosureDiff.nullable().optional(),
  closureDiffProblem: z.string().optional(),
  errorTail: z.string().optional(),
});
export type FleetBuildHostView = z.infer<typeof FleetBuildHostView>;

export const FleetBuildVerdict = z.enum(["pending", "success", "failure"]);
export type FleetBuildVerdict = z.infer<typeof FleetBuildVerdict>;

/** The fleet's build of one update PR head; also posted as the commit status `nixfleet/fleet-build`. */
export const FleetBuildView = z.object({
  id: z.string(),
  pr: z.number().int().positive(),
  headSha: Sha1,
  verdict: FleetBuildVerdict,
  /** Counted hosts built, and counted hosts in all. */
  built: z.number().int().nonnegative(),
  counted: z.number().int().nonnegative(),
  /** The commit status's description: "8/9 hosts built, hsb1 failed: …". */
  description: z.string(),
  startedBy: z.string(),
  startedAt: z.string(),
  finishedAt: z.string().optional(),
  /** A newer head replaced this build. */
  superseded: z.boolean().default(false),
  hosts: z.array(FleetBuildHostView),
  /** The last attempt to post the commit status to GitHub. */
  githubStatus: z
    .object({ state: z.enum(["pending", "success", "failure"]), postedAt: z.string().nullable(), error: z.string().nullable() })
    .nullable()
    .default(null),
});
export type FleetBuildView = z.infer<typeof FleetBuildView>;

// ---------------------------------------------------------------------------
// Auto-merge (worker/automation/, scheduled by the Automation object)

export const AUTOMATION_STATES = [
  /** Automation off, or the feature off: nothing will happen by itself. */
  "off",
  "waiting-ci",
  "waiting-fleet-build",
  "ci-failed",
  "fleet-build-failed",
  /** CI green: merges at `mergeAt`. */
  "scheduled",
  "waiting-window",
  "merging",
  "merged",
  /** Merged and its rollout started (`rolloutId`). */
  "deployed",
  /** A person chose Skip this PR (for this head). */
  "skipped",
  /** GitHub refused the merge, or the PR changed under the alarm: `reason` says. */
  "failed",
] as const;
export const AutomationState = z.enum(AUTOMATION_STATES);
export type AutomationState = z.infer<typeof AutomationState>;

/** What the automation will do with an update PR, for the banner's timeline. */
export const UpdatePrAutomation = z.object({
  state: AutomationState,
  headSha: Sha1,
  ciPassedAt: z.string().nullable(),
  mergeAt: z.string().nullable(),
  /** Plain words: why it waits, why it will not merge, what moved the schedule. */
  reason: z.string(),
  mergeCommitSha: Sha1.nullable(),
  rolloutId: z.string().nullable(),
  /** Newest last: "CI passed", "merge scheduled for 14:05", "rescheduled: new commit 1a2b3c4", "skipped by alice". */
  timeline: z.array(z.object({ at: z.string(), text: z.string() })).max(50),
});
export type UpdatePrAutomation = z.infer<typeof UpdatePrAutomation>;

// ---------------------------------------------------------------------------
// The rollouts API (worker/routes/rollouts.ts); the dashboard uses exactly these.

/** A proposed rollout, before anything is sent: what the confirmation dialog shows. */
export const RolloutPlanView = z.object({
  commit: Sha1,
  pr: z.number().int().positive().nullable(),
  waves: z.array(z.object({ index: z.number().int().positive(), canary: z.boolean(), hosts: z.array(HostName) })),
  leftOut: z.array(LeftOutHost),
  /** For a plan with `pr`: the fleet build of the PR's head (null: none), whose failed hosts are left out. */
  fleetBuild: FleetBuildView.nullable().default(null),
});
export type RolloutPlanView = z.infer<typeof RolloutPlanView>;

/** `POST /api/rollouts/plan`: what a deploy would do now (nothing is sent). */
export const PlanRolloutRequest = z.strictObject({
  /** Plan the rollout an update PR's merge would start. */
  pr: z.number().int().positive().optional(),
  /** Default: the followed branch's head. */
  commit: Sha1.optional(),
  /** Only these hosts (a manual deploy); default: the plan's own scope. */
  hosts: z.array(HostName).min(1).max(1000).optional(),
  /** With `pr`: keep hosts whose build of the PR head failed (they are left out by default). */
  includeFailedBuilds: z.boolean().optional(),
});
export type PlanRolloutRequest = z.infer<typeof PlanRolloutRequest>;

/** `POST /api/rollouts`: Deploy main (or a given commit of it). */
export const StartRolloutRequest = z.strictObject({
  commit: Sha1.optional(),
  hosts: z.array(HostName).min(1).max(1000).optional(),
  /** A manual deploy confirmed to start hosts outside their maintenance windows. */
  ignoreWindows: z.boolean().default(false),
});
export type StartRolloutRequest = z.infer<typeof StartRolloutRequest>;

/** `POST /api/update-prs/:number/merge-and-deploy`. */
export const MergeAndDeployRequest = z.strictObject({
  method: MergeMethod.optional(),
  /** The head the person looked at: GitHub refuses the merge if the PR moved since. */
  sha: Sha1.optional(),
  /** Merge although CI is not green: a typed reason, kept in the audit log. */
  override: z.strictObject({ reason: z.string().trim().min(3, "say why CI is overridden").max(500) }).optional(),
  ignoreWindows: z.boolean().default(false),
  /** Deploy to hosts whose build of the PR head failed too (docs/fleet-build.md); left out by default. */
  includeFailedBuilds: z.boolean().default(false),
});
export type MergeAndDeployRequest = z.infer<typeof MergeAndDeployRequest>;

/** `PUT /api/hosts/:name/hold`. */
export const SetHoldRequest = z.strictObject({
  reason: z.string().trim().min(1, "a hold needs a reason").max(500),
  until: z.iso.datetime({ offset: true }).nullable().optional(),
});
export type SetHoldRequest = z.infer<typeof SetHoldRequest>;

/** A host's part in the running rollout, on its row of the fleet table. */
export const HostRolloutPart = z.object({ id: z.string(), state: RolloutHostState, wave: z.number().int().positive() });
export type HostRolloutPart = z.infer<typeof HostRolloutPart>;
