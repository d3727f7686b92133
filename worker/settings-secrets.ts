/**
 * The stored settings' secrets: a notification channel's `url` (Slack, Discord and ntfy URLs carry their
 * token), the webhook's signing `secret` and the ntfy `token`. They are sealed with AES-GCM under the Worker
 * secret `SETTINGS_ENCRYPTION_KEY` before they reach D1, opened only on the server, and shown to the browser
 * as `SECRET_PLACEHOLDER` plus a hint. Pure: WebCrypto and zod, no I/O.
 */
import * as z from "zod";
import { NotificationChannel, NotificationEventName, SECRET_PLACEHOLDER, Settings } from "../common/protocol.ts";

export const SETTINGS_KEY_VARIABLE = "SETTINGS_ENCRYPTION_KEY";

/** The fields of a channel that are secrets. */
export const SECRET_FIELDS = ["url", "secret", "token"] as const;
export type SecretField = (typeof SECRET_FIELDS)[number];

/**
 * A sealed secret: `v1.<iv>.<ciphertext>` (base64), bound by AES-GCM's additional data to its channel and
 * field, so a sealed value copied into another channel or field does not open. `hint` is the url's hint,
 * kept beside it so showing the settings never needs the key.
 */
export const Sealed = z.strictObject({
  sealed: z.string().regex(/^v1\.[A-Za-z0-9+/]+=*\.[A-Za-z0-9+/]+=*$/, "not a sealed secret"),
  hint: z.string().max(200).optional(),
});
export type Sealed = z.infer<typeof Sealed>;

export const StoredChannel = z.strictObject({
  kind: z.enum(["webhook", "slack", "discord", "ntfy"]),
  id: z.string(),
  name: z.string().optional(),
  events: z.array(NotificationEventName).optional(),
  url: Sealed,
  secret: Sealed.optional(),
  token: Sealed.optional(),
});
export type StoredChannel = z.infer<typeof StoredChannel>;

/** The settings as D1 holds them: without `version` (a column of its own), the channels' secrets sealed. */
export const StoredSettings = Settings.omit({ version: true, notifications: true }).extend({
  notifications: z.array(StoredChannel).max(20).default([]),
});
export type StoredSettings = z.infer<typeof StoredSettings>;

/** Why a settings change is refused; the route answers with `status` and `code`. */
export class SettingsChangeError extends Error {
  readonly status: 400 | 503;
  readonly code: string;
  /** Where in the submitted settings, for the page to show the message beside the field. */
  readonly path: (string | number)[];
  constructor(status: 400 | 503, code: string, message: string, path: (string | number)[] = []) {
    super(message);
    this.name = "SettingsChangeError";
    this.status = status;
    this.code = code;
    this.path = path;
  }
}

const keyMissing = (path: (string | number)[]) =>
  new SettingsChangeError(
    503,
    "settings_key_missing",
    `a notification channel's secret can only be stored encrypted: set the Worker secret ${SETTINGS_KEY_VARIABLE} ` +
      `(\`openssl rand -base64 32 | wrangler secret put ${SETTINGS_KEY_VARIABLE}\`), then save again`,
    path,
  );

const toBase64 = (bytes: Uint8Array): string => btoa(String.fromCharCode(...bytes));
const fromBase64 = (text: string): Uint8Array<ArrayBuffer> => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

/**
 * The AES-GCM key from `SETTINGS_ENCRYPTION_KEY` (base64 of 16, 24 or 32 random bytes); null when unset.
 * A value that is set but unusable throws, naming the variable: silently storing nothing would lose secrets.
 */
export async function importSettingsKey(raw: string | undefined): Promise<CryptoKey | null> {
  if (raw === undefined || raw.trim() === "") return null;
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = fromBase64(raw.trim());
  } catch {
    throw new Error(`${SETTINGS_KEY_VARIABLE} is not base64 (make one with \`openssl rand -base64 32\`)`);
  }
  if (![16, 24, 32].includes(bytes.length)) {
    throw new Error(`${SETTINGS_KEY_VARIABLE} must be 16, 24 or 32 bytes in base64, got ${bytes.length} bytes (make one with \`openssl rand -base64 32\`)`);
  }
  return crypto.subtle.importKey("raw", bytes, "AES-GCM", false, ["encrypt", "decrypt"]);
}

const additionalData = (channelId: string, field: SecretField) => new TextEncoder().encode(`nixfleet-settings:${channelId}:${field}`);

export async function sealSecret(key: CryptoKey, clear: string, channelId: string, field: SecretField): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const data = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: additionalData(channelId, field) }, key, new TextEncoder().encode(clear));
  return `v1.${toBase64(iv)}.${toBase64(new Uint8Array(data))}`;
}

/** Throws when the key is not the one it was sealed with, or the value was moved or changed. */
export async function openSecret(key: CryptoKey, sealed: string, channelId: string, field: SecretField): Promise<string> {
  const [version, iv, data] = sealed.split(".");
  if (version !== "v1" || iv === undefined || data === undefined) throw new Error("not a sealed secret");
  const clear = await crypto.subtle.decrypt({ name: "AES-GCM", iv: fromBase64(iv), additionalData: additionalData(channelId, field) }, key, fromBase64(data));
  return new TextDecoder().decode(clear);
}

