/**
 * The Notifier Durable Object, real, inside workerd: its receivers are caught at fetch (the
 * network layer) and answer what each test scripts. Publishing is idempotent, deliveries are
 * retried from the alarm at most 3 times, an evicted object resumes its retries, the routes, and
 * no answer carries a channel's secret. Channels: NOTIFICATION_CHANNELS in vitest.config.ts.
 */
import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { NotificationChannel, NotificationDelivery, NotificationEvent } from "../../common/protocol.ts";
import { NIXFLEET_VERSION } from "../../common/version.ts";
import { openDatabase } from "../../worker/db/client.ts";
import { publishHostNotifications } from "../../worker/notifications/publish.ts";
import { api, createHost, poll, sampleReport } from "./helpers.ts";

const stub = () => env.NOTIFIER.getByName("fleet");
const channels = z.array(NotificationChannel).parse(JSON.parse(env.NOTIFICATION_CHANNELS ?? "[]"));
const channel = (id: string) => channels.find((c) => c.id === id)!;

interface Received {
  url: string;
  headers: Headers;
  body: string;
}

/** The receivers: every request recorded; `answer` decides the reply (200 unless a test says otherwise). */
const received: Received[] = [];
let answer: (request: Received) => Response | Promise<Response> = () => new Response("ok");
/** Where the test channels point (vitest.config.ts); every other request is the test pool's own and passes. */
const RECEIVERS = "http://127.0.0.1:9/";
const realFetch = globalThis.fetch;

beforeEach(() => {
  received.length = 0;
  answer = () => new Response("ok");
});
// For the whole file: a retry's alarm may fire between two tests, and must not reach the network.
beforeAll(() => {
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const request = new Request(input, init);
    if (!request.url.startsWith(RECEIVERS)) return realFetch(request);
    const got: Received = { url: request.url, headers: request.headers, body: await request.text() };
    received.push(got);
    return answer(got);
  });
});
afterAll(() => {
  vi.restoreAllMocks();
});

let serial = 0;
function event(over: Partial<NotificationEvent> = {}): NotificationEvent {
  serial++;
  return NotificationEvent.parse({
    id: `host-offline:hsb${serial}:2026-12-01T10:00:00.000Z`,
    event: "host-offline",
    at: new Date().toISOString(),
    title: `hsb${serial} is offline`,
    text: "hsb0 has not polled for 45 minutes",
    url: null,
    host: `hsb${serial}`,
    ...over,
  });
}

const DeliveriesAnswer = z.object({ deliveries: z.array(NotificationDelivery) });
async function deliveries(): Promise<NotificationDelivery[]> {
  const res = await api("/api/notifications/deliveries?limit=500");
  expect(res.status).toBe(200);
  return DeliveriesAnswer.parse(await res.json()).deliveries;
}
const ofEvent = async (eventId: string) => (await deliveries()).filter((d) => d.eventId === eventId);
/** The webhook channel's delivery of an event. */
const hookOf = async (eventId: string) => (await ofEvent(eventId)).find((d) => d.channelId === "ch_hook_hosts");
/** A request to the webhook receiver carrying this event (its body is the event). */
const toHook = (r: Received, e: NotificationEvent) => r.url.endsWith("/hook/in") && r.body.includes(e.id);
/** agent-outdated: the webhook and ntfy want it. */
const agentEvent = () => event({ id: `agent-outdated:hsb${++serial}:9.9.9`, event: "agent-outdated", title: `hsb${serial} runs agent 0.0.1` });

/** Makes every waiting delivery due now and runs the alarm, as the clock would a little later. */
async function nextTry(): Promise<void> {
  await runInDurableObject(stub(), (_instance, state) => {
    state.storage.sql.exec("UPDATE deliveries SET next_attempt_ms = ? WHERE next_attempt_ms IS NOT NULL", Date.now() - 1);
  });
  expect(await runDurableObjectAlarm(stub())).toBe(true);
}

