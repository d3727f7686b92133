/**
 * The settings' secrets (worker/settings-secrets.ts), pure: sealing and opening with AES-GCM, the hint and
 * the redaction the browser sees, and a PUT's placeholders keeping the stored values.
 */
import { describe, expect, it } from "vitest";
import { SECRET_PLACEHOLDER, Settings, type NotificationChannel } from "../../common/protocol.ts";
import {
  importSettingsKey,
  openSecret,
  openSettings,
  redactSettings,
  redactStored,
  sealChannels,
  sealSecret,
  sealSettings,
  SettingsChangeError,
  StoredSettings,
  urlHint,
} from "../../worker/settings-secrets.ts";
import { DEVELOPMENT_SETTINGS_ENCRYPTION_KEY } from "../../scripts/dev-settings-key.mjs";

const OTHER_KEY = btoa(String.fromCharCode(...new Uint8Array(32).fill(7)));
const key = () => importSettingsKey(DEVELOPMENT_SETTINGS_ENCRYPTION_KEY);

const SLACK = "https://hooks.slack.com/services/T000/B000/abcdefSECRETtokenXy9z";
const channels: NotificationChannel[] = [
  { kind: "slack", id: "ch_slack1", name: "ops", url: SLACK },
  { kind: "webhook", id: "ch_hook01", url: "https://receiver.example.com/nixfleet?token=hunter2hunter2", secret: "0123456789abcdef-signing" },
  { kind: "ntfy", id: "ch_ntfy01", url: "https://ntfy.sh/my-fleet", token: "tk_ntfy_access_token", events: ["ci-failed"] },
];
const settingsWith = (notifications: NotificationChannel[], version = 0): Settings => Settings.parse({ version, notifications });

/** Every clear secret in `channels`, to look for in what must not hold them. */
const clearSecrets = ["abcdefSECRETtokenXy9z", "hunter2hunter2", "0123456789abcdef-signing", "tk_ntfy_access_token", "my-fleet"];

describe("the settings key", () => {
  it("is read as none when SETTINGS_ENCRYPTION_KEY is unset or empty", async () => {
    expect(await importSettingsKey(undefined)).toBeNull();
    expect(await importSettingsKey("  ")).toBeNull();
  });

  it.each([
    ["not base64", "%%%"],
    ["too short", btoa("short")],
  ])("refuses a key that is %s, naming the variable", async (_why, raw) => {
    await expect(importSettingsKey(raw)).rejects.toThrow(/SETTINGS_ENCRYPTION_KEY/);
  });
});

describe("sealing a secret", () => {
  it("opens again with the same key, channel and field", async () => {
    const k = (await key())!;
    const sealed = await sealSecret(k, "tk_secret", "ch_abcd", "token");
    expect(sealed).toMatch(/^v1\./);
    expect(sealed).not.toContain("tk_secret");
    expect(await openSecret(k, sealed, "ch_abcd", "token")).toBe("tk_secret");
  });

  it("gives a different ciphertext each time (a fresh IV)", async () => {
    const k = (await key())!;
    expect(await sealSecret(k, "same", "ch_abcd", "url")).not.toBe(await sealSecret(k, "same", "ch_abcd", "url"));
  });

  it("does not open under another key, in another channel or in another field", async () => {
    const k = (await key())!;
    const sealed = await sealSecret(k, "tk_secret", "ch_abcd", "token");
    await expect(openSecret((await importSettingsKey(OTHER_KEY))!, sealed, "ch_abcd", "token")).rejects.toThrow();
    await expect(openSecret(k, sealed, "ch_other", "token")).rejects.toThrow();
    await expect(openSecret(k, sealed, "ch_abcd", "secret")).rejects.toThrow();
  });
});

describe("what the browser sees", () => {
  it("a url's hint is its scheme, host and last 4 characters", () => {
    expect(urlHint(SLACK)).toBe("https://hooks.slack.com/…Xy9z");
  });

  it("redacts every secret and sets the url's hint", () => {
    const redacted = redactSettings(settingsWith(channels));
    expect(redacted.notifications).toEqual([
      { kind: "slack", id: "ch_slack1", name: "ops", url: SECRET_PLACEHOLDER, urlHint: "https://hooks.slack.com/…Xy9z" },
      { kind: "webhook", id: "ch_hook01", url: SECRET_PLACEHOLDER, urlHint: "https://receiver.example.com/…ter2", secret: SECRET_PLACEHOLDER },
      { kind: "ntfy", id: "ch_ntfy01", url: SECRET_PLACEHOLDER, urlHint: "https://ntfy.sh/…leet", token: SECRET_PLACEHOLDER, events: ["ci-failed"] },
    ]);
    for (const secret of clearSecrets) expect(JSON.stringify(redacted)).not.toContain(secret);
  });

  it("the stored form redacts to the same, without the key", async () => {
    const stored = await sealSettings(settingsWith(channels), await key());
    expect(redactStored(stored, 3)).toEqual({ ...redactSettings(settingsWith(channels)), version: 3 });
  });
});

