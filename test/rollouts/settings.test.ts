/**
 * Settings from the `wrangler.toml` vars: the defaults, each var, and a bad var refused with its name.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { Settings } from "../../common/protocol.ts";
import { DEFAULT_SETTINGS, SettingsError, settingsFromVars } from "../../worker/settings.ts";

/** The `[vars]` table of wrangler.toml: flat `KEY = "value"` lines. */
function wranglerVars(): Record<string, string> {
  const toml = readFileSync(new URL("../../wrangler.toml", import.meta.url), "utf8");
  const section = toml.split(/^\[vars\]\s*$/m)[1]?.split(/^\[/m)[0] ?? "";
  const vars: Record<string, string> = {};
  for (const match of section.matchAll(/^([A-Z_]+)\s*=\s*"((?:[^"\\]|\\.)*)"\s*$/gm)) vars[match[1]!] = JSON.parse(`"${match[2]}"`);
  return vars;
}

describe("settingsFromVars", () => {
  it("gives the defaults when no var is set", () => {
    expect(settingsFromVars({})).toEqual(DEFAULT_SETTINGS);
    expect(DEFAULT_SETTINGS).toEqual(Settings.parse({}));
    expect(DEFAULT_SETTINGS.rollout).toEqual({ canary: 1, waveSize: null, soakSeconds: 0, canarySoakSeconds: 300 });
    expect(DEFAULT_SETTINGS.rollback).toEqual({ strategy: "revert-commit", rollbackHosts: false });
    expect(DEFAULT_SETTINGS.automation.deployStrategy).toBe("all");
  });

  it("gives the same defaults from wrangler.toml's vars", () => {
    const vars = wranglerVars();
    expect(Object.keys(vars)).toEqual(expect.arrayContaining(["ROLLOUT_WAVE_SIZE", "MAINTENANCE_WINDOWS", "ROLLBACK_HOSTS"]));
    expect(settingsFromVars(vars)).toEqual(DEFAULT_SETTINGS);
  });

  it("ignores bindings that are not strings, as the Worker's env has them", () => {
    expect(settingsFromVars({ DB: {}, COORDINATOR: 1, ROLLOUT_CANARY_COUNT: "2" }).rollout.canary).toBe(2);
  });

  it("reads every var", () => {
    const s = settingsFromVars({
      ROLLOUT_CANARY_COUNT: "0",
      ROLLOUT_WAVE_SIZE: "10",
      ROLLOUT_SOAK_SECONDS: "60",
      ROLLOUT_CANARY_SOAK_SECONDS: "5",
      DEPLOY_STRATEGY: "online-only",
      ROLLBACK_STRATEGY: "alert-only",
      ROLLBACK_HOSTS: "true",
      MAINTENANCE_WINDOWS: JSON.stringify([{ days: ["sat"], start: "02:00", end: "04:00", timeZone: "Europe/Vienna", hosts: ["hsb0"] }]),
    });
    expect(s.rollout).toEqual({ canary: 0, waveSize: 10, soakSeconds: 60, canarySoakSeconds: 5 });
    expect(s.automation.deployStrategy).toBe("online-only");
    expect(s.rollback).toEqual({ strategy: "alert-only", rollbackHosts: true });
    expect(s.windows).toEqual([{ days: ["sat"], start: "02:00", end: "04:00", timeZone: "Europe/Vienna", hosts: ["hsb0"] }]);
  });

  it.each([
    { vars: { ROLLOUT_WAVE_SIZE: "auto" }, waveSize: null },
    { vars: { ROLLOUT_WAVE_SIZE: "" }, waveSize: null },
    { vars: { ROLLOUT_WAVE_SIZE: " 3 " }, waveSize: 3 },
  ])("ROLLOUT_WAVE_SIZE $vars.ROLLOUT_WAVE_SIZE → $waveSize", ({ vars, waveSize }) => {
    expect(settingsFromVars(vars).rollout.waveSize).toBe(waveSize);
  });

  it.each([
    { name: "ROLLOUT_WAVE_SIZE", value: "0", message: /ROLLOUT_WAVE_SIZE: must be a whole number ≥ 1, got "0"/ },
    { name: "ROLLOUT_WAVE_SIZE", value: "quarter", message: /ROLLOUT_WAVE_SIZE: must be a whole number/ },
    { name: "ROLLOUT_CANARY_COUNT", value: "-1", message: /ROLLOUT_CANARY_COUNT: must be a whole number ≥ 0/ },
    { name: "ROLLOUT_SOAK_SECONDS", value: "1.5", message: /ROLLOUT_SOAK_SECONDS/ },
    { name: "ROLLOUT_CANARY_SOAK_SECONDS", value: "5m", message: /ROLLOUT_CANARY_SOAK_SECONDS/ },
    { name: "DEPLOY_STRATEGY", value: "everything", message: /DEPLOY_STRATEGY: must be one of all, online-only, none, got "everything"/ },
    { name: "ROLLBACK_STRATEGY", value: "revert", message: /ROLLBACK_STRATEGY: must be one of revert-pr, revert-commit, alert-only/ },
    { name: "ROLLBACK_HOSTS", value: "yes", message: /ROLLBACK_HOSTS: must be true or false, got "yes"/ },
    { name: "MAINTENANCE_WINDOWS", value: "[{", message: /MAINTENANCE_WINDOWS: is not JSON/ },
    { name: "MAINTENANCE_WINDOWS", value: '{"days":["sat"]}', message: /MAINTENANCE_WINDOWS: is not a list of maintenance windows/ },
    {
      name: "MAINTENANCE_WINDOWS",
      value: '[{"days":["sat"],"start":"02:00","end":"04:00","timeZone":"Vienna"}]',
      message: /MAINTENANCE_WINDOWS: is not a list of maintenance windows at 0\.timeZone: not an IANA time zone/,
    },
  ])("refuses $name=$value, naming the var", ({ name, value, message }) => {
    let error: unknown;
    try {
      settingsFromVars({ [name]: value });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SettingsError);
    expect((error as SettingsError).variable).toBe(name);
    expect((error as SettingsError).message).toMatch(message);
  });
});

