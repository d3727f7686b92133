/**
 * The publishers the 5-minute cron runs: hosts offline longer than the threshold and agents older
 * than the control plane's release. The rules are in events.ts; the Notifier drops a fact it was
 * told before, so each is delivered once however many runs see it.
 */
import { NIXFLEET_VERSION } from "../../common/version.ts";
import type { NotificationEvent } from "../../common/protocol.ts";
import { coordinator } from "../coordinator.ts";
import type { Database } from "../db/client.ts";
import { listHosts } from "../db/hosts.ts";
import { listReports } from "../db/reports.ts";
import type { WorkerEnv } from "../env.ts";
import { notifier } from "../notifier.ts";
import { agentOutdatedEvents, hostOfflineEvents, hostOfflineMinutes, type HostFacts } from "./events.ts";

/** What the cron publishes now: presence from the coordinator (its memory), else D1's last-seen copy. */
export async function hostNotifications(env: WorkerEnv, db: Database, now: Date): Promise<NotificationEvent[]> {
  const [hosts, reports, live] = await Promise.all([listHosts(db), listReports(db), coordinator(env).fleetLive(0)]);
  const facts: HostFacts[] = hosts.map((host) => {
    const presence = live.presence[host.id];
    return {
      name: host.name,
      online: presence?.online ?? false,
      lastSeenAt: presence?.lastSeenAt ?? host.lastSeenAt,
      agentVersion: reports.get(host.id)?.report.agentVersion ?? null,
    };
  });
  return [
    ...hostOfflineEvents(facts, hostOfflineMinutes(env.HOST_OFFLINE_NOTIFY_MINUTES), env.DASHBOARD_URL, now),
    ...agentOutdatedEvents(facts, NIXFLEET_VERSION, env.DASHBOARD_URL, now),
  ];
}

/** The cron's part: every host fact published; a failure is logged and the next run tries again. */
export async function publishHostNotifications(env: WorkerEnv, db: Database, now = new Date()): Promise<void> {
  try {
    const events = await hostNotifications(env, db, now);
    const stub = notifier(env);
    for (const event of events) {
      const outcome = await stub.publish(event);
      if (!outcome.ok) console.error("host notification refused", event.id, outcome.message);
    }
  } catch (error) {
    console.error("host notifications: not published this run", error);
  }
}
