/**
 * The rollout as the coordinator stores it: plain JSON, written after every step of the engine
 * (engine.ts) and parsed with these schemas when loaded, so an evicted Durable Object resumes exactly
 * where it was.
 */
import * as z from "zod";
import {
  ActivationMode,
  CommandId,
  HostName,
  LeftOutHost,
  RollbackStrategy,
  RolloutHostState,
  RolloutState,
  RolloutWaveState,
  Sha1,
} from "../../common/protocol.ts";
import type { RolloutPlan } from "./plan.ts";

/**
 * A host's state as stored. `switching` was a state no event ever reached (no agent reports the
 * moment a pull-switch begins to switch); it is gone, and a record that still names it reads as the
 * `pulling` it stood for.
 */
const StoredRolloutHostState = z.preprocess((state) => (state === "switching" ? "pulling" : state), RolloutHostState);

export const RolloutHostRecord = z.object({
  name: HostName,
  /** 1-based wave index. */
  wave: z.number().int().positive(),
  state: StoredRolloutHostState,
  reason: z.string().nullable(),
  /** The `send` action was emitted: it never is again. */
  sent: z.boolean(),
  commandId: CommandId.nullable(),
  commandStarted: z.boolean(),
  commandFinished: z.boolean(),
  /** The command succeeded and the agent says it is at the rollout's commit: what `rollbackHosts` undoes. */
  switched: z.boolean(),
  cancelRequested: z.boolean(),
  rollbackRequested: z.boolean(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
});
export type RolloutHostRecord = z.infer<typeof RolloutHostRecord>;

export const RolloutWaveRecord = z.object({
  index: z.number().int().positive(),
  canary: z.boolean(),
  state: RolloutWaveState,
  soakUntil: z.string().nullable(),
});
export type RolloutWaveRecord = z.infer<typeof RolloutWaveRecord>;

export const NOTIFY_EVENTS = ["rollout-started", "rollout-succeeded", "rollout-failed", "rollout-cancelled"] as const;
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];

/** The rollout as the coordinator stores it; parse it on load, never cast. */
export const Rollout = z.object({
  format: z.literal(1),
  id: z.string().min(1),
  commit: Sha1,
  pr: z.number().int().positive().nullable(),
  startedBy: z.string(),
  automatic: z.boolean(),
  /** A manual deploy confirmed to ignore maintenance windows (never for automatic rollouts). */
  ignoreWindows: z.boolean(),
  /** The activation mode every switch of the rollout carries; null: each host's own. */
  activation: ActivationMode.nullable().default(null),
  state: RolloutState,
  startedAt: z.string(),
  finishedAt: z.string().nullable(),
  /** 1-based index of the wave being deployed or soaked; 0 before the start. */
  currentWave: z.number().int().nonnegative(),
  waves: z.array(RolloutWaveRecord),
  hosts: z.array(RolloutHostRecord),
  leftOut: z.array(LeftOutHost),
  /** Pulled at the start, never switched: the commit leaves their system as it is. */
  unchanged: z.array(HostName).default([]),
  waitingFor: z.string().nullable(),
  /** The last `wake-at` asked for, so an unchanged one is not asked for again. */
  wakeAt: z.string().nullable(),
  failure: z.object({ host: HostName, reason: z.string(), commandId: CommandId.nullable() }).nullable(),
  stoppedBecause: z.string().nullable(),
  revert: z
    .object({
      kind: RollbackStrategy.exclude(["alert-only"]),
      url: z.string().nullable(),
      state: z.enum(["requested", "opened", "failed"]),
      error: z.string().nullable(),
      /** Optional, so rollouts stored before on-demand reverts still read. See RolloutView.revert. */
      by: z.string().optional(),
      note: z.string().optional(),
      rollout: z.string().optional(),
      before: Sha1.optional(),
    })
    .nullable(),
  notified: z.array(z.enum(NOTIFY_EVENTS)),
});
export type Rollout = z.infer<typeof Rollout>;

const ACTIVE_STATES: ReadonlySet<Rollout["state"]> = new Set(["running", "soaking", "waiting-window"]);
/** Hosts that passed their gate. */
const PASSED: ReadonlySet<RolloutHostRecord["state"]> = new Set(["soaking", "done"]);

export const isActive = (rollout: Rollout): boolean => ACTIVE_STATES.has(rollout.state);
export const hasPassed = (host: RolloutHostRecord): boolean => PASSED.has(host.state);

export interface CreateRolloutInput {
  id: string;
  commit: string;
  pr: number | null;
  startedBy: string;
  automatic: boolean;
  ignoreWindows: boolean;
  activation?: ActivationMode | null;
  plan: RolloutPlan;
  now: Date;
}

export function createRollout(input: CreateRolloutInput): Rollout {
  return {
    format: 1,
    id: input.id,
    commit: input.commit,
    pr: input.pr,
    startedBy: input.startedBy,
    automatic: input.automatic,
    ignoreWindows: input.automatic ? false : input.ignoreWindows,
    activation: input.activation ?? null,
    state: "planned",
    startedAt: input.now.toISOString(),
    finishedAt: null,
    currentWave: 0,
    waves: input.plan.waves.map((w) => ({ index: w.index, canary: w.canary, state: "waiting", soakUntil: null })),
    hosts: input.plan.waves.flatMap((w) =>
      w.hosts.map((name) => ({
        name,
        wave: w.index,
        state: "waiting" as const,
        reason: null,
        sent: false,
        commandId: null,
        commandStarted: false,
        commandFinished: false,
        switched: false,
        cancelRequested: false,
        rollbackRequested: false,
        startedAt: null,
        finishedAt: null,
      })),
    ),
    leftOut: input.plan.leftOut.map((l) => ({ ...l })),
    unchanged: [...input.plan.unchanged],
    waitingFor: null,
    wakeAt: null,
    failure: null,
    stoppedBecause: null,
    revert: null,
    notified: [],
  };
}
