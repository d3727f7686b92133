import { describe, expect, it } from "vitest";
import { chosenHosts, ciBlocker, ciNeedsOverride, ciReading, holdTitle, hostChoices, hostStepDuration, rolloutHeadline, waveLabel } from "../../ui/common/rollouts.ts";
import { rolloutPlan, rolloutView } from "./fixtures.ts";

describe("the progress line of a rollout", () => {
  const nine = [["c1"], ["a1", "a2", "a3", "a4"], ["b1", "b2", "b3", "b4"]];

  it("says the wave, the canary's state, the window it waits for and the pending hosts while it runs", () => {
    const base = rolloutView("ro", nine, { currentWave: 2, steps: { c1: "done", a1: "done", a2: "done" } });
    const rollout = { ...base, waves: base.waves.map((w) => (w.canary ? { ...w, state: "passed" as const } : w)) };
    expect(rolloutHeadline(rollout)).toBe("Deploying 3/9 hosts · wave 2 of 3 · canary passed");
    expect(rolloutHeadline({ ...rollout, state: "waiting-window", waitingFor: "waiting for hsb0's window, Sat 02:00 Europe/Vienna", pending: 2 })).toBe(
      "Deploying 3/9 hosts · wave 2 of 3 · canary passed · waiting for hsb0's window, Sat 02:00 Europe/Vienna · 2 pending",
    );
  });

  it.each([
    [{ state: "succeeded", done: 9, pending: 0 }, "Deployed 9/9 hosts"],
    [{ state: "succeeded", done: 7, pending: 2 }, "Deployed 7/9 hosts · succeeded with 2 pending"],
    [
      { state: "failed", done: 1, failure: { host: "a1", reason: "switch failed (exit 1)", commandId: null } },
      "Failed after 1/9 hosts · a1: switch failed (exit 1)",
    ],
    [{ state: "cancelled", done: 4, stoppedBecause: "superseded by ro_2" }, "Cancelled after 4/9 hosts · superseded by ro_2"],
  ] as const)("ends as %j", (overrides, line) => {
    expect(rolloutHeadline({ ...rolloutView("ro", nine), ...overrides })).toBe(line);
  });

  it("counts the hosts the rollout pulled without a switch", () => {
    expect(rolloutHeadline({ ...rolloutView("ro", nine), state: "succeeded", done: 9, unchanged: ["u1", "u2"] })).toBe("Deployed 9/9 hosts · 2 unchanged");
  });

  it("gives each host's step its duration, and a wave its canary mark", () => {
    const now = Date.parse("2025-12-01T12:10:00.000Z");
    expect(hostStepDuration({ startedAt: "2025-12-01T12:00:00.000Z", finishedAt: "2025-12-01T12:01:30.000Z" }, now)).toBe("1 min 30 s");
    expect(hostStepDuration({ startedAt: "2025-12-01T12:09:50.000Z" }, now)).toBe("10 s");
    expect(hostStepDuration({}, now)).toBeNull();
    expect(waveLabel({ index: 1, canary: true })).toBe("Wave 1 (canary)");
  });
});

