/**
 * The notification events the control plane itself publishes, built from what it knows: pure, so
 * the ids that make publishing idempotent and the texts are tested without workerd.
 */
import semver from "semver";
import { NOTIFICATION_EVENTS, type NotificationEvent, type NotificationEventName } from "../../common/protocol.ts";
import type { Rollout } from "../rollouts/engine.ts";
import { roughDuration, shortSha } from "../../common/text.ts";

/** `DASHBOARD_URL` + path, or null when the var is unset or not an http(s) URL. */
export function dashboardLink(dashboardUrl: unknown, path: string): string | null {
  if (typeof dashboardUrl !== "string" || dashboardUrl.trim() === "") return null;
  try {
    const base = new URL(dashboardUrl.trim());
    if (base.protocol !== "https:" && base.protocol !== "http:") return null;
    return new URL(path, `${base.origin}${base.pathname.replace(/\/*$/, "/")}`).toString();
  } catch {
    return null;
  }
}

/** The dashboard's host page, with a command's log open (ui/common/route.ts hostPath). */
export const hostPagePath = (host: string, commandId?: string | null): string =>
  `hosts/${encodeURIComponent(host)}${commandId ? `?command=${encodeURIComponent(commandId)}` : ""}`;

export const isNotificationEvent = (name: string): name is NotificationEventName =>
  (NOTIFICATION_EVENTS as readonly string[]).includes(name);

/**
 * A rollout's start, success or failure (the engine's `notify` action, which it emits once per
 * rollout and event): the id is the rollout and the event, so a step replayed publishes nothing new.
 */
export function rolloutEvent(
  rollout: Rollout,
  event: "rollout-started" | "rollout-succeeded" | "rollout-failed",
  message: string,
  dashboardUrl: unknown,
  now: Date,
): NotificationEvent {
  const what = rollout.pr === null ? shortSha(rollout.commit) : `update PR #${rollout.pr} (${shortSha(rollout.commit)})`;
  const failure = rollout.failure;
  const title =
    event === "rollout-started"
      ? `Rollout of ${what} started`
      : event === "rollout-succeeded"
        ? `Rollout of ${what} succeeded`
        : `Rollout of ${what} failed${failure ? ` on ${failure.host}` : ""}`;
  const url =
    event === "rollout-failed" && failure
      ? dashboardLink(dashboardUrl, hostPagePath(failure.host, failure.commandId))
      : dashboardLink(dashboardUrl, "rollouts");
  const details: Record<string, unknown> = {
    state: rollout.state,
    automatic: rollout.automatic,
    startedBy: rollout.startedBy,
    hosts: rollout.hosts.length,
    waves: rollout.waves.length,
  };
  if (event === "rollout-failed" && failure) {
    details.failure = { host: failure.host, reason: failure.reason, commandId: failure.commandId, log: url };
  }
  return {
    id: `${event}:${rollout.id}`,
    event,
    at: now.toISOString(),
    title,
    text: message,
    url,
    ...(rollout.pr === null ? {} : { pr: rollout.pr }),
    rolloutId: rollout.id,
    ...(event === "rollout-failed" && failure ? { host: failure.host } : {}),
    commit: rollout.commit,
    details,
  };
}

/** The revert a failed rollout opened (a revert PR or a revert commit): once per rollout. */
export function revertEvent(
  rollout: Pick<Rollout, "id" | "commit" | "pr">,
  revert: { kind: "revert-pr" | "revert-commit"; url: string },
  now: Date,
): NotificationEvent {
  const what = rollout.pr === null ? shortSha(rollout.commit) : `#${rollout.pr}`;
  const title = revert.kind === "revert-pr" ? `Revert PR opened for ${what}` : `Reverted ${what} on the branch`;
  return {
    id: `revert-opened:${rollout.id}`,
    event: "revert-opened",
    at: now.toISOString(),
    title,
    text: `Rollout ${rollout.id} of ${shortSha(rollout.commit)} failed; ${revert.kind === "revert-pr" ? "a revert PR waits for review" : "the commit was reverted"}: ${revert.url}`,
    url: revert.url,
    ...(rollout.pr === null ? {} : { pr: rollout.pr }),
    rolloutId: rollout.id,
    commit: rollout.commit,
    details: { kind: revert.kind },
  };
}