async function hmacHex(secret: string, body: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return [...new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(body)))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

describe("publish", () => {
  it("stores one delivery per matching channel and returns before any is sent; the alarm sends them", async () => {
    const e = event();
    const published = await stub().publish(e);
    if (!published.ok) throw new Error(published.message);
    expect(published.duplicate).toBe(false);
    // host-offline: the webhook, Slack and Discord want it; ntfy wants only agent-outdated.
    expect(published.deliveries).toHaveLength(3);
    expect(received).toHaveLength(0);
    const stored = await ofEvent(e.id);
    expect(stored.map((d) => d.channelId).sort()).toEqual(["ch_discord_offline", "ch_hook_hosts", "ch_slack_offline"]);
    expect(stored.map((d) => [d.state, d.attempts, d.test])).toEqual(Array(3).fill(["pending", 0, false]));
    expect(await runInDurableObject(stub(), (_i, state) => state.storage.getAlarm())).not.toBeNull();

    expect(await runDurableObjectAlarm(stub())).toBe(true);
    expect(received.map((r) => new URL(r.url).pathname).sort()).toEqual(["/discord/api/webhooks/1/discord-url-token", "/hook/in", "/slack/T000/B000/slack-url-token"]);
    const after = await ofEvent(e.id);
    expect(after.map((d) => [d.state, d.attempts, d.lastStatus, d.lastError, d.nextAttemptAt])).toEqual(Array(3).fill(["delivered", 1, 200, null, null]));
  });

  it("the webhook gets exactly the event, signed with the channel's secret", async () => {
    const e = event();
    await stub().publish(e);
    await runDurableObjectAlarm(stub());
    const hook = received.find((r) => r.url.endsWith("/hook/in"))!;
    expect(JSON.parse(hook.body)).toEqual(e);
    const [delivery] = (await ofEvent(e.id)).filter((d) => d.channelId === "ch_hook_hosts");
    expect(hook.headers.get("x-nixfleet-event")).toBe("host-offline");
    expect(hook.headers.get("x-nixfleet-delivery")).toBe(delivery!.id);
    const hookChannel = channel("ch_hook_hosts");
    if (hookChannel.kind !== "webhook" || hookChannel.secret === undefined) throw new Error("the test webhook channel has a secret");
    expect(hook.headers.get("x-nixfleet-signature-256")).toBe(`sha256=${await hmacHex(hookChannel.secret, hook.body)}`);
  });

  it("the same fact published twice is delivered once", async () => {
    const e = event();
    const [first, second] = [await stub().publish(e), await stub().publish({ ...e, title: "told again" })];
    expect(first).toMatchObject({ ok: true, duplicate: false });
    expect(second).toEqual({ ok: true, duplicate: true, deliveries: [] });
    await runDurableObjectAlarm(stub());
    expect(await stub().publish(e)).toEqual({ ok: true, duplicate: true, deliveries: [] });
    expect((await ofEvent(e.id)).length).toBe(3);
    expect(received.filter((r) => r.url.endsWith("/hook/in"))).toHaveLength(1);
  });

  it("an event no channel wants stores nothing, and is remembered all the same", async () => {
    const quiet = event({ event: "merged", id: `merged:pr${++serial}` });
    const before = (await deliveries()).length;
    expect(await stub().publish(quiet)).toEqual({ ok: true, duplicate: false, deliveries: [] });
    expect(await stub().publish(quiet)).toEqual({ ok: true, duplicate: true, deliveries: [] });
    expect((await deliveries()).length).toBe(before);
    expect(await runDurableObjectAlarm(stub())).toBe(false);
  });

  it("refuses an event that is not one", async () => {
    const before = (await deliveries()).length;
    const refused = await stub().publish({ ...event(), event: "lunch" } as unknown as NotificationEvent);
    expect(refused).toMatchObject({ ok: false, status: 400, code: "invalid_event" });
    expect((await deliveries()).length).toBe(before);
  });
});

