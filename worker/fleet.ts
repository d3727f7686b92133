import { computeCompartments, summarizeFleet } from "../common/compartments.ts";
import type { CommandView, HostHold, HostRolloutPart, HostView, UpdatePr } from "../common/protocol.ts";
import { isActiveCommand } from "../common/commands.ts";
import { DISK_LOW_BELOW_BYTES, diskLowWarning } from "../common/disk-space.ts";
import { NIXFLEET_VERSION } from "../common/version.ts";
import type { Database } from "./db/client.ts";
import { listHosts, type Host } from "./db/hosts.ts";
import { getReport, listReports, type StoredReport } from "./db/reports.ts";
import { coordinator } from "./coordinator.ts";
import { automation } from "./automation.ts";
import { loadFleetTargetWithPublished, type FleetTargetWithPublished as FleetTarget } from "./db/desired.ts";
import { settingsForDisplay } from "./db/settings.ts";
import type { FailedBuildOnHost } from "../common/compartments/desired.ts";
import type { WorkerEnv } from "./env.ts";

/** How many recent commands per host the compartments look at. */
const RECENT_COMMANDS = 20;

function hostView(
  host: Host,
  stored: StoredReport | null,
  commandViews: CommandView[],
  presence: { online: boolean; lastSeenAt: string | null } | undefined,
  target: FleetTarget,
  now: Date,
  extras: { hold: HostHold | null; rollout: HostRolloutPart | null; failedBuilds: FailedBuildOnHost[]; diskLowBelowBytes: number },
): HostView {
  const online = presence?.online ?? false;
  const lastSeenAt = presence?.lastSeenAt ?? host.lastSeenAt;
  return {
    id: host.id,
    name: host.name,
    platform: host.platform,
    flakeAttr: host.flakeAttr,
    createdAt: host.createdAt,
    online,
    lastSeenAt,
    report: stored?.report ?? null,
    reportedAt: stored?.receivedAt ?? null,
    rebootNeeded: stored?.report.system.reboot?.value?.needed ?? null,
    diskLow: diskLowWarning(stored?.report.disk, extras.diskLowBelowBytes),
    activeCommand: commandViews.find((c) => isActiveCommand(c)) ?? null,
    compartments: computeCompartments({
      platform: host.platform,
      report: stored?.report ?? null,
      reportedAt: stored?.receivedAt ?? null,
      online,
      lastSeenAt,
      commands: commandViews,
      repo: target.repo,
      updatePrs: target.updatePrs,
      expectedAgentVersion: NIXFLEET_VERSION,
      now,
      desiredPublished: publishedFor(host.name, target),
      failedBuilds: extras.failedBuilds,
    }),
    hold: extras.hold,
    rollout: extras.rollout,
  };
}

function publishedFor(hostName: string, target: FleetTarget): { commit: string; outPath: string } | null {
  const head = target.repo?.head?.sha ?? null;
  const outPath = target.published.get(hostName);
  return head === null || outPath === undefined ? null : { commit: head, outPath };
}

/** Every host with its five compartments, and the fleet summary. */
export async function loadFleet(env: WorkerEnv, db: Database) {
  const [hosts, reports, live, target, diskLowBelowBytes] = await Promise.all([
    listHosts(db),
    listReports(db),
    coordinator(env).fleetLive(RECENT_COMMANDS),
    // What the automation will do with the update PRs is asked as soon as they are known, beside the other reads.
    loadFleetTargetWithPublished(db).then(async (target) => ({ ...target, updatePrs: await withAutomation(env, target.updatePrs) })),
    diskThreshold(env, db),
  ]);
  const now = new Date();
  const views = hosts.map((host) =>
    hostView(host, reports.get(host.id) ?? null, live.commands[host.id] ?? [], live.presence[host.id], target, now, {
      hold: live.holds[host.name] ?? null,
      rollout: live.rolloutParts[host.name] ?? null,
      failedBuilds: live.failedBuilds[host.name] ?? [],
      diskLowBelowBytes,
    }),
  );
  return { hosts: views, summary: summarizeFleet(views.map((view) => view.compartments)), repo: target.repo, updatePrs: target.updatePrs };
}

/** The fleet's `alerts.diskLowBelowBytes`; the default when the settings cannot be read (the fleet still shows). */
async function diskThreshold(env: WorkerEnv, db: Database): Promise<number> {
  try {
    return (await settingsForDisplay(env, db)).alerts.diskLowBelowBytes;
  } catch (error) {
    console.warn("settings: could not read alerts.diskLowBelowBytes; using the default", error);
    return DISK_LOW_BELOW_BYTES;
  }
}

/** Each update PR with what the automation will do with it (the Automation object is its only home). */
export async function withAutomation(env: WorkerEnv, updatePrs: UpdatePr[]): Promise<UpdatePr[]> {
  if (updatePrs.length === 0) return updatePrs;
  try {
    const views = await automation(env).views(updatePrs.map((pr) => pr.number));
    return updatePrs.map((pr) => ({ ...pr, automation: views[pr.number] ?? null }));
  } catch (error) {
    // The fleet still shows without the timeline.
    console.warn("automation: could not read the update PRs' timelines", error);
    return updatePrs;
  }
}

export async function loadHostView(env: WorkerEnv, db: Database, host: Host) {
  const [stored, live, target, diskLowBelowBytes] = await Promise.all([
    getReport(db, host.id),
    coordinator(env).hostLive(host.id, RECENT_COMMANDS),
    loadFleetTargetWithPublished(db),
    diskThreshold(env, db),
  ]);
  const view = hostView(host, stored, live.commands, live.presence ?? undefined, target, new Date(), {
    hold: live.holds[host.name] ?? null,
    rollout: live.rolloutParts[host.name] ?? null,
    failedBuilds: live.failedBuilds[host.name] ?? [],
    diskLowBelowBytes,
  });
  return { ...view, commands: live.commands, prunedCommands: live.prunedCommands };
}