export const DEFAULT_HOST_OFFLINE_MINUTES = 30;

/** `HOST_OFFLINE_NOTIFY_MINUTES`: a whole number ≥ 1, else the default (logged, since a typo must not silence it). */
export function hostOfflineMinutes(raw: unknown): number {
  if (typeof raw !== "string" || raw.trim() === "") return DEFAULT_HOST_OFFLINE_MINUTES;
  const minutes = Number(raw.trim());
  if (!Number.isSafeInteger(minutes) || minutes < 1) {
    console.error(`HOST_OFFLINE_NOTIFY_MINUTES: "${raw}" is not a whole number ≥ 1; using ${DEFAULT_HOST_OFFLINE_MINUTES}`);
    return DEFAULT_HOST_OFFLINE_MINUTES;
  }
  return minutes;
}

export interface HostFacts {
  name: string;
  online: boolean;
  /** The last poll's time, from the coordinator's presence or D1's copy; null for a host never seen. */
  lastSeenAt: string | null;
  /** The agent version of the host's latest report; null without one. */
  agentVersion: string | null;
}

/**
 * Hosts not seen for longer than `thresholdMinutes`. The id holds the last-seen time, which stays
 * the same for the whole offline spell: the cron publishes the same fact every 5 minutes and it is
 * delivered once; the host's next spell has a new last-seen time, hence a new notification.
 */
export function hostOfflineEvents(hosts: readonly HostFacts[], thresholdMinutes: number, dashboardUrl: unknown, now: Date): NotificationEvent[] {
  const events: NotificationEvent[] = [];
  for (const host of hosts) {
    if (host.online || host.lastSeenAt === null) continue;
    const seen = Date.parse(host.lastSeenAt);
    if (Number.isNaN(seen)) continue;
    if (now.getTime() - seen <= thresholdMinutes * 60_000) continue;
    events.push({
      id: `host-offline:${host.name}:${host.lastSeenAt}`,
      event: "host-offline",
      at: now.toISOString(),
      title: `${host.name} is offline`,
      text: `${host.name} has not polled for ${roughDuration(now.getTime() - seen, "long")} (last seen ${host.lastSeenAt}).`,
      url: dashboardLink(dashboardUrl, hostPagePath(host.name)),
      host: host.name,
      details: { lastSeenAt: host.lastSeenAt, thresholdMinutes },
    });
  }
  return events;
}

/**
 * Hosts whose agent is older than the control plane's (the Agent compartment's rule, common/compartments.ts):
 * once per host and release, so the next release tells again.
 */
export function agentOutdatedEvents(hosts: readonly HostFacts[], expectedVersion: string, dashboardUrl: unknown, now: Date): NotificationEvent[] {
  if (semver.valid(expectedVersion) === null) return [];
  const events: NotificationEvent[] = [];
  for (const host of hosts) {
    if (host.agentVersion === null || semver.valid(host.agentVersion) === null) continue;
    if (!semver.lt(host.agentVersion, expectedVersion)) continue;
    events.push({
      id: `agent-outdated:${host.name}:${expectedVersion}`,
      event: "agent-outdated",
      at: now.toISOString(),
      title: `${host.name} runs agent ${host.agentVersion}, ${expectedVersion} is out`,
      text: `The agent on ${host.name} (${host.agentVersion}) is older than the control plane's ${expectedVersion}: Pull + Switch updates it once the config repository's flake.lock has the new release.`,
      url: dashboardLink(dashboardUrl, hostPagePath(host.name)),
      host: host.name,
      details: { agentVersion: host.agentVersion, expectedVersion },
    });
  }
  return events;
}

/** What Send test sends: the channel's first event (or rollout-succeeded), marked as a test. */
export function testEvent(events: readonly NotificationEventName[] | undefined, deliveryId: string, actor: string, dashboardUrl: unknown, now: Date): NotificationEvent {
  return {
    id: `test:${deliveryId}`,
    event: events?.[0] ?? "rollout-succeeded",
    at: now.toISOString(),
    title: "NixFleet test notification",
    text: `Sent by ${actor} with Send test. Real notifications of this channel look like this one.`,
    url: dashboardLink(dashboardUrl, ""),
    details: { test: true },
  };
}
