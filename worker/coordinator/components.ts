/**
 * The coordinator's feature components, wired to the host slice and their own storage. Each one sees
 * only what it is handed here: no component holds another, except the runners' CommandPort (dispatch,
 * the one writer of commands) and the read-only ports for presence, holds and the stored rollouts.
 */
import type { Database } from "../db/client.ts";
import { loadFleetTarget } from "../db/github.ts";
import type { CoordinatorStorage } from "../db/coordinator-storage.ts";
import type { WorkerEnv } from "../env.ts";
import { Catalogue } from "./catalogue.ts";
import { CommitStatus } from "./commit-status.ts";
import { Dispatch } from "./dispatch.ts";
import { FleetBuildRunner } from "./fleet-build-runner.ts";
import { FleetTargetCopy } from "./fleet-target.ts";
import { Holds } from "./holds.ts";
import { Incidents } from "./incidents.ts";
import type { CoordinatorHost } from "./host.ts";
import { LockClock } from "./lock-clock.ts";
import { MainHead } from "./main-head.ts";
import { Metrics } from "./metrics.ts";
import { Presence } from "./presence.ts";
import { Reports } from "./reports.ts";
import { Revert } from "./revert.ts";
import { RolloutRunner } from "./rollout-runner.ts";
import { SettingsCopy } from "./settings-copy.ts";
import { WaitingPolls } from "./waiting-polls.ts";

export function wireComponents(host: CoordinatorHost, stores: CoordinatorStorage, storage: DurableObjectStorage, env: WorkerEnv, db: Database) {
  const waiting = new WaitingPolls();
  const settings = new SettingsCopy(storage, env, db);
  const dispatch = new Dispatch(host, stores.commands, stores.sessions, stores.commandMetrics, waiting, Number(env.QUEUED_COMMAND_TTL_SECONDS) || 86_400);
  const presence = new Presence(host, waiting);
  const holds = new Holds(host, stores.holds);
  const isOnline = (hostId: string, now: number, unknown?: boolean) => presence.isOnline(hostId, now, unknown);
  return {
    waiting,
    settings,
    dispatch,
    presence,
    holds,
    catalogue: new Catalogue(db),
    metrics: new Metrics(storage),
    reports: new Reports(host, stores.sessions),
    lockClock: new LockClock(host),
    mainHead: new MainHead(db, waiting),
    fleetTarget: new FleetTargetCopy(() => loadFleetTarget(db), host.now),
    rollouts: new RolloutRunner(host, stores.rollouts, dispatch, holds, isOnline, () => settings.current(), env.DASHBOARD_URL),
    fleetBuilds: new FleetBuildRunner(host, stores.fleetBuilds, dispatch),
    commitStatus: new CommitStatus(host, stores.fleetBuilds),
    revert: new Revert(host),
    incidents: new Incidents(host, stores.incidents, (limit) => recentSwitches(stores, limit), () => settings.current(), env.DASHBOARD_URL),
  };
}

export type Components = ReturnType<typeof wireComponents>;

/** The newest rollouts' switched hosts, read from the rollouts' storage: what an incident is linked to. */
function recentSwitches(stores: CoordinatorStorage, limit: number) {
  return stores.rollouts.listRollouts(limit, null).map(({ rollout }) => ({ rolloutId: rollout.id, startedAt: rollout.startedAt, hosts: rollout.hosts }));
}