describe("retries", () => {
  it("a receiver answering 500 twice, then 200: three tries, 10 s then 60 s apart, delivered", async () => {
    const e = agentEvent();
    let calls = 0;
    answer = (r) => (!toHook(r, e) ? new Response("ok") : ++calls <= 2 ? new Response("busy", { status: 500 }) : new Response("ok"));
    await stub().publish(e);

    const t1 = Date.now();
    await runDurableObjectAlarm(stub());
    let d = await hookOf(e.id);
    expect(d).toMatchObject({ state: "retrying", attempts: 1, lastStatus: 500, lastError: "HTTP 500: busy" });
    const wait1 = Date.parse(d!.nextAttemptAt!) - t1;
    expect(wait1).toBeGreaterThanOrEqual(10_000);
    expect(wait1).toBeLessThan(15_000);
    // Not due yet: the alarm sends nothing.
    await runDurableObjectAlarm(stub());
    expect(calls).toBe(1);

    const t2 = Date.now();
    await nextTry();
    d = await hookOf(e.id);
    expect(d).toMatchObject({ state: "retrying", attempts: 2, lastStatus: 500 });
    const wait2 = Date.parse(d!.nextAttemptAt!) - t2;
    expect(wait2).toBeGreaterThanOrEqual(60_000);
    expect(wait2).toBeLessThan(65_000);

    await nextTry();
    d = await hookOf(e.id);
    expect(d).toMatchObject({ state: "delivered", attempts: 3, lastStatus: 200, lastError: null, nextAttemptAt: null });
    expect(calls).toBe(3);
  });

  it("a receiver always answering 500: three tries, then failed, and never a fourth", async () => {
    const e = agentEvent();
    answer = (r) => (toHook(r, e) ? new Response("down", { status: 503 }) : new Response("ok"));
    await stub().publish(e);
    await runDurableObjectAlarm(stub());
    await nextTry();
    await nextTry();
    const failed = { state: "failed", attempts: 3, lastStatus: 503, lastError: "HTTP 503: down", nextAttemptAt: null };
    expect(await hookOf(e.id)).toMatchObject(failed);
    // Later, with every other waiting delivery due and the alarm running, the failed one is not tried again.
    await runInDurableObject(stub(), async (_i, state) => {
      state.storage.sql.exec("UPDATE deliveries SET next_attempt_ms = ? WHERE next_attempt_ms IS NOT NULL", Date.now() - 1);
      await state.storage.setAlarm(Date.now());
    });
    expect(await runDurableObjectAlarm(stub())).toBe(true);
    expect(received.filter((r) => toHook(r, e))).toHaveLength(3);
    expect(await hookOf(e.id)).toMatchObject(failed);
  });

  it("a 4xx is final at once; a 429's Retry-After is honoured", async () => {
    const refused = agentEvent();
    answer = () => new Response("gone", { status: 410 });
    await stub().publish(refused);
    await runDurableObjectAlarm(stub());
    expect((await hookOf(refused.id))).toMatchObject({ state: "failed", attempts: 1, lastStatus: 410 });

    const limited = agentEvent();
    answer = () => new Response("slow down", { status: 429, headers: { "retry-after": "120" } });
    await stub().publish(limited);
    const t = Date.now();
    await runDurableObjectAlarm(stub());
    const d = await hookOf(limited.id);
    expect(d).toMatchObject({ state: "retrying", attempts: 1, lastStatus: 429 });
    expect(Date.parse(d!.nextAttemptAt!) - t).toBeGreaterThanOrEqual(120_000);
    expect(Date.parse(d!.nextAttemptAt!) - t).toBeLessThan(125_000);
  });

  it("an evicted object resumes its pending retries from storage and its alarm", async () => {
    const e = agentEvent();
    answer = () => new Response("busy", { status: 500 });
    await stub().publish(e);
    await runDurableObjectAlarm(stub());
    expect((await hookOf(e.id))).toMatchObject({ state: "retrying", attempts: 1 });

    await evictDurableObject(stub());
    expect(await runInDurableObject(stub(), (_i, state) => state.storage.getAlarm())).not.toBeNull();
    answer = () => new Response("ok");
    await nextTry();
    expect((await hookOf(e.id))).toMatchObject({ state: "delivered", attempts: 2, lastStatus: 200 });
  });

  it("a try cut off by a crash counts: the delivery is due again after its lease, and never gets a fourth try", async () => {
    const e = agentEvent();
    await stub().publish(e);
    const id = (await hookOf(e.id))!.id;
    // As a crash leaves it: the try counted and leased, its outcome never stored; the lease now over.
    const cutOff = (attempts: number) =>
      runInDurableObject(stub(), (_i, state) => {
        state.storage.sql.exec("UPDATE deliveries SET attempts = ?, state = 'retrying', next_attempt_ms = ? WHERE id = ?", attempts, Date.now() - 1, id);
      });
    await cutOff(1);
    await runDurableObjectAlarm(stub());
    expect(await hookOf(e.id)).toMatchObject({ state: "delivered", attempts: 2 });
    expect(received.filter((r) => toHook(r, e))).toHaveLength(1);

    await cutOff(3);
    await runInDurableObject(stub(), (_i, state) => state.storage.setAlarm(Date.now()));
    await runDurableObjectAlarm(stub());
    expect(await hookOf(e.id)).toMatchObject({ state: "failed", attempts: 3, lastError: "the last try was cut off before its answer", nextAttemptAt: null });
    expect(received.filter((r) => toHook(r, e))).toHaveLength(1);
  });

  it("a try without an answer (a network error) counts as a try and is retried", async () => {
    const e = agentEvent();
    answer = () => {
      throw new TypeError("Network connection lost.");
    };
    await stub().publish(e);
    await runDurableObjectAlarm(stub());
    expect((await hookOf(e.id))).toMatchObject({ state: "retrying", attempts: 1, lastStatus: null, lastError: "Network connection lost." });
  });
});

