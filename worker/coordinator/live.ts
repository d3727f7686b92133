/** The coordinator's reads for the dashboard and /metrics: commands are read through the object, their only home. */
import { toCommandView } from "../commands/rules.ts";
import type { CoordinatorStorage } from "../db/coordinator-storage.ts";
import type { Components } from "./components.ts";
import type { CoordinatorMetrics } from "./metrics.ts";

/** Presence, the newest commands, holds and rollout parts of every host this object knows. */
export function fleetLive(c: Components, commandsPerHost: number) {
  return {
    presence: c.presence.view(Date.now()),
    commands: c.dispatch.recentByHost(commandsPerHost),
    holds: c.holds.byName(),
    rolloutParts: c.rollouts.parts(),
    failedBuilds: c.fleetBuilds.failedByHost(),
  };
}

export function hostLive(c: Components, hostId: string, limit: number) {
  const commands = c.dispatch.hostCommands(hostId, limit).map(toCommandView);
  return { presence: c.presence.view(Date.now())[hostId] ?? null, commands, prunedCommands: c.dispatch.prunedOf(hostId), holds: c.holds.byName(), rolloutParts: c.rollouts.parts(), failedBuilds: c.fleetBuilds.failedByHost() };
}

/** Running totals and windows, never a scan of the history. */
export function coordinatorMetrics(c: Components, stores: Pick<CoordinatorStorage, "commandMetrics" | "rollouts">): CoordinatorMetrics {
  const activeCommands = c.dispatch.activeCommands().map((record) => ({ kind: record.kind, state: record.state }));
  const { commandMetrics, rollouts } = stores;
  return c.metrics.read(Date.now(), {
    commandTotals: commandMetrics.commandTotals(),
    commandDurations: commandMetrics.commandDurations(),
    activeCommands,
    rolloutStates: Object.fromEntries(rollouts.rolloutStates()),
  });
}
