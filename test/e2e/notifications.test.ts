/**
 * Notifications end to end: the control plane on `wrangler dev` (the real Notifier object and its
 * alarm) and local HTTP receivers, one per channel kind. A rollout's start reaches the generic
 * webhook (its signature verified here with node:crypto), Slack, Discord and ntfy, each in its own
 * shape; a receiver answering 500 twice then 200 gets 3 tries and the delivery is delivered; one
 * always answering 500 gets 3 and it fails; an outdated agent is told once from the cron.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { NotificationDelivery, NotificationEvent, PROTOCOL_VERSION, RolloutView } from "../../common/protocol.ts";
import { buildReport } from "../compartments/builders.ts";
import { adminApi } from "../support/admin-api.ts";
import { startControlPlane, type ControlPlane } from "../support/control-plane.ts";
import { eventuallyWith } from "../support/wait.ts";
import { signatureValid, startWebhookReceiver, type ReceivedRequest, type WebhookReceiver } from "../support/webhook-receiver.ts";

vi.setConfig({ testTimeout: 90_000, hookTimeout: 150_000 });

const SIGNING_SECRET = "e2e-notification-signing-secret";
const NTFY_TOKEN = "tk_e2e-ntfy-token";
const DASHBOARD_URL = "https://fleet.example.test";

let cp: ControlPlane;
let receiver: WebhookReceiver;
let base: string;
let received: ReceivedRequest[];
/** Per path, the statuses to answer in turn (the last one repeated); 200 when none is set. */
const script: Record<string, number[]> = { "/flaky": [500, 500, 200], "/down": [500] };
const answered: Record<string, number> = {};

beforeAll(async () => {
  receiver = await startWebhookReceiver((path) => {
    const statuses = script[path] ?? [200];
    const n = (answered[path] = (answered[path] ?? 0) + 1);
    return statuses[Math.min(n, statuses.length) - 1]!;
  });
  base = receiver.url;
  received = receiver.received;
  const channels = [
    { kind: "webhook", id: "ch_hook", url: `${base}/hook`, secret: SIGNING_SECRET, events: ["rollout-started", "agent-outdated"] },
    { kind: "slack", id: "ch_slack", url: `${base}/slack/T000/B000/slack-secret-path`, events: ["rollout-started", "rollout-succeeded"] },
    { kind: "discord", id: "ch_discord", url: `${base}/discord/api/webhooks/1/discord-secret-path`, events: ["rollout-started"] },
    { kind: "ntfy", id: "ch_ntfy", url: `${base}/ntfy/fleet`, token: NTFY_TOKEN, events: ["rollout-started", "agent-outdated"] },
    { kind: "webhook", id: "ch_flaky", url: `${base}/flaky`, secret: SIGNING_SECRET, events: ["merged"] },
    { kind: "webhook", id: "ch_down", url: `${base}/down`, events: ["merged"] },
  ];
  cp = await startControlPlane({
    vars: { NOTIFICATION_CHANNELS: JSON.stringify(channels), NOTIFICATION_RETRY_SECONDS: "1,1", DASHBOARD_URL },
  });
});

afterAll(async () => {
  await cp?.stop();
  await receiver?.close();
});

const call = adminApi(() => cp.url);

const deliveries = async () => (await call(z.object({ deliveries: z.array(NotificationDelivery) }), "/api/notifications/deliveries?limit=500")).deliveries;

// A probe that throws fails the wait at once: nothing here throws on the way to an answer.
const eventually = eventuallyWith({
  timeoutMs: 45_000,
  intervalMs: 200,
  failFast: true,
  details: () => `received: ${received.map((r) => r.path).join(", ")}\n${cp.logs().slice(-3000)}`,
});

const at = (prefix: string) => received.filter((r) => r.path.startsWith(prefix));

