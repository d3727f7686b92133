/** Which channels hear about an event: pure, so the rule is tested without workerd. */
import type { NotificationChannel, NotificationEventName } from "../../common/protocol.ts";

/** A channel without `events` gets every event; one with a list gets only those. */
export function wantsEvent(channel: NotificationChannel, event: NotificationEventName): boolean {
  return channel.events === undefined || channel.events.includes(event);
}

export function channelsFor(channels: readonly NotificationChannel[], event: NotificationEventName): NotificationChannel[] {
  return channels.filter((channel) => wantsEvent(channel, event));
}
