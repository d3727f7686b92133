/**
 * What each kind of channel is sent for an event: pure (WebCrypto for the signature), so every
 * payload shape is tested in Node and the Notifier object only does the sending.
 */
import {
  SECRET_PLACEHOLDER,
  type NotificationChannel,
  type NotificationEvent,
  type NotificationEventName,
} from "../../common/protocol.ts";
import { NIXFLEET_VERSION } from "../../common/version.ts";

export interface OutboundRequest {
  url: string;
  method: "POST";
  headers: Record<string, string>;
  body: string;
}

export const SIGNATURE_HEADER = "X-NixFleet-Signature-256";
export const EVENT_HEADER = "X-NixFleet-Event";
export const DELIVERY_HEADER = "X-NixFleet-Delivery";
const USER_AGENT = `NixFleet-Notifier/${NIXFLEET_VERSION}`;

type Tone = "failure" | "success" | "info";

/** How each event looks on a phone or in a chat: failures loud, the rest quiet. */
export const EVENT_STYLE: Record<NotificationEventName, { tone: Tone; ntfyPriority: 1 | 2 | 3 | 4 | 5; tags: string[] }> = {
  "update-pr-opened": { tone: "info", ntfyPriority: 3, tags: ["package"] },
  "ci-failed": { tone: "failure", ntfyPriority: 4, tags: ["x"] },
  "merge-scheduled": { tone: "info", ntfyPriority: 2, tags: ["hourglass_flowing_sand"] },
  merged: { tone: "info", ntfyPriority: 3, tags: ["twisted_rightwards_arrows"] },
  "merge-failed": { tone: "failure", ntfyPriority: 4, tags: ["no_entry"] },
  "rollout-started": { tone: "info", ntfyPriority: 3, tags: ["rocket"] },
  "rollout-succeeded": { tone: "success", ntfyPriority: 3, tags: ["white_check_mark"] },
  "rollout-failed": { tone: "failure", ntfyPriority: 5, tags: ["rotating_light"] },
  "revert-opened": { tone: "failure", ntfyPriority: 4, tags: ["leftwards_arrow_with_hook"] },
  "host-offline": { tone: "failure", ntfyPriority: 4, tags: ["electric_plug"] },
  "agent-outdated": { tone: "info", ntfyPriority: 2, tags: ["arrow_up"] },
  "host-red": { tone: "failure", ntfyPriority: 4, tags: ["red_circle"] },
  "tests-failed": { tone: "failure", ntfyPriority: 4, tags: ["test_tube"] },
  "disk-low": { tone: "failure", ntfyPriority: 4, tags: ["floppy_disk"] },
  "host-recovered": { tone: "success", ntfyPriority: 3, tags: ["green_circle"] },
};

/** Discord's embed colours (decimal RGB). */
const DISCORD_COLOR: Record<Tone, number> = { failure: 0xd73a49, success: 0x2da44e, info: 0x0969da };

/** Discord's limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits). */
export const DISCORD_LIMITS = { content: 2000, embedTitle: 256, embedDescription: 4096, footer: 2048, total: 6000 } as const;
/** Slack's limits on a section's text and on a header (https://api.slack.com/reference/block-kit/blocks). */
export const SLACK_LIMITS = { sectionText: 3000, fallbackText: 4000 } as const;

/** Cuts to at most `max` characters (code points, so no half surrogate), marking the cut. */
export function clip(text: string, max: number): string {
  const chars = [...text];
  if (chars.length <= max) return text;
  return `${chars.slice(0, Math.max(0, max - 1)).join("")}…`;
}

function hex(bytes: ArrayBuffer): string {
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** `sha256=<hex HMAC-SHA256 of body keyed with secret>`, as GitHub signs its webhooks. */
export async function signBody(secret: string, body: string): Promise<string> {
  const encoder = new TextEncoder();
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return `sha256=${hex(await crypto.subtle.sign("HMAC", key, encoder.encode(body)))}`;
}

/** A stored secret shown as the placeholder was never filled in: sending to "********" would only fail later and less clearly. */
function real(value: string, what: string): string {
  if (value === SECRET_PLACEHOLDER) throw new Error(`the channel's ${what} is not set`);
  return value;
}

/** The generic webhook: the body is exactly the event, signed when the channel has a secret. */
export async function webhookRequest(
  channel: Extract<NotificationChannel, { kind: "webhook" }>,
  event: NotificationEvent,
  deliveryId: string,
): Promise<OutboundRequest> {
  const body = JSON.stringify(event);
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "user-agent": USER_AGENT,
    [EVENT_HEADER]: event.event,
    [DELIVERY_HEADER]: deliveryId,
  };
  if (channel.secret !== undefined) headers[SIGNATURE_HEADER] = await signBody(real(channel.secret, "signing secret"), body);
  return { url: real(channel.url, "URL"), method: "POST", headers, body };
}

/** Slack's mrkdwn treats these three as control characters (https://api.slack.com/reference/surfaces/formatting#escaping). */
const slackEscape = (text: string): string => text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");

