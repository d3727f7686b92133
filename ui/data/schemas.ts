/**
 * The admin API's answers, composed from the protocol's schemas. Every
 * response is parsed with one of these before the UI sees it.
 */
import * as z from "zod";
import {
  COMPARTMENT_NAMES,
  CommandView,
  CompartmentState,
  FleetBuildView,
  HostHold,
  HostName,
  HostView,
  LockChange,
  RepoState,
  Role,
  RolloutPlanView,
  RolloutView,
  StoredOutputChunk,
  UpdatePr,
  UpdatePrAutomation,
} from "../../common/protocol.ts";

const CompartmentNameKey = z.enum(COMPARTMENT_NAMES);

export const HealthResponse = z.object({
  ok: z.boolean(),
  version: z.string(),
  protocol: z.number().int(),
  /** Added later by the worker; absent means "not said", so no banner. */
  auth: z.string().optional(),
});
export type HealthResponse = z.infer<typeof HealthResponse>;

export const FleetSummary = z.partialRecord(CompartmentNameKey, z.partialRecord(CompartmentState, z.number().int().nonnegative()));
export type FleetSummary = z.infer<typeof FleetSummary>;

export const FleetResponse = z.object({
  hosts: z.array(HostView),
  summary: FleetSummary,
  repo: RepoState.nullable(),
  updatePrs: z.array(UpdatePr),
});
export type FleetResponse = z.infer<typeof FleetResponse>;

/** Older commands of a host that the coordinator's history bounds pruned: how many, and when the newest of them was made. */
export const PrunedCommands = z.object({ count: z.number().int().positive(), newestCreatedAt: z.string() });
export type PrunedCommands = z.infer<typeof PrunedCommands>;

/** `GET /api/hosts/:name`: the host with its recent commands, newest first, and what was pruned before them. */
export const HostDetail = HostView.extend({ commands: z.array(CommandView), prunedCommands: PrunedCommands.nullish() });
export type HostDetail = z.infer<typeof HostDetail>;

export const CreateHostResponse = z.object({ host: HostDetail, token: z.string().min(1) });
export type CreateHostResponse = z.infer<typeof CreateHostResponse>;

export const RotateTokenResponse = z.object({ host: HostName, token: z.string().min(1) });
export type RotateTokenResponse = z.infer<typeof RotateTokenResponse>;

export const RemoveHostResponse = z.object({ ok: z.boolean(), removed: z.string() });

export const CommandResponse = z.object({ command: CommandView });
export const CommandsResponse = z.object({ commands: z.array(CommandView), prunedCommands: PrunedCommands.nullish() });

export const OutputResponse = z.object({
  command: CommandView,
  chunks: z.array(StoredOutputChunk),
  truncated: z.boolean(),
  more: z.boolean(),
});
export type OutputResponse = z.infer<typeof OutputResponse>;

export const AuditEntry = z.object({
  id: z.number().int(),
  at: z.string(),
  actor: z.string(),
  action: z.string(),
  target: z.string().nullable(),
  details: z.record(z.string(), z.unknown()).nullable(),
  result: z.string(),
  /** The actor's role when it acted; null for entries from before roles, and the scheduled sync. */
  role: Role.nullable(),
});
export type AuditEntry = z.infer<typeof AuditEntry>;

export const AuditResponse = z.object({ entries: z.array(AuditEntry) });

export const RolloutResponse = z.object({ rollout: RolloutView });
export const RolloutsResponse = z.object({ rollouts: z.array(RolloutView) });

/** `GET /api/rollouts/:id`: the rollout with what the history page shows beside it. */
export const RolloutDetail = z.object({
  rollout: RolloutView,
  context: z.object({
    pr: z.object({ number: z.number().int().positive(), title: z.string(), url: z.string() }).nullable(),
    lockChanges: z.array(LockChange),
  }),
});
export type RolloutDetail = z.infer<typeof RolloutDetail>;

export const PlanResponse = z.object({ plan: RolloutPlanView });
export const HoldResponse = z.object({ hold: HostHold });
export const OkResponse = z.object({ ok: z.literal(true) });

/** `POST /api/update-prs/:number/build`: the fleet build it started. */
export const FleetBuildResponse = z.object({ fleetBuild: FleetBuildView });
/** `GET /api/update-prs`: the update PRs with their fleet builds. */
export const UpdatePrsResponse = z.object({ updatePrs: z.array(UpdatePr) });
/** Merge now and Skip answer with the update PR's automation as it stands. */
export const AutomationResponse = z.object({ automation: UpdatePrAutomation });

/** Loaded with the others by ui/data/api.ts, so they too stay out of the first paint's bundle. */
export { ErrorBody, MeResponse } from "../../common/protocol.ts";
