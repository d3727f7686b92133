import * as z from "zod";
import { HostName, Sha1 } from "./hosts.ts";

// ---------------------------------------------------------------------------
// Notifications (worker/notifications/, delivered by the Notifier object)

export const NOTIFICATION_EVENTS = [
  "update-pr-opened",
  "ci-failed",
  "merge-scheduled",
  "merged",
  "rollout-started",
  "rollout-succeeded",
  "rollout-failed",
  "revert-opened",
  "host-offline",
  "agent-outdated",
  /** GitHub refused an automatic merge (a conflict, a moved head): not retried. */
  "merge-failed",
  /** A host's incidents (worker/notifications/incidents.ts): once per incident, and one recovery. */
  "host-red",
  "tests-failed",
  /** A host's store or /boot has less free than `alerts.diskLowBelowBytes` (an incident like host-red). */
  "disk-low",
  "host-recovered",
] as const;
export const NotificationEventName = z.enum(NOTIFICATION_EVENTS);
export type NotificationEventName = z.infer<typeof NotificationEventName>;

/**
 * What `GET /api/settings` shows in place of a stored secret (a channel's URL,
 * the webhook's signing secret, an ntfy token). A `PUT` that sends it back for
 * a channel with the same `id` keeps the stored value.
 */
export const SECRET_PLACEHOLDER = "********";

const HttpUrl = z.url({ protocol: /^https?$/, error: "not an http(s) URL" }).max(2000);
const SecretOrKept = <T extends z.ZodType<string>>(schema: T) => z.union([z.literal(SECRET_PLACEHOLDER), schema]);
/** A channel's stable id: Send test, the delivery log and kept secrets refer to it. */
export const ChannelId = z.string().regex(/^ch_[A-Za-z0-9_-]{4,40}$/, "not a channel id (ch_…)");
/** The channel kinds, with `id` as given (required where channels are stored, optional where they are submitted). */
const channelSchema = <Id extends z.ZodType<string | undefined>>(id: Id) => {
  const common = {
    id,
    name: z.string().trim().max(80).optional(),
    /** The events this channel gets; absent = every event. */
    events: z.array(NotificationEventName).min(1).optional(),
    /** Shown in GET answers instead of the URL itself: scheme, host and the URL's last 4 characters. */
    urlHint: z.string().max(200).optional(),
  };
  return z.discriminatedUnion("kind", [
    z.strictObject({
      kind: z.literal("webhook"),
      ...common,
      url: SecretOrKept(HttpUrl),
      /** HMAC-SHA256 key for `X-NixFleet-Signature-256: sha256=<hex>` of the raw body. */
      secret: SecretOrKept(z.string().min(16, "a signing secret needs at least 16 characters").max(200)).optional(),
    }),
    z.strictObject({ kind: z.literal("slack"), ...common, url: SecretOrKept(HttpUrl) }),
    z.strictObject({ kind: z.literal("discord"), ...common, url: SecretOrKept(HttpUrl) }),
    z.strictObject({
      kind: z.literal("ntfy"),
      ...common,
      /** The topic URL, e.g. https://ntfy.sh/my-fleet. */
      url: SecretOrKept(HttpUrl),
      token: SecretOrKept(z.string().min(1).max(200)).optional(),
    }),
  ]);
};
// Pure: the dashboard's first paint, which never reads them, drops them and zod with them (scripts/build-ui.mjs).
export const NotificationChannel = /* @__PURE__ */ channelSchema(ChannelId);
/** A channel in `PUT /api/settings`: without an `id` it is a new channel and the Worker assigns one. */
export const SubmittedChannel = /* @__PURE__ */ channelSchema(/* @__PURE__ */ ChannelId.optional());
export type SubmittedChannel = z.infer<typeof SubmittedChannel>;
export type NotificationChannel = z.infer<typeof NotificationChannel>;

/** One thing that happened, as every channel is told about it (the generic webhook's body is exactly this). */
export const NotificationEvent = z.object({
  /** Idempotency key: the same fact published twice is delivered once ("ci-failed:12:<sha>"). */
  id: z.string().min(1).max(200),
  event: NotificationEventName,
  at: z.string(),
  /** One line: "CI failed on update PR #12". */
  title: z.string().max(300),
  /** The rest, plain text, a few lines at most. */
  text: z.string().max(4000),
  /** Where to look: the PR, the rollout, the host's page. */
  url: z.string().nullable(),
  pr: z.number().int().positive().optional(),
  rolloutId: z.string().optional(),
  host: HostName.optional(),
  commit: Sha1.optional(),
  details: z.record(z.string(), z.unknown()).default({}),
});
export type NotificationEvent = z.infer<typeof NotificationEvent>;

export const NotificationDelivery = z.object({
  id: z.string(),
  channelId: z.string(),
  channelKind: z.enum(["webhook", "slack", "discord", "ntfy"]),
  event: NotificationEventName,
  eventId: z.string(),
  title: z.string(),
  /** `test` deliveries come from Send test. */
  test: z.boolean(),
  state: z.enum(["pending", "retrying", "delivered", "failed"]),
  attempts: z.number().int().nonnegative(),
  /** HTTP status of the last attempt, null when it never got one. */
  lastStatus: z.number().int().nullable(),
  lastError: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
  nextAttemptAt: z.string().nullable(),
});
export type NotificationDelivery = z.infer<typeof NotificationDelivery>;

/** The events that open an incident on a host; `host-recovered` closes one (worker/notifications/incidents.ts). */
export const INCIDENT_EVENTS = ["host-red", "tests-failed", "disk-low"] as const satisfies readonly NotificationEventName[];
export type IncidentEvent = (typeof INCIDENT_EVENTS)[number];

/** How long a host's state must hold before its incident opens or closes (docs/notifications in docs/rollouts.md, "Alerts"). */
export const AlertSettings = z.strictObject({
  /** A red that clears sooner than this sends nothing; 0 = alert at the first red. */
  alertAfterSeconds: z.number().int().nonnegative().max(24 * 3600).default(0),
  /** The host must stay clear this long before its one recovery is sent: a flapping host stays in one incident. */
  recoverAfterSeconds: z.number().int().nonnegative().max(24 * 3600).default(300),
  /** A host that turns red this long after a rollout switched it is linked to that rollout in the Update history. */
  rolloutLinkHours: z.number().positive().max(30 * 24).default(24),
  /** A host whose store or /boot has less free than this is warned about (dashboard) and sends `disk-low`; 1 GiB. */
  diskLowBelowBytes: z.number().int().nonnegative().default(1024 ** 3),
});
export type AlertSettings = z.infer<typeof AlertSettings>;

/** In the Update history: a host that turned red within `rolloutLinkHours` after the rollout switched it. */
export const RolloutIncident = z.object({
  rolloutId: z.string(),
  host: HostName,
  event: z.enum(INCIDENT_EVENTS),
  /** When the incident opened (the alert). */
  at: z.string(),
  /** When the rollout switched the host. */
  switchedAt: z.string(),
  reason: z.string(),
});
export type RolloutIncident = z.infer<typeof RolloutIncident>;
