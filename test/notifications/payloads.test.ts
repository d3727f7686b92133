/**
 * Each channel kind's request for an event, as the receiver sees it: the generic webhook's body is
 * exactly the event and its signature verifies with node:crypto; Slack's blocks, Discord's embed
 * within Discord's limits, ntfy's headers by event.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { describe, expect, it } from "vitest";
import { NotificationEvent, SECRET_PLACEHOLDER, type NotificationChannel } from "../../common/protocol.ts";
import {
  buildRequest,
  clip,
  DISCORD_LIMITS,
  discordBody,
  headerText,
  redact,
  SLACK_LIMITS,
  slackBody,
} from "../../worker/notifications/payloads.ts";

const event: NotificationEvent = NotificationEvent.parse({
  id: "rollout-failed:ro_abc",
  event: "rollout-failed",
  at: "2026-12-01T10:00:00.000Z",
  title: "Rollout of update PR #12 (abcdef0) failed on hsb0",
  text: "rollout ro_abc of abcdef0 failed: hsb0 — switch failed <exit 1> & more",
  url: "https://fleet.example.com/hosts/hsb0?command=cmd_1",
  pr: 12,
  rolloutId: "ro_abc",
  host: "hsb0",
  commit: "abcdef0".padEnd(40, "0"),
  details: { failure: { host: "hsb0" } },
});

const webhook: NotificationChannel = { kind: "webhook", id: "ch_hook", url: "https://hooks.example.com/in", secret: "a-signing-secret-of-32-characters" };

/** How a receiver verifies the header: HMAC-SHA256 of the raw body, compared in constant time. */
function verify(secret: string, rawBody: string, header: string): boolean {
  const expected = Buffer.from(`sha256=${createHmac("sha256", secret).update(rawBody).digest("hex")}`);
  const got = Buffer.from(header);
  return expected.length === got.length && timingSafeEqual(expected, got);
}

describe("the generic webhook", () => {
  it("sends exactly the event as JSON with the event and delivery headers", async () => {
    const request = await buildRequest(webhook, event, "nd_1");
    expect(request.url).toBe("https://hooks.example.com/in");
    expect(request.method).toBe("POST");
    expect(NotificationEvent.parse(JSON.parse(request.body))).toEqual(event);
    expect(JSON.parse(request.body)).toEqual(event);
    expect(request.headers["content-type"]).toBe("application/json");
    expect(request.headers["X-NixFleet-Event"]).toBe("rollout-failed");
    expect(request.headers["X-NixFleet-Delivery"]).toBe("nd_1");
  });

  it("signs the raw body so that node:crypto verifies it, and a changed body or key does not", async () => {
    const request = await buildRequest(webhook, event, "nd_1");
    const header = request.headers["X-NixFleet-Signature-256"]!;
    expect(header).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(verify("a-signing-secret-of-32-characters", request.body, header)).toBe(true);
    expect(verify("another-secret-of-32-characters!!", request.body, header)).toBe(false);
    expect(verify("a-signing-secret-of-32-characters", request.body.replace("hsb0", "hsb1"), header)).toBe(false);
  });

  it("is unsigned without a secret, and refuses a placeholder never filled in", async () => {
    const unsigned = await buildRequest({ kind: "webhook", id: "ch_hook", url: "https://hooks.example.com/in" }, event, "nd_2");
    expect(unsigned.headers["X-NixFleet-Signature-256"]).toBeUndefined();
    await expect(buildRequest({ ...webhook, secret: SECRET_PLACEHOLDER }, event, "nd_3")).rejects.toThrow(/signing secret is not set/);
    await expect(buildRequest({ ...webhook, url: SECRET_PLACEHOLDER }, event, "nd_3")).rejects.toThrow(/URL is not set/);
  });
});

describe("Slack", () => {
  it("has a fallback text and blocks whose title links to the event, mrkdwn escaped", async () => {
    const request = await buildRequest({ kind: "slack", id: "ch_slack", url: "https://hooks.slack.com/services/T/B/x" }, event, "nd_1");
    expect(request.url).toBe("https://hooks.slack.com/services/T/B/x");
    const body = JSON.parse(request.body);
    expect(body.text).toBe(`${event.title}\n${event.text}`);
    const [section, context, actions] = body.blocks;
    expect(section.type).toBe("section");
    expect(section.text.type).toBe("mrkdwn");
    expect(section.text.text).toContain(`*<${event.url}|${event.title}>*`);
    expect(section.text.text).toContain("switch failed &lt;exit 1&gt; &amp; more");
    expect(context.elements[0].text).toContain("rollout-failed");
    expect(actions.elements[0]).toMatchObject({ type: "button", url: event.url });
  });

  it("keeps a long text within a section's 3,000 characters, and has no button without a link", () => {
    const body = slackBody({ ...event, url: null, text: "x".repeat(4000) }) as { text: string; blocks: { type: string; text?: { text: string } }[] };
    expect([...body.blocks[0]!.text!.text].length).toBeLessThanOrEqual(SLACK_LIMITS.sectionText);
    expect(body.blocks.some((b) => b.type === "actions")).toBe(false);
    expect(body.blocks[0]!.text!.text.startsWith(`*${event.title}*`)).toBe(true);
  });
});