describe("the deploy confirmation's hosts", () => {
  const plan = rolloutPlan([["c1"], ["a1", "a2"]], [
    { name: "b1", reason: "autoUpdate = false" },
    { name: "h1", reason: "held: kernel bisect" },
  ]);

  it("lists every host: the plan's ticked, the ones left out unticked with why", () => {
    expect(hostChoices(plan, ["a1", "a2", "b1", "c1", "h1", "new1"])).toEqual([
      { name: "a1", planned: true, leftOut: null },
      { name: "a2", planned: true, leftOut: null },
      { name: "b1", planned: false, leftOut: "autoUpdate = false" },
      { name: "c1", planned: true, leftOut: null },
      { name: "h1", planned: false, leftOut: "held: kernel bisect" },
      { name: "new1", planned: false, leftOut: null },
    ]);
  });

  it("ticks the hosts the commit does not change: they are pulled, and sending the plan's own ticks sends no list", () => {
    const choices = hostChoices({ ...plan, unchanged: ["u1"] }, ["a1", "a2", "c1", "u1"]);
    expect(choices.find((choice) => choice.name === "u1")).toEqual({ name: "u1", planned: true, leftOut: null });
    expect(chosenHosts(choices, new Set(["a1", "a2", "c1", "u1"]))).toBeUndefined();
  });

  it("sends no host list when the ticks are the plan's own, and exactly the ticked hosts otherwise", () => {
    const choices = hostChoices(plan, ["a1", "a2", "b1", "c1", "h1"]);
    expect(chosenHosts(choices, new Set(["c1", "a2", "a1"]))).toBeUndefined();
    expect(chosenHosts(choices, new Set(["c1", "a1", "a2", "b1"]))).toEqual(["a1", "a2", "b1", "c1"]);
    expect(chosenHosts(choices, new Set(["a2"]))).toEqual(["a2"]);
  });

  it("explains why a merge needs an override unless CI passed, and says who held a host and until when", () => {
    expect(ciBlocker("success")).toBeNull();
    expect(ciBlocker("failure")).toBe("CI failed on this PR");
    expect(ciBlocker("pending")).toBe("CI is still running on this PR");
    const title = holdTitle({ reason: "kernel bisect", by: "alice@example.com", until: null, at: "2025-12-01T12:00:00.000Z" });
    expect(title).toBe("Held: kernel bisect — by alice@example.com");
    expect(holdTitle({ reason: "x", by: "bob", until: "2025-12-10T14:00:00.000Z", at: "2025-12-01T12:00:00.000Z" })).toMatch(/^Held: x — by bob, until 2025-12-1\d \d\d:\d\d$/);
  });
});

describe("CI on the update-PR banner and in Merge & Deploy", () => {
  const automation = (ciRequired: boolean, ciExpectedBy: string | null) => ({
    state: "waiting-ci" as const,
    headSha: "a".repeat(40),
    ciPassedAt: null,
    mergeAt: null,
    reason: "",
    mergeCommitSha: null,
    rolloutId: null,
    timeline: [],
    ciRequired,
    ciExpectedBy,
  });
  const at = (iso: string) => Date.parse(iso);
  const expectedBy = "2026-12-06T13:30:00.000Z";

  it.each([
    { name: "green", ciState: "success" as const, required: true, now: "2026-12-06T14:00:00Z", reading: "success", override: false },
    { name: "red, CI not required", ciState: "failure" as const, required: false, now: "2026-12-06T14:00:00Z", reading: "failure", override: true },
    { name: "none, CI not required", ciState: "unknown" as const, required: false, now: "2026-12-06T14:00:00Z", reading: "not-required", override: false },
    { name: "running, CI not required", ciState: "pending" as const, required: false, now: "2026-12-06T14:00:00Z", reading: "not-required", override: false },
    { name: "none yet, within the expected time", ciState: "unknown" as const, required: true, now: "2026-12-06T13:29:59Z", reading: "unknown", override: true },
    { name: "none after the expected time", ciState: "unknown" as const, required: true, now: "2026-12-06T13:30:00Z", reading: "missing", override: true },
    { name: "running after the expected time", ciState: "pending" as const, required: true, now: "2026-12-06T14:00:00Z", reading: "pending", override: true },
  ])("$name reads $reading; an override is asked for: $override", ({ ciState, required, now, reading, override }) => {
    const pr = { ciState, automation: automation(required, required ? expectedBy : null) };
    expect(ciReading(pr, at(now))).toBe(reading);
    expect(ciNeedsOverride(pr)).toBe(override);
  });

  it("before the automation has looked at the PR, reads GitHub's state and asks for an override unless green", () => {
    expect(ciReading({ ciState: "unknown", automation: null }, at("2026-12-07T00:00:00Z"))).toBe("unknown");
    expect(ciNeedsOverride({ ciState: "unknown", automation: null })).toBe(true);
  });
});
