/**
 * The notifications API as the settings page calls it. Apart from api.ts so that its schemas load
 * with the page that needs them, not with the dashboard's first paint.
 */
import * as z from "zod";
import { NotificationDelivery } from "../../common/protocol.ts";
import type { DashboardApi } from "./api.ts";

export const DeliveriesResponse = z.object({ deliveries: z.array(NotificationDelivery) });
export const DeliveryResponse = z.object({ delivery: NotificationDelivery });

/** The newest notification deliveries first (every channel). */
export async function notificationDeliveries(api: DashboardApi, limit = 100): Promise<NotificationDelivery[]> {
  return (await api.request(DeliveriesResponse, "GET", `/api/notifications/deliveries?limit=${limit}`)).deliveries;
}

/** Sends a test notification to one channel; the answer is the delivery after its first try. */
export async function sendTestNotification(api: DashboardApi, channelId: string): Promise<NotificationDelivery> {
  return (await api.request(DeliveryResponse, "POST", `/api/notifications/channels/${encodeURIComponent(channelId)}/test`, {})).delivery;
}