describe("storing submitted settings", () => {
  it("seals every secret: nothing clear in what is stored, and it opens to the submitted settings", async () => {
    const k = await key();
    const stored = await sealChannels(settingsWith(channels), { notifications: [] }, k);
    const text = JSON.stringify(stored);
    for (const secret of clearSecrets) expect(text).not.toContain(secret);
    const opened = await openSettings(StoredSettings.parse(JSON.parse(text)), 4, k);
    expect(opened.notifications.map(({ urlHint: _hint, ...channel }) => channel)).toEqual(channels);
    expect(opened.version).toBe(4);
  });

  it("a placeholder keeps the stored value of the channel with the same id; a new value replaces it", async () => {
    const k = await key();
    const before = await sealChannels(settingsWith(channels), { notifications: [] }, k);
    const submitted = redactSettings(settingsWith(channels));
    // The ntfy token is changed, the rest sent back as shown.
    const ntfy = submitted.notifications[2]!;
    if (ntfy.kind !== "ntfy") throw new Error("fixture order");
    ntfy.token = "tk_new_token";
    ntfy.name = "phone";
    const after = await sealChannels(submitted, before, k);
    expect(after.notifications[0]!.url).toEqual(before.notifications[0]!.url);
    expect(after.notifications[1]!.secret).toEqual(before.notifications[1]!.secret);
    const opened = await openSettings(after, 2, k);
    expect(opened.notifications.map((c) => ("token" in c ? c.token : undefined))).toEqual([undefined, undefined, "tk_new_token"]);
    expect(opened.notifications[2]!.name).toBe("phone");
    expect(opened.notifications[0]!.url).toBe(SLACK);
  });

  it("refuses a placeholder for a channel id it does not know, naming the channel and the field", async () => {
    const submitted = settingsWith([{ kind: "slack", id: "ch_unknown", name: "pager", url: SECRET_PLACEHOLDER }]);
    const error = await sealChannels(submitted, { notifications: [] }, await key()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SettingsChangeError);
    expect(error).toMatchObject({ status: 400, code: "unknown_secret", path: ["notifications", 0, "url"] });
    expect((error as Error).message).toContain("pager");
  });

  it("refuses a placeholder for a field the stored channel does not have", async () => {
    const before = await sealChannels(settingsWith([{ kind: "webhook", id: "ch_hook01", url: "https://r.example.com/x" }]), { notifications: [] }, await key());
    const submitted = settingsWith([{ kind: "webhook", id: "ch_hook01", url: SECRET_PLACEHOLDER, secret: SECRET_PLACEHOLDER }]);
    await expect(sealChannels(submitted, before, await key())).rejects.toMatchObject({ code: "unknown_secret", path: ["notifications", 0, "secret"] });
  });

  it("refuses a new secret without a key, naming the secret to set; keeps stored ones without a key", async () => {
    const before = await sealChannels(settingsWith(channels), { notifications: [] }, await key());
    await expect(sealChannels(settingsWith(channels), before, null)).rejects.toMatchObject({ status: 503, code: "settings_key_missing", message: expect.stringContaining("SETTINGS_ENCRYPTION_KEY") });
    const kept = await sealChannels(redactSettings(settingsWith(channels)), before, null);
    expect(kept.notifications).toEqual(before.notifications);
  });

  it("refuses two channels with the same id", async () => {
    const twice = settingsWith([channels[0]!, { ...channels[0]!, name: "again" }]);
    await expect(sealChannels(twice, { notifications: [] }, await key())).rejects.toMatchObject({ status: 400, path: ["notifications", 1, "id"] });
  });
});

describe("opening stored settings", () => {
  it("leaves out a channel whose secrets do not open (another key, no key) and keeps everything else", async () => {
    const stored = await sealChannels(Settings.parse({ rollout: { canary: 3 }, notifications: channels }), { notifications: [] }, await key());
    for (const otherKey of [await importSettingsKey(OTHER_KEY), null]) {
      const opened = await openSettings(stored, 7, otherKey);
      expect(opened.notifications).toEqual([]);
      expect(opened.rollout.canary).toBe(3);
      expect(opened.version).toBe(7);
    }
  });
});
