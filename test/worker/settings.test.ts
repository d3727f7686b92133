/**
 * GET and PUT /api/settings on the real Worker with real local D1: the vars' defaults, a round trip, the
 * version that refuses lost updates (also under many concurrent PUTs), secrets sealed and never sent back
 * or audited in clear, ids assigned to new channels, bad input refused without a write, and no key → a
 * clear refusal.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ErrorBody, SECRET_PLACEHOLDER, SettingsResponse, type Settings, type SettingsUpdate } from "../../common/protocol.ts";
import { openDatabase } from "../../worker/db/client.ts";
import { currentSettings } from "../../worker/db/settings.ts";
import { app } from "../../worker/index.ts";
import { redactSettings } from "../../worker/settings-secrets.ts";
import { settingsFromVars } from "../../worker/settings.ts";
import { api, ORIGIN } from "./helpers.ts";

const db = () => openDatabase(env.DB);

async function read(): Promise<Settings> {
  const res = await api("/api/settings");
  expect(res.status).toBe(200);
  return SettingsResponse.parse(await res.json()).settings;
}

const put = (settings: SettingsUpdate | Record<string, unknown>) => api("/api/settings", { method: "PUT", json: settings });

async function errorOf(res: Response) {
  return ErrorBody.parse(await res.json()).error;
}

/** Everything that could show a secret: the stored row, the audit log (through the API and in D1). */
async function everythingStored(): Promise<string> {
  const rows = await env.DB.prepare("SELECT settings FROM settings").all();
  const audit = await env.DB.prepare("SELECT details FROM audit_log").all();
  const auditApi = await (await api("/api/audit?limit=200")).text();
  return JSON.stringify([rows.results, audit.results, auditApi]);
}

async function settingsAudits(): Promise<{ details: string; actor: string }[]> {
  const { results } = await env.DB.prepare("SELECT details, actor FROM audit_log WHERE action = 'settings.update' ORDER BY id").all<{ details: string; actor: string }>();
  return results;
}

const SLACK = "https://hooks.slack.com/services/T0/B0/slackSECRETtoken0042";
const HOOK = "https://receiver.example.com/hook?key=urlSECRET0007";
const SIGNING = "signingSECRET-0123456789";
const NTFY_TOKEN = "tk_ntfySECRET";
const SECRETS = ["slackSECRETtoken0042", "urlSECRET0007", SIGNING, NTFY_TOKEN];