/** "https://hooks.slack.com/…Xy9z": enough to tell channels apart, never enough to use one. */
export function urlHint(url: string): string {
  const last4 = url.slice(-4);
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}/…${last4}`;
  } catch {
    return `…${last4}`;
  }
}

/** Clear settings as the browser may see them: every secret replaced by the placeholder, the url's hint set. */
export function redactSettings(settings: Settings): Settings {
  return {
    ...settings,
    notifications: settings.notifications.map((channel) => {
      const redacted: NotificationChannel = { ...channel, url: SECRET_PLACEHOLDER, urlHint: channel.url === SECRET_PLACEHOLDER ? channel.urlHint : urlHint(channel.url) };
      if ("secret" in redacted && redacted.secret !== undefined) redacted.secret = SECRET_PLACEHOLDER;
      if ("token" in redacted && redacted.token !== undefined) redacted.token = SECRET_PLACEHOLDER;
      return redacted;
    }),
  };
}

/** Stored settings as the browser may see them, without opening anything (so a lost key never hides the settings). */
export function redactStored(stored: StoredSettings, version: number): Settings {
  return {
    ...stored,
    version,
    notifications: stored.notifications.flatMap((channel) => {
      const redacted: Record<string, unknown> = { ...channel, url: SECRET_PLACEHOLDER };
      if (channel.url.hint !== undefined) redacted.urlHint = channel.url.hint;
      if (channel.secret) redacted.secret = SECRET_PLACEHOLDER;
      if (channel.token) redacted.token = SECRET_PLACEHOLDER;
      // Parsed, not cast: a stored channel that no longer fits today's schema is logged and left out.
      const parsed = NotificationChannel.safeParse(redacted);
      if (!parsed.success) console.error(`settings: stored notification channel ${channel.id} does not match today's schema; left out`);
      return parsed.success ? [parsed.data] : [];
    }),
  };
}

/**
 * Clear settings (the vars' defaults, which may name channels) sealed for storage. Needs the key only
 * when there is a secret to seal.
 */
export async function sealSettings(settings: Settings, key: CryptoKey | null): Promise<StoredSettings> {
  return sealChannels(settings, { notifications: [] }, key);
}

/**
 * The submitted settings made ready to store: a secret sent in clear is sealed (refused without a key),
 * `SECRET_PLACEHOLDER` keeps the value `previous` holds for the channel with the same id (refused when it
 * holds none), and a `urlHint` sent by the client is ignored (the server computes it).
 */
export async function sealChannels(
  submitted: Settings,
  previous: Pick<StoredSettings, "notifications">,
  key: CryptoKey | null,
): Promise<StoredSettings> {
  const { version: _version, notifications, ...rest } = submitted;
  const kept = new Map(previous.notifications.map((channel) => [channel.id, channel]));
  const ids = new Set<string>();
  const channels: StoredChannel[] = [];
  for (const [index, channel] of notifications.entries()) {
    if (ids.has(channel.id)) {
      throw new SettingsChangeError(400, "invalid_request", `notifications.${index}.id: two channels have the id ${channel.id}`, ["notifications", index, "id"]);
    }
    ids.add(channel.id);
    const stored: StoredChannel = {
      kind: channel.kind,
      id: channel.id,
      ...(channel.name !== undefined ? { name: channel.name } : {}),
      ...(channel.events !== undefined ? { events: channel.events } : {}),
      url: { sealed: "" },
    };
    for (const field of SECRET_FIELDS) {
      const value: unknown = Reflect.get(channel, field);
      if (typeof value !== "string") continue;
      const path = ["notifications", index, field];
      let sealed: Sealed;
      if (value === SECRET_PLACEHOLDER) {
        const before = kept.get(channel.id)?.[field];
        if (before === undefined) {
          throw new SettingsChangeError(
            400,
            "unknown_secret",
            `notifications.${index}.${field}: channel ${channel.name || channel.id} has no stored ${field} to keep; enter it`,
            path,
          );
        }
        sealed = before;
      } else {
        if (key === null) throw keyMissing(path);
        sealed = { sealed: await sealSecret(key, value, channel.id, field), ...(field === "url" ? { hint: urlHint(value) } : {}) };
      }
      stored[field] = sealed;
    }
    channels.push(stored);
  }
  return { ...rest, notifications: channels };
}

/**
 * The stored settings with their secrets opened, for the server's own use (the notifier). A channel whose
 * secrets do not open (no key, another key) is left out and logged: the rest of the settings still hold.
 */
export async function openSettings(stored: StoredSettings, version: number, key: CryptoKey | null): Promise<Settings> {
  const notifications: NotificationChannel[] = [];
  for (const channel of stored.notifications) {
    try {
      if (key === null) throw new Error(`${SETTINGS_KEY_VARIABLE} is not set`);
      const opened: Record<string, unknown> = { kind: channel.kind, id: channel.id, name: channel.name, events: channel.events, urlHint: channel.url.hint };
      for (const field of SECRET_FIELDS) {
        const sealed = channel[field];
        if (sealed !== undefined) opened[field] = await openSecret(key, sealed.sealed, channel.id, field);
      }
      notifications.push(NotificationChannel.parse(Object.fromEntries(Object.entries(opened).filter(([, v]) => v !== undefined))));
    } catch (error) {
      console.error(`settings: notification channel ${channel.id} is left out: its secrets do not open (${error instanceof Error ? error.message : String(error)})`);
    }
  }
  return Settings.parse({ ...stored, version, notifications });
}
