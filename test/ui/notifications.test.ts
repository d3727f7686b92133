/** The settings page's notification deliveries: grouped per channel newest first, their status lines, when to read again; the API calls. */
import { describe, expect, it } from "vitest";
import type { NotificationChannel, NotificationDelivery } from "../../common/protocol.ts";
import { channelLabel, deliveriesByChannel, deliveryStatus, stillMoving } from "../../ui/common/notifications.ts";
import { ApiError, DashboardApi } from "../../ui/data/api.ts";
import { notificationDeliveries, sendTestNotification } from "../../ui/data/notifications.ts";

const channels: NotificationChannel[] = [
  { kind: "slack", id: "ch_slack", url: "********", urlHint: "https://hooks.slack.com/…abcd" },
  { kind: "ntfy", id: "ch_ntfy", name: "Phone", url: "********" },
];

function delivery(over: Partial<NotificationDelivery>): NotificationDelivery {
  return {
    id: "nd_1",
    channelId: "ch_slack",
    channelKind: "slack",
    event: "rollout-failed",
    eventId: "rollout-failed:ro_1",
    title: "Rollout failed",
    test: false,
    state: "delivered",
    attempts: 1,
    lastStatus: 200,
    lastError: null,
    createdAt: "2026-12-01T10:00:00.000Z",
    updatedAt: "2026-12-01T10:00:01.000Z",
    nextAttemptAt: null,
    ...over,
  };
}

describe("the delivery log per channel", () => {
  it("groups by channel, newest first, at most N each, ignoring channels no longer configured", () => {
    const grouped = deliveriesByChannel(
      channels,
      [
        delivery({ id: "nd_a", createdAt: "2026-12-01T09:00:00.000Z" }),
        delivery({ id: "nd_b", createdAt: "2026-12-01T11:00:00.000Z" }),
        delivery({ id: "nd_c", createdAt: "2026-12-01T10:00:00.000Z" }),
        delivery({ id: "nd_d", channelId: "ch_ntfy", channelKind: "ntfy" }),
        delivery({ id: "nd_e", channelId: "ch_gone" }),
      ],
      2,
    );
    expect([...grouped.keys()]).toEqual(["ch_slack", "ch_ntfy"]);
    expect(grouped.get("ch_slack")!.map((d) => d.id)).toEqual(["nd_b", "nd_c"]);
    expect(grouped.get("ch_ntfy")!.map((d) => d.id)).toEqual(["nd_d"]);
  });

  it("labels a channel by its name or its kind and URL hint, never its URL", () => {
    expect(channelLabel(channels[0]!)).toBe("Slack · https://hooks.slack.com/…abcd");
    expect(channelLabel(channels[1]!)).toBe("Phone (ntfy)");
  });

  it("says the state, the tries, the last status or error and the next try", () => {
    const now = Date.parse("2026-12-01T10:00:10.000Z");
    expect(deliveryStatus(delivery({}), now)).toBe("delivered · 1 try · HTTP 200");
    expect(deliveryStatus(delivery({ state: "retrying", attempts: 2, lastStatus: 500, lastError: "HTTP 500: busy", nextAttemptAt: "2026-12-01T10:01:00.000Z" }), now)).toBe(
      "retrying · 2 tries · HTTP 500: busy · next try in 50 s",
    );
    expect(deliveryStatus(delivery({ state: "failed", attempts: 3, lastStatus: null, lastError: "connect failed" }), now)).toBe("failed · 3 tries · connect failed");
    expect(deliveryStatus(delivery({ state: "pending", attempts: 0, lastStatus: null }), now)).toBe("pending · 0 tries");
  });

  it("reads again soon only while a delivery may still change", () => {
    expect(stillMoving([delivery({})])).toBe(false);
    expect(stillMoving([delivery({}), delivery({ state: "retrying" })])).toBe(true);
    expect(stillMoving([delivery({ state: "pending" })])).toBe(true);
  });
});

describe("the notifications API as the dashboard calls it", () => {
  it("reads the log and sends a test, parsing the answers; a refusal is an ApiError", async () => {
    const asked: string[] = [];
    const api = new DashboardApi({
      fetch: async (input, init) => {
        const url = String(input);
        asked.push(`${init?.method} ${url}`);
        if (url.startsWith("/api/notifications/deliveries")) return Response.json({ deliveries: [delivery({})] });
        if (url === "/api/notifications/channels/ch_slack/test") return Response.json({ delivery: delivery({ test: true }) });
        return Response.json({ error: { code: "channel_not_found", message: "no notification channel ch_nope" } }, { status: 404 });
      },
    });
    expect(await notificationDeliveries(api, 50)).toEqual([delivery({})]);
    expect((await sendTestNotification(api, "ch_slack")).test).toBe(true);
    const refused = await sendTestNotification(api, "ch_nope").catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ApiError);
    expect(refused).toMatchObject({ status: 404, code: "channel_not_found" });
    expect(asked).toEqual(["GET /api/notifications/deliveries?limit=50", "POST /api/notifications/channels/ch_slack/test", "POST /api/notifications/channels/ch_nope/test"]);
  });

  it("refuses an answer that breaks the protocol", async () => {
    const api = new DashboardApi({ fetch: async () => Response.json({ deliveries: [{ id: 1 }] }) });
    await expect(notificationDeliveries(api)).rejects.toMatchObject({ code: "bad_response" });
  });
});
