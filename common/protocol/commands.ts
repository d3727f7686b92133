import * as z from "zod";
import { FlakeAttr, HostName, Platform, Sha1 } from "./hosts.ts";

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
  "gc",
  "reboot",
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
  /** Deleting generations is quick; collecting a large store is not (docs/hosts.md "Generations and garbage collection"). */
  gc: 30 * 60,
  /** The verification after a reboot: the host comes back with a new boot id on the intended system, or the command ends `lost`. */
  reboot: 10 * 60,
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
  "gc",
  "reboot",
]);

/**
 * What a `gc` keeps besides the booted, the current and the safety net's generations: the newest
 * `keepGenerations` and every generation younger than `keepDays` days.
 */
export const GcPolicy = z.object({
  keepGenerations: z.number().int().min(1).max(200),
  keepDays: z.number().nonnegative().max(3650),
});
export type GcPolicy = z.infer<typeof GcPolicy>;

/**
 * How a switch activates the new system (the host's `activation` module option, overridable per
 * command and per rollout): `switch` now; `boot` as the boot default only, active after the next
 * reboot; `boot-then-reboot-if-needed` as the boot default, then a reboot when its kernel, initrd or
 * modules differ from the booted ones (inside the host's maintenance window), else a switch.
 */
export const ACTIVATION_MODES = ["switch", "boot", "boot-then-reboot-if-needed"] as const;
export const ActivationMode = z.enum(ACTIVATION_MODES);
export type ActivationMode = z.infer<typeof ActivationMode>;

/** Kinds that take an activation mode. */
export const ACTIVATION_KINDS: ReadonlySet<CommandKind> = new Set(["switch", "pull-switch"]);

export const CommandId = z.string().regex(/^cmd_[A-Za-z0-9_-]{10,40}$/, "not a command id");

/** Kinds that act on an exact commit when one is given; `build` always needs one. */
export const COMMIT_KINDS: ReadonlySet<CommandKind> = new Set(["build", "pull", "pull-switch"]);

export const CreateCommandRequest = z
  .strictObject({
    kind: CommandKind,
    /** For `build` (required), `pull` and `pull-switch`: the exact commit of the followed branch to act on. */
    commit: Sha1.optional(),
    /** For `switch` / `pull-switch`: send it although the host rolled this commit's system back by itself. */
    force: z.boolean().optional(),
    /** For `rollback`: the generation of the system profile to go back to (default: the one before the current). */
    generation: z.number().int().positive().optional(),
    /** For `gc`: say what would be deleted and collected, and delete nothing. */
    dryRun: z.boolean().optional(),
    // `force` also lets a `reboot` (or a `boot-then-reboot-if-needed` switch) go out of the host's maintenance window.
    /** For `switch` / `pull-switch` (the worker refuses it on other kinds): how to activate; left out, the host's own mode. */
    activation: ActivationMode.nullable().optional(),
  })
  .refine((r) => r.kind !== "build" || r.commit !== undefined, { message: "a build needs the commit to build", path: ["commit"] })
  .refine((r) => r.commit === undefined || COMMIT_KINDS.has(r.kind), { message: "only build, pull and pull-switch take a commit", path: ["commit"] })
  .refine((r) => r.generation === undefined || r.kind === "rollback", { message: "only rollback takes a generation", path: ["generation"] })
  .refine((r) => r.dryRun === undefined || r.kind === "gc", { message: "only gc takes dryRun", path: ["dryRun"] });
export type CreateCommandRequest = z.infer<typeof CreateCommandRequest>;

/** A host whose system a builder builds (settings `fleetBuild.builders`): where its system is in the flake. */
export const BuildTarget = z.object({ host: HostName, platform: Platform, flakeAttr: FlakeAttr });
export type BuildTarget = z.infer<typeof BuildTarget>;

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
  /** For `rollback`: the generation to go back to; null means the one before the current. */
  generation: z.number().int().positive().nullable().default(null),
  /** For `gc`: delete nothing, say what would go. */
  dryRun: z.boolean().default(false),
  /** For `gc`: the fleet's defaults (settings `gc`), which the host's own module options override. */
  gc: GcPolicy.nullable().default(null),
  /** For `switch` / `pull-switch`: how to activate; null is the host's own mode. */
  activation: ActivationMode.nullable().default(null),
  /**
   * For `build` on a builder host: the hosts whose systems it builds, uploads to the fleet cache and
   * names in the signed manifest of the commit (docs/fleet-build.md "Builder hosts"); empty, it builds its own.
   */
  builds: z.array(BuildTarget).max(500).default([]),
  createdAt: z.string(),
  deadlineAt: z.string(),
});
export type CommandDelivery = z.infer<typeof CommandDelivery>;