describe("secrets", () => {
  it("never appear in an answer, even when a network error quotes the URL", async () => {
    const e = event();
    answer = (request) => {
      throw new TypeError(`connect failed: ${request.url}`);
    };
    await stub().publish(e);
    await runDurableObjectAlarm(stub());
    const res = await api("/api/notifications/deliveries?limit=500");
    const text = await res.text();
    const errors = DeliveriesAnswer.parse(JSON.parse(text)).deliveries.filter((d) => d.eventId === e.id).map((d) => d.lastError);
    // host-offline: the webhook, Slack and Discord each tried once.
    expect(errors).toEqual(Array(3).fill(expect.stringMatching(/^connect failed: /)));
    for (const secret of ["slack-url-token", "discord-url-token", "test-notification-signing-secret", "tk_test-ntfy-token", "/hook/in", "127.0.0.1:9"]) {
      expect(text).not.toContain(secret);
    }
    const sent = await api("/api/notifications/channels/ch_ntfy_agents/test", { method: "POST" });
    const sentText = await sent.text();
    expect(sentText).not.toContain("tk_test-ntfy-token");
    expect(sentText).not.toContain("/ntfy/fleet");
  });
});

describe("the routes", () => {
  it("Send test delivers to one channel at once, answers the delivery, is audited and listed newest first", async () => {
    const res = await api("/api/notifications/channels/ch_ntfy_agents/test", { method: "POST" });
    expect(res.status).toBe(200);
    const { delivery } = z.object({ delivery: NotificationDelivery }).parse(await res.json());
    expect(delivery).toMatchObject({ channelId: "ch_ntfy_agents", channelKind: "ntfy", test: true, state: "delivered", attempts: 1, lastStatus: 200, event: "agent-outdated" });
    expect(received).toHaveLength(1);
    expect(received[0]!.headers.get("authorization")).toBe("Bearer tk_test-ntfy-token");
    expect(received[0]!.headers.get("title")).toBe("NixFleet test notification");
    expect((await deliveries())[0]!.id).toBe(delivery.id);

    const audit = await api("/api/audit");
    const entries = z.object({ entries: z.array(z.object({ action: z.string(), target: z.string().nullable(), details: z.unknown() })) }).parse(await audit.json()).entries;
    expect(entries.find((entry) => entry.action === "notification.test")).toMatchObject({ target: "ch_ntfy_agents", details: { delivery: delivery.id, state: "delivered" } });
  });

  it("Send test to a failing receiver answers the failed try and keeps retrying in the background", async () => {
    answer = () => new Response("nope", { status: 500 });
    const res = await api("/api/notifications/channels/ch_hook_hosts/test", { method: "POST" });
    expect(res.status).toBe(200);
    const { delivery } = z.object({ delivery: NotificationDelivery }).parse(await res.json());
    expect(delivery).toMatchObject({ state: "retrying", attempts: 1, lastStatus: 500, lastError: "HTTP 500: nope" });
    expect(received[0]!.headers.get("x-nixfleet-signature-256")).toMatch(/^sha256=[0-9a-f]{64}$/);
  });

  it("refuses an unknown channel (404) and a malformed id (400), sending nothing", async () => {
    const unknown = await api("/api/notifications/channels/ch_nope_nope/test", { method: "POST" });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: { code: "channel_not_found" } });
    const bad = await api("/api/notifications/channels/nope/test", { method: "POST" });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { code: "invalid_request" } });
    expect(received).toHaveLength(0);
    const limit = await api("/api/notifications/deliveries?limit=0");
    expect(limit.status).toBe(400);
  });
});

