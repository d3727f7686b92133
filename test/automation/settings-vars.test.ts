/** The automation's settings from `wrangler.toml` vars: each var, fractions of a minute, a bad var named. */
import { describe, expect, it } from "vitest";
import { DEFAULT_SETTINGS, SettingsError, settingsFromVars } from "../../worker/settings.ts";

describe("automation vars", () => {
  it("default to the settings' defaults: off, 60 minutes, merge, CI required (missing after 30 min), the fleet build required, flake updates on", () => {
    expect(settingsFromVars({}).automation).toEqual(DEFAULT_SETTINGS.automation);
    expect(DEFAULT_SETTINGS.automation).toMatchObject({ enabled: false, mergeDelayMinutes: 60, mergeMethod: "merge", requireCi: true, ciMissingAfterMinutes: 30, requireFleetBuild: true });
    expect(settingsFromVars({}).flakeUpdates.enabled).toBe(true);
  });

  it("require the fleet build exactly when update PRs are built, unless the var says otherwise", () => {
    expect(settingsFromVars({ FLEET_BUILD_ON_UPDATE_PR: "true" }).automation.requireFleetBuild).toBe(true);
    expect(settingsFromVars({ FLEET_BUILD_ON_UPDATE_PR: "false" }).automation.requireFleetBuild).toBe(false);
    // wrangler.toml ships the var empty: the default follows the builds.
    expect(settingsFromVars({ FLEET_BUILD_ON_UPDATE_PR: "false", AUTOMATION_REQUIRE_FLEET_BUILD: "" }).automation.requireFleetBuild).toBe(false);
    expect(settingsFromVars({ FLEET_BUILD_ON_UPDATE_PR: "false", AUTOMATION_REQUIRE_FLEET_BUILD: "true" }).automation.requireFleetBuild).toBe(true);
    expect(settingsFromVars({ AUTOMATION_REQUIRE_FLEET_BUILD: "false" }).automation.requireFleetBuild).toBe(false);
  });

  it("reads every var, a delay in fractions of a minute included", () => {
    const s = settingsFromVars({
      AUTOMATION_ENABLED: "true",
      AUTOMATION_MERGE_DELAY_MINUTES: "0.05",
      AUTOMATION_MERGE_METHOD: "squash",
      AUTOMATION_REQUIRE_CI: "false",
      AUTOMATION_CI_MISSING_AFTER_MINUTES: "5",
      AUTOMATION_REQUIRE_FLEET_BUILD: "true",
      FLAKE_UPDATES_ENABLED: "false",
      DEPLOY_STRATEGY: "none",
    });
    expect(s.automation).toEqual({ enabled: true, mergeDelayMinutes: 0.05, mergeMethod: "squash", requireCi: false, ciMissingAfterMinutes: 5, requireFleetBuild: true, deployStrategy: "none" });
    expect(s.flakeUpdates.enabled).toBe(false);
    expect(settingsFromVars({ AUTOMATION_MERGE_DELAY_MINUTES: "0" }).automation.mergeDelayMinutes).toBe(0);
  });

  it.each([
    { name: "AUTOMATION_MERGE_DELAY_MINUTES", value: "-1" },
    { name: "AUTOMATION_MERGE_DELAY_MINUTES", value: "soon" },
    { name: "AUTOMATION_MERGE_DELAY_MINUTES", value: "99999" },
    { name: "AUTOMATION_MERGE_METHOD", value: "fast-forward" },
    { name: "AUTOMATION_ENABLED", value: "yes" },
    { name: "AUTOMATION_REQUIRE_CI", value: "1" },
    { name: "AUTOMATION_REQUIRE_FLEET_BUILD", value: "TRUE" },
    { name: "AUTOMATION_CI_MISSING_AFTER_MINUTES", value: "half an hour" },
    { name: "FLAKE_UPDATES_ENABLED", value: "off" },
  ])("refuses $name=$value, naming the var", ({ name, value }) => {
    expect(() => settingsFromVars({ [name]: value })).toThrow(SettingsError);
    expect(() => settingsFromVars({ [name]: value })).toThrow(new RegExp(`^${name}:`));
  });
});
