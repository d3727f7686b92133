/** The auto-merge line of the update-PR banner: the countdown, the reasons, which buttons show. */
import { describe, expect, it } from "vitest";
import type { UpdatePrAutomation } from "../../common/protocol.ts";
import { automationDisplay, automationLockNote } from "../../ui/common/automation.ts";
import { countdown, localClock } from "../../common/text.ts";

const at = (iso: string) => Date.parse(iso);
const automation = (patch: Partial<UpdatePrAutomation>): UpdatePrAutomation => ({
  state: "scheduled",
  headSha: "a".repeat(40),
  ciPassedAt: "2026-12-01T13:05:00Z",
  mergeAt: "2026-12-01T14:05:00Z",
  reason: "auto-merge at 14:05 UTC",
  mergeCommitSha: null,
  rolloutId: null,
  timeline: [],
  ciRequired: true,
  ciExpectedBy: null,
  ...patch,
});

describe("automationDisplay", () => {
  it("says when CI passed and when it merges, with the countdown", () => {
    const d = automationDisplay(automation({}), true, at("2026-12-01T13:23:00Z"));
    expect(d.line).toBe(`CI passed ${localClock("2026-12-01T13:05:00Z")} · auto-merge at ${localClock("2026-12-01T14:05:00Z")} (in 42 min)`);
    expect(d).toMatchObject({ tone: "busy", ticking: true, canMergeNow: true, canSkip: true });
  });

  it.each([
    { ms: 35_000, text: "in 35 s" },
    { ms: 119_000, text: "in 119 s" },
    { ms: 42 * 60_000, text: "in 42 min" },
    { ms: 150 * 60_000, text: "in 2 h 30 min" },
    { ms: 0, text: "now" },
    { ms: -5_000, text: "now" },
  ])("countdown $ms ms → $text", ({ ms, text }) => {
    expect(countdown(new Date(1_000_000 + ms).toISOString(), 1_000_000)).toBe(text);
  });

  it("says why it will not merge, and offers no Merge now while CI has not passed", () => {
    const red = automationDisplay(automation({ state: "ci-failed", ciPassedAt: null, mergeAt: null, reason: "CI failed on aaaaaaa: it will not be merged" }), false, 0);
    expect(red).toMatchObject({ line: "Will not auto-merge: CI failed on aaaaaaa: it will not be merged", tone: "bad", canMergeNow: false, canSkip: true });
    const waiting = automationDisplay(automation({ state: "waiting-ci", ciPassedAt: null, mergeAt: null, reason: "waiting for CI on aaaaaaa (CI is running)" }), false, 0);
    expect(waiting).toMatchObject({ line: "waiting for CI on aaaaaaa (CI is running)", canMergeNow: false, ticking: false });
  });

  it("offers nothing once merging or merged, and no second Skip", () => {
    for (const state of ["merging", "merged", "deployed"] as const) {
      expect(automationDisplay(automation({ state }), true, 0)).toMatchObject({ canMergeNow: false, canSkip: false });
    }
    expect(automationDisplay(automation({ state: "skipped", reason: "skipped by alice" }), true, 0)).toMatchObject({ canSkip: false, canMergeNow: true });
  });
});

describe("automationLockNote", () => {
  it("tells a host's Lock cell when the update PR merges by itself, or why it does not", () => {
    expect(automationLockNote(null)).toBeNull();
    expect(automationLockNote(automation({}))).toBe(`Auto-merge at ${localClock("2026-12-01T14:05:00Z")}.`);
    expect(automationLockNote(automation({ state: "ci-failed", mergeAt: null, reason: "CI failed on aaaaaaa: it will not be merged" }))).toBe(
      "Not auto-merged now: CI failed on aaaaaaa: it will not be merged.",
    );
    expect(automationLockNote(automation({ state: "off", mergeAt: null, reason: "automation is off in the settings" }))).toBe("Not auto-merged now: automation is off in the settings.");
    // Not considered yet: nothing to say.
    expect(automationLockNote(automation({ state: "waiting-ci", mergeAt: null, reason: "" }))).toBeNull();
    // Being merged or deployed: the banner and the rollout say so, the cell adds nothing.
    for (const state of ["merging", "merged", "deployed"] as const) expect(automationLockNote(automation({ state }))).toBeNull();
  });
});
