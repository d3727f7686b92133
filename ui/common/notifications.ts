/** How the settings page shows notification deliveries: pure, tested in Node (test/ui/notifications.test.ts). */
import type { NotificationChannel, NotificationDelivery } from "../../common/protocol.ts";
import { formatDuration, plural } from "../../common/text.ts";

/** Each channel's deliveries, newest first, at most `perChannel` of them. */
export function deliveriesByChannel(
  channels: readonly NotificationChannel[],
  deliveries: readonly NotificationDelivery[],
  perChannel = 10,
): Map<string, NotificationDelivery[]> {
  const sorted = [...deliveries].sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id));
  const byChannel = new Map<string, NotificationDelivery[]>(channels.map((c) => [c.id, []]));
  for (const delivery of sorted) {
    const list = byChannel.get(delivery.channelId);
    if (list && list.length < perChannel) list.push(delivery);
  }
  return byChannel;
}

/** "Slack · hooks.slack.com/…abcd", or the channel's own name. */
export function channelLabel(channel: NotificationChannel): string {
  const kind = { webhook: "Webhook", slack: "Slack", discord: "Discord", ntfy: "ntfy" }[channel.kind];
  return channel.name ? `${channel.name} (${kind})` : `${kind} · ${channel.urlHint ?? channel.id}`;
}

/** "retrying · 2 tries · HTTP 500: busy · next try in 50 s". */
export function deliveryStatus(delivery: NotificationDelivery, now: number): string {
  const parts: string[] = [delivery.state, plural(delivery.attempts, "try", "tries")];
  if (delivery.lastError !== null) parts.push(delivery.lastError);
  else if (delivery.lastStatus !== null) parts.push(`HTTP ${delivery.lastStatus}`);
  if (delivery.state === "retrying" && delivery.nextAttemptAt !== null) {
    const wait = Date.parse(delivery.nextAttemptAt) - now;
    parts.push(wait > 0 ? `next try in ${formatDuration(wait)}` : "next try now");
  }
  return parts.join(" · ");
}

/** While a delivery may still change, the log is read again soon. */
export const stillMoving = (deliveries: readonly NotificationDelivery[]): boolean =>
  deliveries.some((d) => d.state === "pending" || d.state === "retrying");