// Storage is per test file: these run in order against one database, each from the version it reads.
describe("/api/settings", () => {
  it("GET gives the wrangler.toml vars' settings at version 0 before anything is stored", async () => {
    const settings = await read();
    expect(settings).toEqual(redactSettings(settingsFromVars(env)));
    expect(settings.version).toBe(0);
    expect(await currentSettings(env, db())).toEqual(settingsFromVars(env));
  });

  it("PUT stores the whole object, bumps the version, and GET and the server read it back", async () => {
    const before = await read();
    const next = {
      ...before,
      automation: { ...before.automation, enabled: true, mergeDelayMinutes: 0.5, mergeMethod: "squash" as const },
      rollout: { ...before.rollout, canary: 2, waveSize: 3 },
      windows: [{ days: ["sat" as const], start: "02:00", end: "04:00", timeZone: "Europe/Vienna" }],
    };
    const res = await put(next);
    expect(res.status).toBe(200);
    const saved = SettingsResponse.parse(await res.json()).settings;
    expect(saved).toEqual({ ...next, version: before.version + 1 });
    expect(await read()).toEqual(saved);
    // The server reads the secrets opened (the vars' test channels); the answer shows them redacted.
    expect(redactSettings(await currentSettings(env, db()))).toEqual(saved);
    const audits = await settingsAudits();
    const last = JSON.parse(audits.at(-1)!.details) as { fromVersion: number; toVersion: number; old: Settings; new: Settings };
    expect(last).toMatchObject({ fromVersion: before.version, toVersion: before.version + 1 });
    expect(last.old.rollout.canary).toBe(before.rollout.canary);
    expect(last.new.rollout.canary).toBe(2);
    expect(audits.at(-1)!.actor).toBe("developer@localhost");
  });

  it("refuses a stale version with 409 settings_conflict naming the current version, and writes nothing", async () => {
    const current = await read();
    const audits = (await settingsAudits()).length;
    const res = await put({ ...current, version: current.version - 1, rollout: { ...current.rollout, canary: 0 } });
    expect(res.status).toBe(409);
    const error = await errorOf(res);
    expect(error.code).toBe("settings_conflict");
    expect(error.message).toContain(`current version is ${current.version}`);
    expect(await read()).toEqual(current);
    expect(await settingsAudits()).toHaveLength(audits);
  });

  it("of many concurrent PUTs from the same version exactly one wins; the rest get 409 and write nothing", async () => {
    for (let round = 0; round < 3; round++) {
      const current = await read();
      const audits = (await settingsAudits()).length;
      const writers = Array.from({ length: 12 }, (_, i) => put({ ...current, rollout: { ...current.rollout, soakSeconds: round * 100 + i } }));
      const responses = await Promise.all(writers);
      const statuses = responses.map((r) => r.status);
      expect(statuses.filter((s) => s === 200)).toHaveLength(1);
      expect(statuses.filter((s) => s === 409)).toHaveLength(11);
      const winner = responses.findIndex((r) => r.status === 200);
      const after = await read();
      expect(after.version).toBe(current.version + 1);
      expect(after.rollout.soakSeconds).toBe(round * 100 + winner);
      const newAudits = (await settingsAudits()).slice(audits);
      expect(newAudits).toHaveLength(1);
      expect(JSON.parse(newAudits[0]!.details)).toMatchObject({ toVersion: current.version + 1, new: { rollout: { soakSeconds: round * 100 + winner } } });
    }
  });

  it("seals notification secrets: never in a response, the stored row or the audit log; the server reads them in clear", async () => {
    const current = await read();
    const res = await put({
      ...current,
      notifications: [
        { kind: "slack", id: "ch_slack01", name: "ops", url: SLACK },
        { kind: "webhook", id: "ch_hook001", url: HOOK, secret: SIGNING, events: ["rollout-failed", "ci-failed"] },
        { kind: "ntfy", id: "ch_ntfy001", url: "https://ntfy.sh/fleet-alerts", token: NTFY_TOKEN },
      ],
    });
    const text = await res.text();
    expect(res.status, text).toBe(200);
    const getText = await (await api("/api/settings")).text();
    for (const secret of SECRETS) {
      expect(text).not.toContain(secret);
      expect(getText).not.toContain(secret);
    }
    const shown = SettingsResponse.parse(JSON.parse(getText)).settings.notifications;
    expect(shown).toEqual([
      { kind: "slack", id: "ch_slack01", name: "ops", url: SECRET_PLACEHOLDER, urlHint: "https://hooks.slack.com/…0042" },
      { kind: "webhook", id: "ch_hook001", url: SECRET_PLACEHOLDER, urlHint: "https://receiver.example.com/…0007", secret: SECRET_PLACEHOLDER, events: ["rollout-failed", "ci-failed"] },
      { kind: "ntfy", id: "ch_ntfy001", url: SECRET_PLACEHOLDER, urlHint: "https://ntfy.sh/…erts", token: SECRET_PLACEHOLDER },
    ]);
    const stored = await everythingStored();
    for (const secret of SECRETS) expect(stored).not.toContain(secret);
    const server = await currentSettings(env, db());
    expect(server.notifications.map((c) => [c.url, "secret" in c ? c.secret : undefined, "token" in c ? c.token : undefined])).toEqual([
      [SLACK, undefined, undefined],
      [HOOK, SIGNING, undefined],
      ["https://ntfy.sh/fleet-alerts", undefined, NTFY_TOKEN],
    ]);
  });

  it("a PUT of what GET showed keeps every stored secret (the placeholders), while other fields change", async () => {
    const shown = await read();
    const res = await put({ ...shown, notifications: shown.notifications.map((c) => ({ ...c, name: `${c.name ?? c.kind} renamed` })) });
    expect(res.status, await res.clone().text()).toBe(200);
    const server = await currentSettings(env, db());
    expect(server.notifications.map((c) => c.url)).toEqual([SLACK, HOOK, "https://ntfy.sh/fleet-alerts"]);
    expect(server.notifications.map((c) => c.name)).toEqual(["ops renamed", "webhook renamed", "ntfy renamed"]);
    const stored = await everythingStored();
    for (const secret of SECRETS) expect(stored).not.toContain(secret);
  });

  it("refuses a placeholder for a channel id it does not know with 400 naming the channel, and writes nothing", async () => {
    const current = await read();
    const res = await put({ ...current, notifications: [...current.notifications, { kind: "discord", id: "ch_nowhere", name: "team chat", url: SECRET_PLACEHOLDER }] });
    expect(res.status).toBe(400);
    const error = await errorOf(res);
    expect(error.code).toBe("unknown_secret");
    expect(error.message).toContain("team chat");
    expect(error.issues).toEqual([{ path: ["notifications", 3, "url"], message: error.message }]);
    expect(await read()).toEqual(current);
  });

  it.each<[string, (s: Settings) => unknown, (string | number)[]]>([
    ["an unknown key at the top", (s) => ({ ...s, colour: "blue" }), []],
    ["an unknown key inside a section", (s) => ({ ...s, rollout: { ...s.rollout, canaries: 2 } }), ["rollout"]],
    ["a negative merge delay", (s) => ({ ...s, automation: { ...s.automation, mergeDelayMinutes: -1 } }), ["automation", "mergeDelayMinutes"]],
    ["a window with start = end", (s) => ({ ...s, windows: [{ days: ["mon"], start: "02:00", end: "02:00", timeZone: "UTC" }] }), ["windows", 0, "end"]],
    ["a window in a made-up time zone", (s) => ({ ...s, windows: [{ days: ["mon"], start: "02:00", end: "03:00", timeZone: "Mars/Olympus" }] }), ["windows", 0, "timeZone"]],
    ["a channel url that is not http(s)", (s) => ({ ...s, notifications: [{ kind: "slack", id: "ch_badurl1", url: "ftp://x.example.com/a" }] }), ["notifications", 0, "url"]],
    ["no version", ({ version: _v, ...s }) => s, ["version"]],
  ])("refuses %s with 400 and the issue's path, and writes nothing", async (_what, change, path) => {
    const current = await read();
    const res = await put(change(current) as Record<string, unknown>);
    expect(res.status).toBe(400);
    const error = await errorOf(res);
    expect(error.code).toBe("invalid_request");
    expect(error.issues?.map((i) => i.path)).toContainEqual(path);
    expect(await read()).toEqual(current);
  });

  it("without SETTINGS_ENCRYPTION_KEY refuses a new secret with 503 naming the secret to set; other changes still save", async () => {
    const withoutKey = { ...env, SETTINGS_ENCRYPTION_KEY: undefined };
    const send = async (body: unknown) => {
      const ctx = createExecutionContext();
      const res = await app.fetch(
        new Request(`${ORIGIN}/api/settings`, { method: "PUT", headers: { origin: ORIGIN, "content-type": "application/json" }, body: JSON.stringify(body) }),
        withoutKey,
        ctx,
      );
      await waitOnExecutionContext(ctx);
      return res;
    };
    const current = await read();
    const refused = await send({ ...current, notifications: [...current.notifications, { kind: "discord", id: "ch_discord1", url: "https://discord.com/api/webhooks/1/xyz" }] });
    expect(refused.status).toBe(503);
    const error = await errorOf(refused);
    expect(error.code).toBe("settings_key_missing");
    expect(error.message).toContain("wrangler secret put SETTINGS_ENCRYPTION_KEY");
    expect(await read()).toEqual(current);

    const kept = await send({ ...current, rollout: { ...current.rollout, canarySoakSeconds: 42 } });
    expect(kept.status).toBe(200);
    expect((await read()).rollout.canarySoakSeconds).toBe(42);
    // Sealed with the key, the kept secrets still open with it.
    expect((await currentSettings(env, db())).notifications.map((c) => c.url)).toEqual([SLACK, HOOK, "https://ntfy.sh/fleet-alerts"]);
  });

  it("gives a channel sent without an id a fresh ch_ id, in the answer and in GET, and keeps it and its secret when the id is sent back", async () => {
    const current = await read();
    const newcomer = { kind: "ntfy" as const, name: "no id", url: "https://ntfy.example.com/fleet", token: "tk_newcomerSECRET" };
    const res = await put({ ...current, notifications: [...current.notifications, newcomer, { ...newcomer, name: "no id either" }] });
    const text = await res.text();
    expect(res.status, text).toBe(200);
    expect(text).not.toContain("tk_newcomerSECRET");
    const answered = SettingsResponse.parse(JSON.parse(text)).settings.notifications;
    const assigned = answered.slice(current.notifications.length).map((channel) => channel.id);
    expect(assigned).toHaveLength(2);
    for (const id of assigned) expect(id).toMatch(/^ch_[A-Za-z0-9_-]{22}$/);
    expect(new Set([...current.notifications.map((c) => c.id), ...assigned]).size).toBe(current.notifications.length + 2);
    expect(answered.slice(0, current.notifications.length)).toEqual(current.notifications);
    const shown = await read();
    expect(shown.notifications).toEqual(answered);

    // Sent back by id with the placeholder, the channel keeps its stored token; renamed, it is still that channel.
    const [first] = assigned;
    const again = await put({ ...shown, notifications: shown.notifications.map((c) => (c.id === first ? { ...c, name: "renamed" } : c)) });
    expect(again.status, await again.clone().text()).toBe(200);
    const server = (await currentSettings(env, db())).notifications.find((c) => c.id === first);
    expect(server).toMatchObject({ kind: "ntfy", name: "renamed", url: "https://ntfy.example.com/fleet", token: "tk_newcomerSECRET" });
    expect((await read()).notifications.map((c) => c.id)).toEqual(shown.notifications.map((c) => c.id));

    // Back to the channels the later tests expect.
    const restored = await put({ ...(await read()), notifications: current.notifications });
    expect(restored.status).toBe(200);
  });

  it.each([
    ["not starting with ch_", "channel-1"],
    ["too short", "ch_x"],
    ["with a character outside the id alphabet", "ch_has space"],
    ["not a string", 42],
  ])("refuses a channel id %s with 400 at the channel's id, and writes nothing", async (_what, id) => {
    const current = await read();
    const res = await put({ ...current, notifications: [...current.notifications, { kind: "slack", id, url: SLACK }] });
    expect(res.status).toBe(400);
    const error = await errorOf(res);
    expect(error.code).toBe("invalid_request");
    expect(error.issues?.map((i) => i.path)).toContainEqual(["notifications", current.notifications.length, "id"]);
    expect(await read()).toEqual(current);
  });

  it("a corrupt stored row is read as the vars' defaults under its own version, and the next save replaces it", async () => {
    const { version } = await read();
    await env.DB.prepare("UPDATE settings SET settings = ? WHERE id = 1").bind('{"rollout":{"canary":"many"}}').run();
    const shown = await read();
    expect(shown).toEqual({ ...redactSettings(settingsFromVars(env)), version });
    expect(await currentSettings(env, db())).toEqual({ ...settingsFromVars(env), version });
    const res = await put({ ...shown, rollout: { ...shown.rollout, canary: 4 } });
    expect(res.status).toBe(200);
    expect(await read()).toMatchObject({ version: version + 1, rollout: { canary: 4 } });
  });
});