/** A Slack incoming webhook: `text` is the notification's fallback, the blocks what the channel shows. */
export function slackBody(event: NotificationEvent): Record<string, unknown> {
  const title = event.url === null ? `*${slackEscape(event.title)}*` : `*<${event.url}|${slackEscape(event.title)}>*`;
  const section = clip(event.text === "" ? title : `${title}\n${slackEscape(event.text)}`, SLACK_LIMITS.sectionText);
  const blocks: Record<string, unknown>[] = [
    { type: "section", text: { type: "mrkdwn", text: section } },
    { type: "context", elements: [{ type: "mrkdwn", text: `NixFleet · ${event.event} · ${event.at}` }] },
  ];
  if (event.url !== null) {
    blocks.push({ type: "actions", elements: [{ type: "button", text: { type: "plain_text", text: "Open in NixFleet" }, url: event.url }] });
  }
  return { text: clip(event.text === "" ? event.title : `${event.title}\n${event.text}`, SLACK_LIMITS.fallbackText), blocks };
}

/** A Discord webhook: the title as the message, the rest in one embed; mentions in the text never ping anyone. */
export function discordBody(event: NotificationEvent): Record<string, unknown> {
  const footer = clip(`NixFleet · ${event.event}`, DISCORD_LIMITS.footer);
  const embedTitle = clip(event.title, DISCORD_LIMITS.embedTitle);
  const content = clip(event.title, DISCORD_LIMITS.content);
  // The embed's characters count toward 6,000 together with the content's.
  const room = DISCORD_LIMITS.total - [...content].length - [...embedTitle].length - [...footer].length;
  const description = clip(event.text, Math.min(DISCORD_LIMITS.embedDescription, room));
  const embed: Record<string, unknown> = {
    title: embedTitle,
    description,
    color: DISCORD_COLOR[EVENT_STYLE[event.event].tone],
    timestamp: event.at,
    footer: { text: footer },
  };
  if (event.url !== null) embed.url = event.url;
  return { content, embeds: [embed], allowed_mentions: { parse: [] } };
}

/** Header values are ISO-8859-1; ntfy reads RFC 2047 encoded words for anything else (https://docs.ntfy.sh/publish/#message-title). */
export function headerText(text: string): string {
  if (/^[\x20-\x7e]*$/.test(text)) return text;
  const bytes = new TextEncoder().encode(text);
  return `=?UTF-8?B?${btoa(String.fromCharCode(...bytes))}?=`;
}

/** ntfy: the text as the body; title, priority, tags and the click target as headers. */
export function ntfyRequest(channel: Extract<NotificationChannel, { kind: "ntfy" }>, event: NotificationEvent): OutboundRequest {
  const style = EVENT_STYLE[event.event];
  const headers: Record<string, string> = {
    "content-type": "text/plain; charset=utf-8",
    "user-agent": USER_AGENT,
    Title: headerText(clip(event.title, 250)),
    Priority: String(style.ntfyPriority),
    Tags: [...style.tags, "nixfleet"].join(","),
  };
  if (event.url !== null) headers.Click = event.url;
  if (channel.token !== undefined) headers.Authorization = `Bearer ${real(channel.token, "access token")}`;
  return { url: real(channel.url, "topic URL"), method: "POST", headers, body: event.text === "" ? event.title : event.text };
}

/** The one HTTP request a channel is sent for an event. Throws when the channel lacks a value it needs. */
export async function buildRequest(channel: NotificationChannel, event: NotificationEvent, deliveryId: string): Promise<OutboundRequest> {
  switch (channel.kind) {
    case "webhook":
      return webhookRequest(channel, event, deliveryId);
    case "slack":
    case "discord": {
      const body = channel.kind === "slack" ? slackBody(event) : discordBody(event);
      return {
        url: real(channel.url, "URL"),
        method: "POST",
        headers: { "content-type": "application/json", "user-agent": USER_AGENT },
        body: JSON.stringify(body),
      };
    }
    case "ntfy":
      return ntfyRequest(channel, event);
  }
}

/** The secrets of a channel, so that an error text quoting one (a network error naming the URL) can be cleaned. */
export function channelSecrets(channel: NotificationChannel): string[] {
  const values = [channel.url];
  if (channel.kind === "webhook" && channel.secret !== undefined) values.push(channel.secret);
  if (channel.kind === "ntfy" && channel.token !== undefined) values.push(channel.token);
  return values.filter((value) => value !== SECRET_PLACEHOLDER && value.length > 0);
}

/** `text` with every secret of the channel (and its URL's path and query, which carry Slack's and Discord's tokens) blanked. */
export function redact(text: string, channel: NotificationChannel): string {
  let out = text;
  for (const secret of channelSecrets(channel)) out = out.split(secret).join("[redacted]");
  try {
    const url = new URL(channel.url);
    const tail = `${url.pathname}${url.search}`;
    if (tail.length > 1) out = out.split(tail).join("/[redacted]");
  } catch {
    // The placeholder or a bad URL: nothing more to blank.
  }
  return out;
}