describe("Discord", () => {
  it("sends the title as content and one embed with the link, a red colour for a failure, no pings", async () => {
    const request = await buildRequest({ kind: "discord", id: "ch_disc", url: "https://discord.com/api/webhooks/1/t" }, event, "nd_1");
    const body = JSON.parse(request.body);
    expect(body.content).toBe(event.title);
    expect(body.allowed_mentions).toEqual({ parse: [] });
    expect(body.embeds).toHaveLength(1);
    expect(body.embeds[0]).toMatchObject({ title: event.title, description: event.text, url: event.url, color: 0xd73a49, timestamp: event.at });
    const success = discordBody({ ...event, event: "rollout-succeeded" }) as { embeds: { color: number }[] };
    expect(success.embeds[0]!.color).toBe(0x2da44e);
  });

  it("stays within Discord's limits for any length", () => {
    const long = { ...event, title: "t".repeat(300), text: "é".repeat(5000) };
    const body = discordBody(long) as { content: string; embeds: { title: string; description: string; footer: { text: string } }[] };
    const embed = body.embeds[0]!;
    expect([...body.content].length).toBeLessThanOrEqual(DISCORD_LIMITS.content);
    expect([...embed.title].length).toBeLessThanOrEqual(DISCORD_LIMITS.embedTitle);
    expect([...embed.description].length).toBeLessThanOrEqual(DISCORD_LIMITS.embedDescription);
    const total = [body.content, embed.title, embed.description, embed.footer.text].reduce((n, s) => n + [...s].length, 0);
    expect(total).toBeLessThanOrEqual(DISCORD_LIMITS.total);
    expect(embed.description.endsWith("…")).toBe(true);
  });
});

describe("ntfy", () => {
  const ntfy: NotificationChannel = { kind: "ntfy", id: "ch_ntfy", url: "https://ntfy.sh/my-fleet", token: "tk_secret" };

  it("posts the text to the topic with title, priority, tags, click and the token", async () => {
    const request = await buildRequest(ntfy, event, "nd_1");
    expect(request.url).toBe("https://ntfy.sh/my-fleet");
    expect(request.body).toBe(event.text);
    expect(request.headers).toMatchObject({
      Title: event.title,
      Priority: "5",
      Tags: "rotating_light,nixfleet",
      Click: event.url,
      Authorization: "Bearer tk_secret",
    });
  });

  it("gives failures a high priority and the rest a normal or low one", async () => {
    const priority = async (name: NotificationEvent["event"]) => (await buildRequest(ntfy, { ...event, event: name }, "nd")).headers.Priority;
    for (const failure of ["ci-failed", "rollout-failed", "host-offline", "revert-opened"] as const) expect(Number(await priority(failure))).toBeGreaterThanOrEqual(4);
    for (const quiet of ["rollout-started", "rollout-succeeded", "merged", "update-pr-opened"] as const) expect(await priority(quiet)).toBe("3");
    expect(await priority("agent-outdated")).toBe("2");
  });

  it("has no Authorization without a token and no Click without a link; a non-ASCII title is RFC 2047 encoded", async () => {
    const request = await buildRequest({ kind: "ntfy", id: "ch_ntfy", url: "https://ntfy.sh/my-fleet" }, { ...event, url: null, title: "Déploiement échoué" }, "nd");
    expect(request.headers.Authorization).toBeUndefined();
    expect(request.headers.Click).toBeUndefined();
    expect(request.headers.Title).toBe(`=?UTF-8?B?${Buffer.from("Déploiement échoué").toString("base64")}?=`);
    expect(headerText("plain")).toBe("plain");
  });
});

describe("secrets in error texts", () => {
  it("blanks the URL's path (where Slack and Discord keep their tokens), the signing secret and the token", () => {
    const slack: NotificationChannel = { kind: "slack", id: "ch_s", url: "https://hooks.slack.com/services/T1/B2/secretpart" };
    expect(redact("fetch failed for https://hooks.slack.com/services/T1/B2/secretpart", slack)).toBe("fetch failed for [redacted]");
    expect(redact("POST /services/T1/B2/secretpart: 404", slack)).toBe("POST /[redacted]: 404");
    expect(redact("bad key a-signing-secret-of-32-characters", webhook)).toBe("bad key [redacted]");
    expect(redact("token tk_secret refused", { kind: "ntfy", id: "ch_n", url: "https://ntfy.sh/t", token: "tk_secret" })).toBe("token [redacted] refused");
  });

  it("clips by code points and marks the cut", () => {
    expect(clip("abc", 3)).toBe("abc");
    expect(clip("abcd", 3)).toBe("ab…");
    expect(clip("😀😀😀😀", 3)).toBe("😀😀…");
  });
});
