/**
 * The safer defaults (docs/automation.md, "Defaults and why"): a new installation requires the fleet
 * build (fleet builds are on in wrangler.toml), while settings saved before keep what they had — an
 * explicit `requireFleetBuild: false`, and a row written before `ciMissingAfterMinutes` existed.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { SettingsResponse, type Settings } from "../../common/protocol.ts";
import { openDatabase } from "../../worker/db/client.ts";
import { currentSettings } from "../../worker/db/settings.ts";
import { api } from "./helpers.ts";

async function read(): Promise<Settings> {
  const res = await api("/api/settings");
  expect(res.status).toBe(200);
  return SettingsResponse.parse(await res.json()).settings;
}

// Storage is per test file: these run in order against one database.
describe("the defaults of a new installation and of saved settings", () => {
  it("a new installation requires the fleet build, since fleet builds are on, and CI with its 30-minute notice", async () => {
    const settings = await read();
    expect(settings.version).toBe(0);
    expect(settings.fleetBuild.buildOnUpdatePr).toBe(true);
    expect(settings.automation).toMatchObject({ requireFleetBuild: true, requireCi: true, ciMissingAfterMinutes: 30 });
    expect((await currentSettings(env, openDatabase(env.DB))).automation.requireFleetBuild).toBe(true);
  });

  it("saved settings with the fleet build not required keep it so", async () => {
    const shown = await read();
    const res = await api("/api/settings", { method: "PUT", json: { ...shown, automation: { ...shown.automation, requireFleetBuild: false } } });
    expect(res.status).toBe(200);
    expect((await read()).automation.requireFleetBuild).toBe(false);
    expect((await currentSettings(env, openDatabase(env.DB))).automation.requireFleetBuild).toBe(false);
  });

  it("a row saved before the CI notice existed reads with its own values and the notice's default", async () => {
    const { version } = await read();
    // What an older version stored: every field it knew, requireFleetBuild false as its default was.
    const older = {
      automation: { enabled: true, mergeDelayMinutes: 15, mergeMethod: "squash", requireCi: false, requireFleetBuild: false, deployStrategy: "all" },
    };
    await env.DB.prepare("UPDATE settings SET settings = ? WHERE id = 1").bind(JSON.stringify(older)).run();
    const settings = await read();
    expect(settings.version).toBe(version);
    expect(settings.automation).toEqual({ ...older.automation, ciMissingAfterMinutes: 30 });
  });
});
