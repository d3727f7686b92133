import * as z from "zod";
import { ClosureDiff } from "./closure-diff.ts";
import { CommandDelivery, CommandId } from "./commands.ts";
import { HostName, Sha1 } from "./hosts.ts";
import { HostRollback, Report, TestRun } from "./reports.ts";
import { AgentProtocolVersion } from "./version.ts";

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
  /** Main's head as the control plane last heard it (push webhook or repository sync): the agent evaluates its desired system there. */
  main: z.object({ branch: z.string().min(1).max(255), commit: Sha1 }).nullable().optional(),
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

/** What a `build` command built and how it differs from what runs. */
export const BuildResult = z.object({
  commit: Sha1,
  /** The built commit's git tree, when the agent says it: System matches a failed build to main by tree. */
  tree: Sha1.nullable().optional(),
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

/** One host's system as a builder built it: the store path it uploaded, or why there is none. */
export const HostBuild = z.object({
  /** In the fleet cache and named in the signed manifest; null when it failed to build or upload. */
  storePath: z.string().max(500).nullable(),
  durationMs: z.number().int().nonnegative(),
  /** Why the host has no store path (the build, the upload or the manifest failed). */
  error: z.string().max(4000).optional(),
  /** A failed build: the last lines of nix's error output. */
  errorTail: z.string().max(4000).optional(),
});
export type HostBuild = z.infer<typeof HostBuild>;

/** What a `gc` deleted (or, in a dry run, would delete) and what the store collection freed. */
export const GcResult = z.object({
  dryRun: z.boolean(),
  keepGenerations: z.number().int().nonnegative(),
  keepDays: z.number().nonnegative(),
  /** Generation numbers deleted (a dry run: that would be deleted). */
  deletedGenerations: z.array(z.number().int().nonnegative()).max(1000),
  keptGenerations: z.array(z.number().int().nonnegative()).max(1000),
  /** Store paths deleted (a dry run: dead now, which `nix-store --gc` would delete). */
  storePaths: z.number().int().nonnegative().nullable(),
  /** Bytes freed as nix reported them; null in a dry run or when nix said nothing parsable. */
  bytesFreed: z.number().int().nonnegative().nullable(),
  /** Whether the boot menu was rewritten (NixOS), or why not. */
  bootMenu: z.enum(["rewritten", "not-applicable", "unchanged"]),
});
export type GcResult = z.infer<typeof GcResult>;

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
  /** A builder's `build`: each host's system it was asked for, by host name. */
  hostBuilds: z.record(HostName, HostBuild).optional(),
  /** A switch in activation mode `boot`: the new boot default, which runs after the next reboot. */
  bootDefault: z.string().max(500).optional(),
  /** A switch the host rolled back by itself because it was not confirmed in time. */
  hostRollback: HostRollback.optional(),
  gc: GcResult.optional(),
});
export type CommandResult = z.infer<typeof CommandResult>;

/** `POST /api/agent/commands/:id/events`, `type`-tagged. */
export const CommandEvent = z.discriminatedUnion("type", [
  z.object({ type: z.literal("started"), at: z.string() }),
  z.object({ type: z.literal("output"), chunks: z.array(OutputChunk).min(1).max(200) }),
  /**
   * The agent reboots the host for this command (a `reboot`, or a `boot-then-reboot-if-needed` switch),
   * sent and acknowledged before the reboot starts: from then on the command has the reboot's
   * verification deadline and ends `lost` when no agent comes back with a new boot by then.
   */
  z.object({
    type: z.literal("rebooting"),
    at: z.string(),
    /** The system the host should come back on. */
    system: z.string().min(1).max(500),
  }),
  z.object({
    type: z.literal("finished"),
    at: z.string(),
    outcome: z.enum(["succeeded", "failed", "cancelled"]),
    exitCode: z.number().int().nullable(),
    error: z.string().max(4000).nullable().default(null),
    result: CommandResult.default({}),
    /** The command's last output, when it had not gone out yet: stored before the end, in the same request. */
    output: z.array(OutputChunk).min(1).max(200).optional(),
    /**
     * The host's report right after the command ended (a switch, a pull-switch, a rollback), with the
     * session it belongs to: the rollout's gate judges it with the end, without waiting for a poll.
     * Left out when the safety net's confirmation already carried the post-switch report.
     */
    report: z.object({ agentSession: z.string().min(8).max(64), report: Report }).optional(),
  }),
]);
export type CommandEvent = z.infer<typeof CommandEvent>;

/**
 * `POST /api/agent/confirm`: after a switch, the new agent confirms that the host still reaches the
 * control plane, on a connection opened after the activation. It carries the post-switch report.
 */
export const SwitchConfirmation = z.object({
  protocol: AgentProtocolVersion,
  agentSession: z.string().min(8).max(64),
  commandId: CommandId,
  /** The system the host runs now, which the confirmation keeps. */
  system: z.string().min(1).max(500),
  report: Report.optional(),
});
export type SwitchConfirmation = z.infer<typeof SwitchConfirmation>;

/** The control plane's own answer to a confirmation: anything else (an Access page, a proxy's error) does not confirm. */
export const SwitchConfirmed = z.object({
  confirmed: z.literal(true),
  commandId: CommandId,
  system: z.string().min(1).max(500),
});
export type SwitchConfirmed = z.infer<typeof SwitchConfirmed>;
