import * as z from "zod";
import { ActivationMode, CommandId } from "./commands.ts";
import { FleetBuildView } from "./fleet-build.ts";
import { HostName, Sha1 } from "./hosts.ts";

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

/** What a revert makes: a commit on the followed branch, or a PR for a person to merge. */
export const REVERT_STRATEGIES = ["revert-commit", "revert-pr"] as const;
export const RevertStrategy = z.enum(REVERT_STRATEGIES);
export type RevertStrategy = z.infer<typeof RevertStrategy>;

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
  /** Hosts the commit does not change (their desired system is the one they run): pulled, not switched. */
  unchanged: z.array(HostName).default([]),
  failure: z.object({ host: HostName, reason: z.string(), commandId: CommandId.nullable() }).optional(),
  revert: z
    .object({
      kind: RevertStrategy,
      url: z.string().nullable(),
      state: z.enum(["requested", "opened", "failed"]),
      error: z.string().optional(),
      /** Who asked for it (`POST /api/rollouts/:id/revert`); absent for the automatic revert after a failure. */
      by: z.string().optional(),
      /** What differs from what was asked: "GitHub refused the push to main … a revert PR was opened instead". */
      note: z.string().optional(),
      /** The rollout of the revert commit (an on-demand `revert-commit`). */
      rollout: z.string().optional(),
      /** The revert did not apply (a later commit changed the same file): the commit before the update, which can be deployed instead. */
      before: Sha1.optional(),
    })
    .optional(),
  /** Why the rollout stopped early: "cancelled by alice", "superseded by ro_…". */
  stoppedBecause: z.string().optional(),
});
export type RolloutView = z.infer<typeof RolloutView>;

// ---------------------------------------------------------------------------
// The rollouts API (worker/routes/rollouts.ts); the dashboard uses exactly these.

/** A proposed rollout, before anything is sent: what the confirmation dialog shows. */
export const RolloutPlanView = z.object({
  commit: Sha1,
  pr: z.number().int().positive().nullable(),
  waves: z.array(z.object({ index: z.number().int().positive(), canary: z.boolean(), hosts: z.array(HostName) })),
  leftOut: z.array(LeftOutHost),
  /** Hosts the commit does not change: a deploy pulls them and switches nothing. */
  unchanged: z.array(HostName).default([]),
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
  /** How every switch of this rollout activates; left out, each host's own mode. */
  activation: ActivationMode.optional(),
});
export type StartRolloutRequest = z.infer<typeof StartRolloutRequest>;

/** `POST /api/update-prs/:number/merge-and-deploy`. */
export const MergeAndDeployRequest = z.strictObject({
  method: MergeMethod.optional(),
  /** The head the person looked at: GitHub refuses the merge if the PR moved since. */
  sha: Sha1.optional(),
  /** Merge although CI is not green: a typed reason, kept in the audit log. */
  override: z.strictObject({ reason: z.string().trim().min(3, "say why CI is overridden").max(500) }).optional(),
  /** Merge although the fleet build failed on a host in scope (an admin's call): a typed reason, kept in the audit log. */
  overrideFleetBuild: z.strictObject({ reason: z.string().trim().min(3, "say why the failed fleet build is overridden").max(500) }).optional(),
  /** Only these hosts, as for Deploy main; a host whose build failed and that is not named is left behind on purpose. */
  hosts: z.array(HostName).min(1).max(1000).optional(),
  ignoreWindows: z.boolean().default(false),
  /** Deploy to hosts whose build of the PR head failed too (docs/fleet-build.md); left out by default. */
  includeFailedBuilds: z.boolean().default(false),
  /** How every switch of the rollout activates; left out, each host's own mode. */
  activation: ActivationMode.optional(),
});
export type MergeAndDeployRequest = z.infer<typeof MergeAndDeployRequest>;

/** `POST /api/rollouts/:id/revert`: revert the rollout's commit on the followed branch, or propose it as a PR. */
export const RevertRolloutRequest = z.strictObject({ strategy: RevertStrategy });
export type RevertRolloutRequest = z.infer<typeof RevertRolloutRequest>;

/** Its answer: the reverted rollout, whose `revert` says what GitHub did (or why it did not). */
export const RevertRolloutResponse = z.object({ rollout: RolloutView });
export type RevertRolloutResponse = z.infer<typeof RevertRolloutResponse>;

/** `PUT /api/hosts/:name/hold`. */
export const SetHoldRequest = z.strictObject({
  reason: z.string().trim().min(1, "a hold needs a reason").max(500),
  until: z.iso.datetime({ offset: true }).nullable().optional(),
});
export type SetHoldRequest = z.infer<typeof SetHoldRequest>;

/** A host's part in the running rollout, on its row of the fleet table. */
export const HostRolloutPart = z.object({ id: z.string(), state: RolloutHostState, wave: z.number().int().positive() });
export type HostRolloutPart = z.infer<typeof HostRolloutPart>;
