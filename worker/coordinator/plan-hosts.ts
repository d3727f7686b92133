/** Every host as the planners (rollouts, fleet builds) see it: presence, hold and the rollout settings of its last report. */
import type { HostHold, Settings } from "../../common/protocol.ts";
import type { Host } from "../db/hosts.ts";
import type { StoredReport } from "../db/reports.ts";
import type { FleetBuildScopeHost } from "../fleet-build/rules.ts";
import { planRollout, type PlanHost, type RolloutPlan } from "../rollouts/plan.ts";
import { describeRejected, rejectedAt } from "../rollouts/rejected.ts";
import { unchangedBy, type CommitDesired } from "../rollouts/unchanged.ts";

export interface FleetView {
  hosts: Host[];
  reports: Map<string, StoredReport>;
  isOnline: (hostId: string) => boolean;
  /** By host id. */
  holds: Map<string, HostHold>;
}

function rejectedReason(hostName: string, report: StoredReport["report"] | undefined, at: CommitDesired): string | null {
  const system = rejectedAt(hostName, report, at);
  return system === null ? null : describeRejected(system);
}

/** With `at`, each host says whether that commit leaves its system as it is (a rollout pulls such a host, no switch). */
export function planHosts(fleet: FleetView, at?: CommitDesired): (PlanHost & { id: string })[] {
  return fleet.hosts.map((host) => {
    const report = fleet.reports.get(host.id)?.report;
    const rollout = report?.rollout;
    return {
      id: host.id,
      name: host.name,
      online: fleet.isOnline(host.id),
      hold: fleet.holds.get(host.id) ?? null,
      autoUpdate: rollout?.autoUpdate ?? true,
      priority: rollout?.priority ?? 100,
      canary: rollout?.canary ?? false,
      ...(at === undefined ? {} : { unchanged: unchangedBy(host.name, report, at), rejected: rejectedReason(host.name, report, at) }),
    };
  });
}

/** The hosts a fleet build starts from: the planners' view, with what picks a host's builder (its system type, platform and flake attribute). */
export function fleetBuildScope(fleet: FleetView): FleetBuildScopeHost[] {
  const byId = new Map(fleet.hosts.map((host) => [host.id, host]));
  return planHosts(fleet).map((planned) => {
    const host = byId.get(planned.id)!;
    return { ...planned, nixSystem: fleet.reports.get(host.id)?.report.nixSystem ?? null, platform: host.platform, flakeAttr: host.flakeAttr };
  });
}

/** What a rollout of the fleet would do now (worker/rollouts/plan.ts over planHosts). */
export function planFor(
  fleet: FleetView,
  settings: Settings,
  input: { hosts?: string[]; automatic: boolean },
  failedBuilds: { commit: string; hosts: string[] } | undefined,
  now: number,
  at?: CommitDesired,
): RolloutPlan {
  return planRollout({ hosts: planHosts(fleet, at), settings, automatic: input.automatic, selected: input.hosts, failedBuilds, now: new Date(now) });
}
