/**
 * The narrow slice of the coordinator a component sees (cloudflare/agents' "host"): the clock, the
 * dashboards' broadcast, the outbox for effects, and a way to raise a reaction. A component never sees
 * the Durable Object class, and never calls another component: what one feature's step means for another
 * (a command that ended, a host that came online) is a reaction, which the shell routes after the step.
 */
import type { DashboardEvent, Report } from "../../common/protocol.ts";
import type { CommandRecord } from "../commands/rules.ts";
import type { Host } from "../db/hosts.ts";
import type { RolloutEvent } from "../rollouts/engine.ts";
import type { Effect } from "./effects.ts";

export type HostRef = Pick<Host, "id" | "name" | "lastSeenAt">;

/** What one component's step raises for others; the shell routes each one after the step that raised it. */
export type Reaction =
  /** A command's state changed (dispatch's transition, the single place that happens). */
  | { type: "command-changed"; record: CommandRecord }
  /** A host's command ended: a rollout's deferred turn or a waiting build may go now (routed after the command's own reactions). */
  | { type: "host-freed"; record: CommandRecord }
  /** A host's poll came after a silence: builds that waited for it may start. */
  | { type: "host-online"; hostId: string }
  /** A host was removed: its commands were deleted without a transition. */
  | { type: "host-removed"; hostId: string }
  /** A stored report of a host (its lock clock starts from it). */
  | { type: "report-stored"; host: HostRef; report: Report }
  /** An event for a rollout, run as a step of its own after the step that raised it. */
  | { type: "rollout-event"; rolloutId: string; event: RolloutEvent };

export interface CoordinatorHost {
  now(): number;
  broadcast(event: DashboardEvent): void;
  /** Writes an effect to the outbox, in the calling step; it is carried out after the step. */
  effect(effect: Effect): void;
  react(reaction: Reaction): void;
  /** The step moved the component's next wake-up: the shell arbitrates the one alarm again after it. */
  rearm(): void;
}
