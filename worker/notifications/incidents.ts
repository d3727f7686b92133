/**
 * Host incidents with hysteresis: when a host's state opens an incident (one alert), when it closes
 * (one recovery), and what is sent for each. Pure, so the rules are tested without workerd; the
 * coordinator's incidents component (worker/coordinator/incidents.ts) stores the state per host and
 * kind and carries out what these functions decide. Any event that is "once per incident per host,
 * plus one recovery" goes through here: add its kind to INCIDENT_EVENTS and its observation below.
 *
 * An incident opens when a red has lasted `alertAfterSeconds` (0: at once) and closes once the host has
 * stayed clear for `recoverAfterSeconds`. A red seen while the incident is open — a host flapping
 * red/green — keeps it open and starts the quiet period over, so ten flaps in a minute are one alert
 * and one recovery; a red after the recovery is a new incident and alerts again.
 */
import { z } from "zod";
import type { AlertSettings, Compartments, IncidentEvent, NotificationEvent } from "../../common/protocol.ts";
import { roughDuration } from "../../common/text.ts";
import { dashboardLink, hostPagePath } from "./events.ts";

/** What one look at the host says about one kind: red, clear, or nothing to tell (a command under way). */
export type Observation = { state: "red"; reason: string } | { state: "clear" } | { state: "unknown" };

/** An incident not closed yet, as the coordinator stores it; a host with none for a kind has no record. */
export const Incident = z.discriminatedUnion("phase", [
  /** Red for less than `alertAfterSeconds`: nothing sent yet. */
  z.object({ phase: z.literal("pending"), redSince: z.number(), reason: z.string() }),
  /** Alerted at `openedAt`; `clearSince` is set while the host is clear (the quiet period before the recovery). */
  z.object({ phase: z.literal("open"), openedAt: z.number(), reason: z.string(), clearSince: z.number().nullable() }),
]);
export type Incident = z.infer<typeof Incident>;

export interface Decision {
  incident: Incident | null;
  send: "alert" | "recovery" | null;
}

const seconds = (n: number) => n * 1000;

/** The incident after one observation at `now`. */
export function observe(incident: Incident | null, seen: Observation, now: number, settings: AlertSettings): Decision {
  if (seen.state === "unknown") return due(incident, now, settings);
  if (seen.state === "red") {
    if (incident === null) {
      const pending: Incident = { phase: "pending", redSince: now, reason: seen.reason };
      return due(pending, now, settings);
    }
    if (incident.phase === "pending") return due({ ...incident, reason: seen.reason }, now, settings);
    // Red again inside the quiet period: the same incident, its quiet period starts over.
    return { incident: { ...incident, reason: seen.reason, clearSince: null }, send: null };
  }
  if (incident === null || incident.phase === "pending") return { incident: null, send: null };
  return due({ ...incident, clearSince: incident.clearSince ?? now }, now, settings);
}

/** Whether a hold-down has run out by `now`: a pending red alerts, an open incident's quiet period recovers. */
export function due(incident: Incident | null, now: number, settings: AlertSettings): Decision {
  const at = dueAt(incident, settings);
  if (incident === null || at === null || at > now) return { incident, send: null };
  if (incident.phase === "pending") return { incident: { phase: "open", openedAt: now, reason: incident.reason, clearSince: null }, send: "alert" };
  return { incident: null, send: "recovery" };
}

/** When the incident's hold-down runs out; null when nothing is waiting for the clock. */
export function dueAt(incident: Incident | null, settings: AlertSettings): number | null {
  if (incident === null) return null;
  if (incident.phase === "pending") return incident.redSince + seconds(settings.alertAfterSeconds);
  return incident.clearSince === null ? null : incident.clearSince + seconds(settings.recoverAfterSeconds);
}

/**
 * What the compartments say about each kind. `tests-failed`: the Tests compartment is red. `host-red`:
 * any other compartment is red — except an Agent red without a command, the version verdict, which
 * `agent-outdated` reports once per release. Blue (a command under way) tells nothing yet. `disk-low`:
 * the report's free space (common/disk-space.ts's warning, or null when there is none).
 */
