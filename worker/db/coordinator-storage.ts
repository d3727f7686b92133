/**
 * The coordinator Durable Object's own SQLite storage, one store per table group (worker/db/coordinator/):
 * the home of every command (its state, output, acknowledgement and output high-water mark), each host's
 * agent session, the rollouts, holds, fleet builds, command totals, host incidents and the outbox of effects. Calls are
 * synchronous and covered by the object's input and output gates, so a check and the write that depends
 * on it cannot interleave with another request, and nothing is answered before it is durable. D1 holds
 * the catalogue (hosts, tokens, reports, audit, GitHub state); commands live here only and are read
 * through the object.
 */
import type { HistoryBounds } from "../commands/history.ts";
import { CommandMetricsStore } from "./coordinator/command-metrics.ts";
import { CommandStore } from "./coordinator/commands.ts";
import { FleetBuildStore } from "./coordinator/fleet-builds.ts";
import { HoldStore } from "./coordinator/holds.ts";
import { IncidentStore } from "./coordinator/incidents.ts";
import { migrateCoordinator } from "./coordinator/migrations.ts";
import { OutboxStore } from "./coordinator/outbox.ts";
import { RolloutStore } from "./coordinator/rollouts.ts";
import { SessionStore } from "./coordinator/sessions.ts";

export { COMMAND_DURATION_BOUNDS } from "./coordinator/command-metrics.ts";
export { RolloutContextRecord, type StoredRollout } from "./coordinator/rollouts.ts";
export type { AgentSession } from "./coordinator/sessions.ts";

export interface CoordinatorStorage {
  commands: CommandStore;
  sessions: SessionStore;
  rollouts: RolloutStore;
  holds: HoldStore;
  fleetBuilds: FleetBuildStore;
  commandMetrics: CommandMetricsStore;
  outbox: OutboxStore;
  incidents: IncidentStore;
}

/**
 * Brings the object's SQLite up to date (synchronously, in its constructor) and opens a store per table
 * group; the commands keep the history `history` bounds.
 */
export function openCoordinatorStorage(sql: SqlStorage, history: HistoryBounds): CoordinatorStorage {
  migrateCoordinator(sql);
  return {
    commands: new CommandStore(sql, history),
    sessions: new SessionStore(sql),
    rollouts: new RolloutStore(sql),
    holds: new HoldStore(sql),
    fleetBuilds: new FleetBuildStore(sql),
    commandMetrics: new CommandMetricsStore(sql),
    outbox: new OutboxStore(sql),
    incidents: new IncidentStore(sql),
  };
}
