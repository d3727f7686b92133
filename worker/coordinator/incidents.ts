/**
 * Host incidents: `host-red`, `tests-failed`, `disk-low` and their one `host-recovered`, decided by the pure rules of
 * worker/notifications/incidents.ts from the compartments of each stored report (and of the report read
 * again when a command of the host ends). The state of every incident not closed is in the object's
 * SQLite, written in the same step as the notification it causes, so an eviction neither sends an alert
 * twice nor forgets a recovery; the quiet periods run on the coordinator's one alarm (a clock). An
 * incident that opens within `alerts.rolloutLinkHours` after a rollout switched the host is linked to
 * that rollout for the Update history.
 */
import { computeCompartments } from "../../common/compartments.ts";
import { diskLowWarning } from "../../common/disk-space.ts";
import { INCIDENT_EVENTS, type IncidentEvent, type CommandView, type Report, type RolloutIncident, type Settings } from "../../common/protocol.ts";
import { NIXFLEET_VERSION } from "../../common/version.ts";
import type { IncidentStore } from "../db/coordinator/incidents.ts";
import type { loadFleetTarget } from "../db/github.ts";
import {
  alertEvent,
  due,
  dueAt,
  observations,
  observe,
  recoveryEvent,
  rolloutToLink,
  type Decision,
  type Incident,
  type SwitchedBy,
} from "../notifications/incidents.ts";
import type { CoordinatorHost, HostRef } from "./host.ts";
import { step, type Step } from "./step.ts";

/** How many recent rollouts an incident is matched against (newest first; only the newest that switched the host counts). */
const ROLLOUTS_TO_MATCH = 50;

export class Incidents {
  private readonly host: CoordinatorHost;
  private readonly store: IncidentStore;
  /** The newest rollouts, newest first (a read of the rollouts' storage, not of their component). */
  private readonly rollouts: (limit: number) => SwitchedBy[];
  private readonly settings: () => Settings;
  private readonly dashboardUrl: string | undefined;

  constructor(
    host: CoordinatorHost,
    store: IncidentStore,
    rollouts: (limit: number) => SwitchedBy[],
    settings: () => Settings,
    dashboardUrl: string | undefined,
  ) {
    this.host = host;
    this.store = store;
    this.rollouts = rollouts;
    this.settings = settings;
    this.dashboardUrl = dashboardUrl;
  }

  /** The host's latest report with its newest commands (COMMANDS_JUDGED, read once for its judges): each kind's incident opens, goes on or starts its quiet period. */
  observe(ref: HostRef, report: Report, receivedAt: string, target: Awaited<ReturnType<typeof loadFleetTarget>>, commands: CommandView[]): Step<undefined> {
    const now = this.host.now();
    const compartments = computeCompartments({
      platform: report.platform,
      report,
      reportedAt: receivedAt,
      // The host just spoke (a report, or the end of its command): its colours are current, not stale.
      online: true,
      lastSeenAt: receivedAt,
      commands,
      repo: target.repo,
      updatePrs: target.updatePrs,
      expectedAgentVersion: NIXFLEET_VERSION,
      now: new Date(now),
    });
    const settings = this.settings().alerts;
    const seen = observations(compartments, diskLowWarning(report.disk, settings.diskLowBelowBytes));
    const open = new Map(this.store.of(ref.id).map((stored) => [stored.kind, stored.incident]));
    const before = this.nextWakeAt();
    for (const kind of INCIDENT_EVENTS) {
      const incident = open.get(kind) ?? null;
      this.apply(ref, kind, incident, observe(incident, seen[kind], now, settings), now);
    }
    if (this.nextWakeAt() !== before) this.host.rearm();
    return step();
  }

  /** The earliest hold-down that runs out: a pending red's alert or an open incident's recovery. */
  nextWakeAt(): number | null {
    const settings = this.settings().alerts;
    let next: number | null = null;
    for (const { incident } of this.store.all()) {
      const at = dueAt(incident, settings);
      if (at !== null && (next === null || at < next)) next = at;
    }
    return next;
  }

  wake(now: number): Step<undefined> {
    const settings = this.settings().alerts;
    for (const { hostId, hostName, kind, incident } of this.store.all()) {
      this.apply({ id: hostId, name: hostName }, kind, incident, due(incident, now, settings), now);
    }
    return step();
  }

  /** A removed host's incidents end without a recovery (its removal says enough); its history links stay. */
  forgetHost(hostId: string): Step<undefined> {
    this.store.forgetHost(hostId);
    return step();
  }

  /** The Update history's links of these rollouts. */
  linksOf(rolloutIds: readonly string[]): RolloutIncident[] {
    return this.store.linksOf(rolloutIds);
  }

  private apply(host: { id: string; name: string }, kind: IncidentEvent, before: Incident | null, decision: Decision, now: number): void {
    if (JSON.stringify(before) !== JSON.stringify(decision.incident)) this.store.save(host, kind, decision.incident);
    if (decision.send === "alert" && decision.incident?.phase === "open") {
      const opened = decision.incident;
      this.host.effect({ type: "notify", event: alertEvent(kind, host.name, opened, this.dashboardUrl) });
      this.link(host.name, kind, opened);
    } else if (decision.send === "recovery" && before?.phase === "open") {
      this.host.effect({ type: "notify", event: recoveryEvent(kind, host.name, before, now, this.dashboardUrl) });
    }
  }

  private link(hostName: string, kind: IncidentEvent, opened: Extract<Incident, { phase: "open" }>): void {
    const match = rolloutToLink(this.rollouts(ROLLOUTS_TO_MATCH), hostName, opened.openedAt, this.settings().alerts);
    if (match === null) return;
    this.store.link({ rolloutId: match.rolloutId, host: hostName, event: kind, at: new Date(opened.openedAt).toISOString(), switchedAt: match.switchedAt, reason: opened.reason });
  }
}