export function observations(compartments: Compartments, diskLow: string | null): Record<IncidentEvent, Observation> {
  const { tests } = compartments;
  const others = (["system", "git", "lock", "agent"] as const).filter((name) => name !== "agent" || compartments.agent.commandId !== null);
  const red = others.filter((name) => compartments[name].state === "red");
  const hostRed: Observation =
    red.length > 0
      ? { state: "red", reason: red.map((name) => `${NAMES[name]}: ${compartments[name].reason}`).join("; ") }
      : others.some((name) => compartments[name].state === "blue")
        ? { state: "unknown" }
        : { state: "clear" };
  const testsFailed: Observation =
    tests.state === "red" ? { state: "red", reason: tests.reason } : tests.state === "blue" ? { state: "unknown" } : { state: "clear" };
  const disk: Observation = diskLow !== null ? { state: "red", reason: diskLow } : { state: "clear" };
  return { "host-red": hostRed, "tests-failed": testsFailed, "disk-low": disk };
}

const NAMES = { system: "System", git: "Git", lock: "Lock", agent: "Agent", tests: "Tests" } as const;

const ALERT_TITLE: Record<IncidentEvent, (host: string) => string> = {
  "host-red": (host) => `${host} turned red`,
  "tests-failed": (host) => `${host}'s tests failed`,
  "disk-low": (host) => `${host} is low on disk space`,
};

/** What the one recovery says the host is again, per kind. */
const RECOVERED: Record<IncidentEvent, { what: string; title: string }> = {
  "host-red": { what: "is no longer red", title: "no compartment is red" },
  "tests-failed": { what: "tests pass again", title: "tests pass again" },
  "disk-low": { what: "has enough free disk space again", title: "enough free disk space" },
};

/** The alert of an incident: its id is the host, the kind and the opening time, so a replay is delivered once. */
export function alertEvent(kind: IncidentEvent, host: string, incident: Extract<Incident, { phase: "open" }>, dashboardUrl: unknown): NotificationEvent {
  const openedAt = new Date(incident.openedAt).toISOString();
  return {
    id: `${kind}:${host}:${openedAt}`,
    event: kind,
    at: openedAt,
    title: ALERT_TITLE[kind](host),
    text: `${incident.reason}\nOne alert per incident: the recovery is sent once ${host} has stayed clear for a while.`,
    url: dashboardLink(dashboardUrl, hostPagePath(host)),
    host,
    details: { incident: kind, openedAt, reason: incident.reason },
  };
}

/** The one recovery of an incident, with how long it lasted. */
export function recoveryEvent(kind: IncidentEvent, host: string, incident: Extract<Incident, { phase: "open" }>, now: number, dashboardUrl: unknown): NotificationEvent {
  const openedAt = new Date(incident.openedAt).toISOString();
  const { what, title } = RECOVERED[kind];
  return {
    id: `host-recovered:${kind}:${host}:${openedAt}`,
    event: "host-recovered",
    at: new Date(now).toISOString(),
    title: `${host} recovered: ${title}`,
    text: `${host} ${what} after ${roughDuration(now - incident.openedAt, "long")} (${kind} since ${openedAt}; last: ${incident.reason}).`,
    url: dashboardLink(dashboardUrl, hostPagePath(host)),
    host,
    details: { incident: kind, openedAt, lastReason: incident.reason },
  };
}

/** A rollout's part as the link needs it: which hosts it switched, and when. */
export interface SwitchedBy {
  rolloutId: string;
  startedAt: string;
  hosts: { name: string; switched: boolean; finishedAt?: string | null | undefined }[];
}

/**
 * The rollout an incident is linked to in the Update history: the newest of `rollouts` (newest first)
 * that switched the host at or before `openedAt`, when that switch is at most `rolloutLinkHours` old.
 * An older rollout is never blamed: the host runs what the newest one deployed.
 */
export function rolloutToLink(
  rollouts: readonly SwitchedBy[],
  host: string,
  openedAt: number,
  settings: AlertSettings,
): { rolloutId: string; switchedAt: string } | null {
  for (const rollout of rollouts) {
    const part = rollout.hosts.find((h) => h.name === host && h.switched);
    if (part === undefined) continue;
    const switchedAt = part.finishedAt ?? rollout.startedAt;
    const at = Date.parse(switchedAt);
    if (Number.isNaN(at) || at > openedAt) continue;
    return openedAt - at <= settings.rolloutLinkHours * 3_600_000 ? { rolloutId: rollout.rolloutId, switchedAt } : null;
  }
  return null;
}
