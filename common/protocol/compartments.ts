import * as z from "zod";
import { CommandResult } from "./agent.ts";
import { CommandId, CommandKind, CommandState } from "./commands.ts";
import { HostName, Platform } from "./hosts.ts";
import { Report } from "./reports.ts";
import { HostHold, HostRolloutPart } from "./rollouts.ts";

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
  /** From the report's `system.reboot` (NixOS); null when unknown, not applicable or not reported. */
  rebootNeeded: z.boolean().nullable().default(null),
  /** "disk low: /boot 38 MiB free" from the report's `disk` and `alerts.diskLowBelowBytes`; null when no disk is low. */
  diskLow: z.string().nullable().default(null),
  activeCommand: CommandView.nullable(),
  compartments: Compartments,
  /** Left out of every rollout and automatic action while set (see HostHold). */
  hold: z.lazy(() => HostHold).nullable().default(null),
  /** The host's part in the running rollout, if any. */
  rollout: z.lazy(() => HostRolloutPart).nullable().default(null),
});
export type HostView = z.infer<typeof HostView>;