describe("NOTIFICATION_CHANNELS", () => {
  const hook = { kind: "webhook", id: "ch_hook1", url: "https://hooks.example.com/in", secret: "a-signing-secret-of-32-characters" };

  it("is no channel when unset, and the channels it lists when set", () => {
    expect(settingsFromVars({}).notifications).toEqual([]);
    const ntfy = { kind: "ntfy", id: "ch_ntfy1", url: "https://ntfy.sh/fleet", token: "tk", events: ["host-offline"] };
    expect(settingsFromVars({ NOTIFICATION_CHANNELS: JSON.stringify([hook, ntfy]) }).notifications).toEqual([hook, ntfy]);
  });

  it.each([
    ["not JSON", "[{", /NOTIFICATION_CHANNELS: is not JSON/],
    ["an unknown kind", JSON.stringify([{ ...hook, kind: "email" }]), /NOTIFICATION_CHANNELS: is not a list of notification channels at 0\.kind/],
    ["a short secret", JSON.stringify([{ ...hook, secret: "short" }]), /at 0\.secret/],
    ["an unknown event", JSON.stringify([{ ...hook, events: ["lunch"] }]), /at 0\.events\.0/],
    ["the placeholder", JSON.stringify([{ ...hook, url: "********" }]), /holds "\*\*\*\*\*\*\*\*" in place of a value/],
    ["an id twice", JSON.stringify([hook, hook]), /channel id ch_hook1 is used twice/],
  ])("refuses %s with the var's name", (_what, raw, message) => {
    expect(() => settingsFromVars({ NOTIFICATION_CHANNELS: raw })).toThrow(SettingsError);
    expect(() => settingsFromVars({ NOTIFICATION_CHANNELS: raw })).toThrow(message);
  });
});