describe("notifications through wrangler dev to real receivers", () => {
  it("a rollout's start reaches every kind of channel in its own shape, the webhook signed; its end the channel that wants it", async () => {
    await call(z.unknown(), "/api/hosts", { body: { name: "nt-e2e-a", platform: "nixos" } });
    // The one host has never polled: it is pending, and the rollout succeeds at once "with 1 pending".
    const { rollout } = await call(z.object({ rollout: RolloutView }), "/api/rollouts", { body: { commit: "a".repeat(40) } });
    await eventually("the rollout-started requests and Slack's rollout-succeeded", async () =>
      at("/hook").length >= 1 && at("/slack").length >= 2 && at("/discord").length >= 1 && at("/ntfy").length >= 1,
    );

    const hook = at("/hook")[0]!;
    const event = NotificationEvent.parse(JSON.parse(hook.body));
    expect(event).toMatchObject({ id: `rollout-started:${rollout.id}`, event: "rollout-started", rolloutId: rollout.id, commit: "a".repeat(40), url: `${DASHBOARD_URL}/rollouts` });
    expect(hook.headers["content-type"]).toBe("application/json");
    expect(hook.headers["x-nixfleet-event"]).toBe("rollout-started");
    expect(hook.headers["x-nixfleet-delivery"]).toMatch(/^nd_/);
    expect(signatureValid(SIGNING_SECRET, hook.body, hook.headers["x-nixfleet-signature-256"])).toBe(true);
    expect(signatureValid("another-secret-entirely", hook.body, hook.headers["x-nixfleet-signature-256"])).toBe(false);

    const slackBodies = at("/slack").map((r) => JSON.parse(r.body));
    const slack = slackBodies.find((b) => b.text.includes("started"));
    expect(slack.text).toContain(event.title);
    // Only Slack asked for rollout-succeeded.
    expect(slackBodies.find((b) => b.text.includes("succeeded")).text).toContain(`Rollout of ${"a".repeat(7)} succeeded`);
    // Each delivery is stored before it is sent: once this rollout's are all delivered, the log says every
    // request the receivers will ever get for it (the webhook, Discord and ntfy asked only for its start).
    const ofRollout = await eventually("this rollout's deliveries all delivered", async () => {
      const rows = (await deliveries()).filter((d) => d.eventId.endsWith(`:${rollout.id}`));
      return rows.length === 5 && rows.every((d) => d.state === "delivered") && rows;
    });
    expect(ofRollout.map((d) => `${d.channelId} ${d.event}`).sort()).toEqual(
      ["ch_discord rollout-started", "ch_hook rollout-started", "ch_ntfy rollout-started", "ch_slack rollout-started", "ch_slack rollout-succeeded"],
    );
    expect([at("/hook").length, at("/discord").length, at("/ntfy").length]).toEqual([1, 1, 1]);
    expect(slack.blocks[0]).toMatchObject({ type: "section", text: { type: "mrkdwn" } });
    expect(slack.blocks[0].text.text).toContain(`<${DASHBOARD_URL}/rollouts|`);

    const discord = JSON.parse(at("/discord")[0]!.body);
    expect(discord).toMatchObject({ content: event.title, allowed_mentions: { parse: [] } });
    expect(discord.embeds[0]).toMatchObject({ title: event.title, url: `${DASHBOARD_URL}/rollouts`, timestamp: event.at });

    const ntfy = at("/ntfy")[0]!;
    expect(ntfy.body).toBe(event.text);
    expect(ntfy.headers).toMatchObject({ title: event.title, priority: "3", tags: "rocket,nixfleet", click: `${DASHBOARD_URL}/rollouts`, authorization: `Bearer ${NTFY_TOKEN}` });

    const log = (await deliveries()).filter((d) => d.eventId === event.id);
    expect(log.map((d) => d.channelId).sort()).toEqual(["ch_discord", "ch_hook", "ch_ntfy", "ch_slack"]);
    expect(log.every((d) => d.state === "delivered" && d.attempts === 1 && d.lastStatus === 200)).toBe(true);
  });

  it("a receiver answering 500 twice, then 200: three tries of the same delivery, delivered", async () => {
    const { delivery } = await call(z.object({ delivery: NotificationDelivery }), "/api/notifications/channels/ch_flaky/test", { body: {} });
    expect(delivery).toMatchObject({ channelId: "ch_flaky", test: true, state: "retrying", attempts: 1, lastStatus: 500 });
    const done = await eventually("the third try", async () => (await deliveries()).find((d) => d.id === delivery.id && d.state !== "retrying"));
    expect(done).toMatchObject({ state: "delivered", attempts: 3, lastStatus: 200, lastError: null });
    const tries = at("/flaky");
    expect(tries).toHaveLength(3);
    expect(new Set(tries.map((t) => t.headers["x-nixfleet-delivery"]))).toEqual(new Set([delivery.id]));
    expect(tries.every((t) => signatureValid(SIGNING_SECRET, t.body, t.headers["x-nixfleet-signature-256"]))).toBe(true);
  });

  it("a receiver always answering 500: three tries, then failed, and no fourth", async () => {
    const { delivery } = await call(z.object({ delivery: NotificationDelivery }), "/api/notifications/channels/ch_down/test", { body: {} });
    const done = await eventually("the delivery's end", async () => (await deliveries()).find((d) => d.id === delivery.id && d.state === "failed"));
    expect(done).toMatchObject({ attempts: 3, lastStatus: 500, lastError: "HTTP 500: receiver is down", nextAttemptAt: null });
    // Twice the retry wait: a fourth try would have come by now.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(at("/down")).toHaveLength(3);
  });

  it("an outdated agent is told once, from the cron, however often it runs", async () => {
    const { token } = await call(z.object({ token: z.string() }), "/api/hosts", { body: { name: "nt-e2e-old", platform: "nixos" } });
    await call(z.unknown(), "/api/agent/poll?wait=0", {
      token,
      body: { protocol: PROTOCOL_VERSION, agentSession: "e2e-session", activeCommands: [], acks: [], report: buildReport({ hostname: "nt-e2e-old", agentVersion: "0.0.1" }) },
    });
    for (let run = 0; run < 2; run++) {
      const res = await fetch(`${cp.url}/cdn-cgi/local/scheduled?cron=${encodeURIComponent("*/5 * * * *")}`);
      expect(res.status).toBe(200);
    }
    const isOld = (r: ReceivedRequest) => r.body.includes("nt-e2e-old");
    await eventually("the agent-outdated notifications", async () => at("/hook").some(isOld) && at("/ntfy").some(isOld));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(at("/hook").filter(isOld)).toHaveLength(1);
    const ntfy = at("/ntfy").filter(isOld);
    expect(ntfy).toHaveLength(1);
    expect(ntfy[0]!.headers).toMatchObject({ priority: "2", tags: "arrow_up,nixfleet", click: `${DASHBOARD_URL}/hosts/nt-e2e-old` });
    expect(NotificationEvent.parse(JSON.parse(at("/hook").find(isOld)!.body))).toMatchObject({ event: "agent-outdated", host: "nt-e2e-old" });
  });

  it("no answer of the API carries a channel's URL, signing secret or token", async () => {
    const text = await (await fetch(`${cp.url}/api/notifications/deliveries?limit=500`)).text();
    expect(text).toContain("ch_hook");
    for (const secret of [SIGNING_SECRET, NTFY_TOKEN, "slack-secret-path", "discord-secret-path", base]) expect(text).not.toContain(secret);
  });
});