describe("host notifications from the cron", () => {
  it("a host offline longer than the threshold is told once; an outdated agent once per release", async () => {
    const gone = await createHost("nt-gone");
    const lastSeen = new Date(Date.now() - 45 * 60_000).toISOString();
    await env.DB.prepare("UPDATE hosts SET last_seen_at = ? WHERE id = ?").bind(lastSeen, gone.id).run();
    const old = await createHost("nt-old");
    expect((await poll(old.token, { report: sampleReport({ hostname: "nt-old", agentVersion: "0.0.1" }) }, 0)).status).toBe(200);

    const db = openDatabase(env.DB);
    await publishHostNotifications(env, db);
    await publishHostNotifications(env, db);
    const stored = (await deliveries()).filter((d) => d.eventId.includes("nt-gone") || d.eventId.includes("nt-old"));
    expect(stored.map((d) => `${d.eventId} → ${d.channelId}`).sort()).toEqual(
      [
        `agent-outdated:nt-old:${NIXFLEET_VERSION} → ch_hook_hosts`,
        `agent-outdated:nt-old:${NIXFLEET_VERSION} → ch_ntfy_agents`,
        `host-offline:nt-gone:${lastSeen} → ch_discord_offline`,
        `host-offline:nt-gone:${lastSeen} → ch_hook_hosts`,
        `host-offline:nt-gone:${lastSeen} → ch_slack_offline`,
      ].sort(),
    );
    await runDurableObjectAlarm(stub());
    const ntfy = received.filter((r) => r.url.endsWith("/ntfy/fleet"));
    expect(ntfy).toHaveLength(1);
    expect(ntfy[0]!.headers.get("title")).toMatch(/^nt-old runs agent 0\.0\.1/);
    expect(ntfy[0]!.headers.get("priority")).toBe("2");
    const discord = received.filter((r) => r.url.includes("/discord/"));
    expect(discord).toHaveLength(1);
    expect(JSON.parse(discord[0]!.body)).toMatchObject({ content: "nt-gone is offline" });
  });
});
