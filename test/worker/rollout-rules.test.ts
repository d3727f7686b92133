/**
 * The pure rollout rules inside workerd: the same DST answers as in Node (workerd's own Intl data),
 * settings from this Worker's real `env` (the wrangler.toml vars), and a rollout through the engine.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { MaintenanceWindow } from "../../common/protocol.ts";
import { advance, createRollout } from "../../worker/rollouts/engine.ts";
import { planRollout } from "../../worker/rollouts/plan.ts";
import { describeOpening, nextOpening } from "../../worker/rollouts/windows.ts";
import { DEFAULT_SETTINGS, settingsFromVars } from "../../worker/settings.ts";

describe("rollout rules in workerd", () => {
  it.each([
    { days: ["sat"], start: "02:00", from: "2026-03-21T12:00:00Z", opens: "2026-03-28T01:00:00.000Z" },
    { days: ["sun"], start: "02:30", from: "2026-03-28T12:00:00Z", opens: "2026-03-29T01:00:00.000Z" },
    { days: ["sun"], start: "02:30", from: "2026-10-24T12:00:00Z", opens: "2026-10-25T00:30:00.000Z" },
    { days: ["sat"], start: "02:00", from: "2026-10-24T12:00:00Z", opens: "2026-10-31T01:00:00.000Z" },
  ])("opens $days $start Europe/Vienna after $from at $opens", ({ days, start, from, opens }) => {
    const window = MaintenanceWindow.parse({ days, start, end: "04:00", timeZone: "Europe/Vienna" });
    const at = nextOpening([window], new Date(from));
    expect(at?.toISOString()).toBe(opens);
    expect(describeOpening(window, at!)).toMatch(/^(Sat|Sun) 0[23]:[03]0 Europe\/Vienna$/);
  });

  it("reads the default settings from the Worker's own env", () => {
    // The worker project's env names test notification channels (vitest.config.ts); everything else is the default.
    expect({ ...settingsFromVars(env), notifications: [] }).toEqual(DEFAULT_SETTINGS);
  });

  it("plans and starts a rollout", () => {
    const settings = DEFAULT_SETTINGS;
    const now = new Date("2026-06-05T10:00:00Z");
    const hosts = ["hsb0", "hsb1"].map((name, i) => ({ name, online: true, hold: null, autoUpdate: true, priority: i, canary: false }));
    const plan = planRollout({ hosts, settings, automatic: true, now });
    const rollout = createRollout({
      id: "ro_1",
      commit: "c0ffee0000000000000000000000000000000001",
      pr: 1,
      startedBy: "automation",
      automatic: true,
      ignoreWindows: false,
      plan,
      now,
    });
    const { actions } = advance(rollout, { type: "start" }, { settings, now, hosts: { hsb0: { online: true }, hsb1: { online: true } } });
    expect(actions.filter((a) => a.type === "send")).toEqual([
      { type: "send", host: "hsb0", kind: "pull-switch", commit: "c0ffee0000000000000000000000000000000001" },
    ]);
  });
});
