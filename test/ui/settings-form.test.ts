/**
 * The Settings page's rules (ui/common/settings-form.ts): the server's schema checks the draft, its
 * issues land on the field they name, in words a person can act on, and a row's element gets its own.
 */
import { describe, expect, it } from "vitest";
import { Settings } from "../../common/protocol.ts";
import { buildersText, errorsUnder, fieldErrors, newChannelId, parseBuildersText, parseHostList, validateSettings } from "../../ui/common/settings-form.ts";

const base = (): Settings => Settings.parse({ version: 4 });

describe("validateSettings", () => {
  it("finds nothing wrong with valid settings, a gc's fractional days and zero days included", () => {
    expect(validateSettings(base())).toEqual({});
    expect(validateSettings({ ...base(), gc: { keepGenerations: 1, keepDays: 0.5 } })).toEqual({});
    expect(validateSettings({ ...base(), gc: { keepGenerations: 200, keepDays: 0 } })).toEqual({});
  });

  it.each<[string, (s: Settings) => Settings, Record<string, string>]>([
    ["a negative canary count", (s) => ({ ...s, rollout: { ...s.rollout, canary: -1 } }), { "rollout.canary": "must be at least 0" }],
    ["an empty number field", (s) => ({ ...s, automation: { ...s.automation, mergeDelayMinutes: Number.NaN } }), { "automation.mergeDelayMinutes": "enter a number" }],
    ["a fractional wave size", (s) => ({ ...s, rollout: { ...s.rollout, waveSize: 1.5 } }), { "rollout.waveSize": "enter a whole number" }],
    ["a gc that keeps no generation and an empty days field", (s) => ({ ...s, gc: { keepGenerations: 0, keepDays: Number.NaN } }), { "gc.keepGenerations": "must be at least 1", "gc.keepDays": "enter a number" }],
    ["a gc generation count and age above their limits", (s) => ({ ...s, gc: { keepGenerations: 201, keepDays: 3651 } }), { "gc.keepGenerations": "must be at most 200", "gc.keepDays": "must be at most 3650" }],
    ["a fractional generation count", (s) => ({ ...s, gc: { ...s.gc, keepGenerations: 2.5 } }), { "gc.keepGenerations": "enter a whole number" }],
    [
      "a window with no day and a made-up time zone",
      (s) => ({ ...s, windows: [{ days: [], start: "02:00", end: "03:00", timeZone: "Mars/Olympus" }] }),
      { "windows.0.days": "a window needs at least one day", "windows.0.timeZone": "not an IANA time zone (like Europe/Vienna or UTC)" },
    ],
    ["a channel with no events ticked", (s) => ({ ...s, notifications: [{ kind: "slack", id: "ch_abcdef", url: "https://hooks.slack.com/x", events: [] }] }), { "notifications.0.events": "choose at least one" }],
    ["a channel url that is not http(s)", (s) => ({ ...s, notifications: [{ kind: "slack", id: "ch_abcdef", url: "hooks.slack.com/x" }] }), { "notifications.0.url": "not an http(s) URL" }],
  ])("marks %s on its field", (_what, change, expected) => {
    expect(validateSettings(change(base()))).toEqual(expected);
  });
});

describe("the server's issues", () => {
  it("become field messages, the first for a path winning", () => {
    expect(
      fieldErrors([
        { path: ["notifications", 3, "url"], message: "channel pager has no stored url to keep; enter it" },
        { path: ["notifications", 3, "url"], message: "second" },
        { path: [], message: "Unrecognized key: colour" },
      ]),
    ).toEqual({ "notifications.3.url": "channel pager has no stored url to keep; enter it", "": "Unrecognized key: colour" });
  });

  it("are handed to a row's element below its prefix", () => {
    const errors = { "windows.0.end": "same as start", "windows.1.timeZone": "bad zone", "windows.10.days": "none", "rollout.canary": "x" };
    expect(errorsUnder(errors, "windows.1")).toEqual({ timeZone: "bad zone" });
    expect(errorsUnder(errors, "windows.0")).toEqual({ end: "same as start" });
  });
});

describe("form helpers", () => {
  it("makes channel ids the schema accepts, each new", () => {
    const ids = new Set(Array.from({ length: 50 }, newChannelId));
    expect(ids.size).toBe(50);
    for (const id of ids) expect(id).toMatch(/^ch_[A-Za-z0-9_-]{4,40}$/);
  });

  it("reads builder hosts as SYSTEM=HOST lines and writes them back; a line without a host is the schema's to name", () => {
    const builders = parseBuildersText(" x86_64-linux = hsb0\n\naarch64-linux=pi4 \n");
    expect(builders).toEqual([{ system: "x86_64-linux", host: "hsb0" }, { system: "aarch64-linux", host: "pi4" }]);
    expect(parseBuildersText(buildersText(builders))).toEqual(builders);
    expect(parseBuildersText("  ")).toEqual([]);
    const draft = base();
    const errors = validateSettings({ ...draft, fleetBuild: { ...draft.fleetBuild, builders: parseBuildersText("x86_64-linux") } });
    expect(errors).toEqual({ "fleetBuild.builders.0.host": "host name is empty" });
  });

  it("reads a host list; blank is every host", () => {
    expect(parseHostList(" hsb0, csb1  gpc0,")).toEqual(["hsb0", "csb1", "gpc0"]);
    expect(parseHostList("  ")).toBeUndefined();
  });
});
