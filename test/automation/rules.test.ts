/**
 * The auto-merge rules without workerd: what each PR, CI, fleet build and
 * setting leads to, the schedule (CI green + the delay), rescheduling on a new
 * head, cancelling with the reason, the notifications (ci-failed once per
 * head), Skip and Merge now, windows, and — under random event sequences — a
 * red or unfinished CI never merges and a head is merged at most once.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Settings, type CiState, type FleetBuildVerdict } from "../../common/protocol.ts";
import {
  decide,
  deployed,
  merged,
  mergeRefused,
  MERGE_RECOVERY_MS,
  skip,
  TIMELINE_LIMIT,
  toView,
  withTimeline,
  type AutomationInput,
  type AutomationPr,
  type AutomationRecord,
} from "../../worker/automation/rules.ts";

const HEAD = "a".repeat(40);
const NEXT = "b".repeat(40);
const T0 = new Date("2026-12-01T13:05:00Z");
const minutes = (n: number) => new Date(T0.getTime() + n * 60_000);

// The fleet build is required by default; these rules' tests turn it on where they are about it.
const settings = (patch: { automation?: Partial<Settings["automation"]>; flakeUpdates?: boolean; windows?: Settings["windows"]; buildOnUpdatePr?: boolean } = {}) =>
  Settings.parse({
    automation: { enabled: true, mergeDelayMinutes: 60, requireFleetBuild: false, ...patch.automation },
    flakeUpdates: { enabled: patch.flakeUpdates ?? true },
    fleetBuild: { buildOnUpdatePr: patch.buildOnUpdatePr ?? true },
    windows: patch.windows ?? [],
  });

const pr = (patch: Partial<AutomationPr> = {}): AutomationPr => ({
  number: 12,
  title: "flake.lock: Update",
  url: "http://github.test/example/fleet/pull/12",
  state: "open",
  headSha: HEAD,
  isUpdatePr: true,
  supersededBy: null,
  mergeable: true,
  mergeCommitSha: null,
  ...patch,
});

const input = (patch: Partial<AutomationInput> = {}): AutomationInput => ({
  pr: pr(),
  ci: "success",
  fleetBuild: null,
  settings: settings(),
  stored: null,
  now: T0,
  ...patch,
});

/** Runs the rules over a sequence, feeding each record into the next step. */
function steps(...inputs: Partial<AutomationInput>[]) {
  let stored: AutomationRecord | null = null;
  return inputs.map((patch) => {
    const decision = decide(input({ ...patch, stored }));
    stored = decision.record;
    return decision;
  });
}

const notifications = (d: ReturnType<typeof decide>) => d.actions.flatMap((a) => (a.type === "notify" ? [a.event] : []));

describe("the state for each situation", () => {
  it.each<{ name: string; patch: Partial<AutomationInput>; state: string; reason: RegExp }>([
    { name: "CI unknown", patch: { ci: "unknown" }, state: "waiting-ci", reason: /no CI result yet/ },
    { name: "CI running", patch: { ci: "pending" }, state: "waiting-ci", reason: /CI is running/ },
    { name: "CI red", patch: { ci: "failure" }, state: "ci-failed", reason: /CI failed on aaaaaaa/ },
    { name: "CI green", patch: { ci: "success" }, state: "scheduled", reason: /auto-merge at 14:05 UTC/ },
    { name: "automation off", patch: { settings: settings({ automation: { enabled: false } }) }, state: "off", reason: /auto-merge is off/ },
    { name: "flake updates off", patch: { settings: settings({ flakeUpdates: false }) }, state: "off", reason: /flake updates are turned off/ },
    { name: "fleet build required, none yet", patch: { settings: settings({ automation: { requireFleetBuild: true } }) }, state: "waiting-fleet-build", reason: /fleet build/ },
    {
      name: "fleet build required, pending",
      patch: { settings: settings({ automation: { requireFleetBuild: true } }), fleetBuild: "pending" },
      state: "waiting-fleet-build",
      reason: /waiting for the fleet build/,
    },
    {
      name: "fleet build failed",
      patch: { settings: settings({ automation: { requireFleetBuild: true } }), fleetBuild: "failure" },
      state: "fleet-build-failed",
      reason: /fleet build failed/,
    },
    {
      name: "fleet build passed",
      patch: { settings: settings({ automation: { requireFleetBuild: true } }), fleetBuild: "success" },
      state: "scheduled",
      reason: /auto-merge at/,
    },
    { name: "CI not required, none reported", patch: { ci: "unknown", settings: settings({ automation: { requireCi: false } }) }, state: "scheduled", reason: /auto-merge at 14:05/ },
    {
      name: "CI not required, none reported, waiting for the fleet build",
      patch: { ci: "unknown", fleetBuild: "pending", settings: settings({ automation: { requireCi: false, requireFleetBuild: true } }) },
      state: "waiting-fleet-build",
      reason: /waiting for the fleet build to pass/,
    },
    {
      name: "CI not required, none reported, the fleet build passed",
      patch: { ci: "unknown", fleetBuild: "success", settings: settings({ automation: { requireCi: false, requireFleetBuild: true } }) },
      state: "scheduled",
      reason: /auto-merge at 14:05/,
    },
    {
      name: "CI not required, red",
      patch: { ci: "failure", fleetBuild: "success", settings: settings({ automation: { requireCi: false, requireFleetBuild: true } }) },
      state: "ci-failed",
      reason: /CI failed/,
    },
    {
      name: "fleet build required, update PRs not built by themselves",
      patch: { settings: settings({ automation: { requireFleetBuild: true }, buildOnUpdatePr: false }) },
      state: "waiting-fleet-build",
      reason: /not built by themselves \(fleetBuild.buildOnUpdatePr\), start one with Build on all hosts/,
    },
    { name: "closed", patch: { pr: pr({ state: "closed" }) }, state: "off", reason: /closed without merging/ },
    { name: "label removed", patch: { pr: pr({ isUpdatePr: false }) }, state: "off", reason: /no longer an update PR/ },
    { name: "superseded", patch: { pr: pr({ supersededBy: 13 }) }, state: "off", reason: /superseded by the newer update PR #13/ },
    { name: "merged by a person", patch: { pr: pr({ state: "merged", mergeCommitSha: NEXT }) }, state: "merged", reason: /outside the automation/ },
  ])("$name → $state", ({ patch, state, reason }) => {
    const { record } = decide(input(patch));
    expect(record.state).toBe(state);
    expect(record.reason).toMatch(reason);
  });

  it("schedules the merge at CI green + the delay, fractions of a minute allowed, with an alarm then", () => {
    const { record, actions } = decide(input({ settings: settings({ automation: { mergeDelayMinutes: 0.05 } }) }));
    expect(record.ciPassedAt).toBe(T0.toISOString());
    expect(record.mergeAt).toBe(new Date(T0.getTime() + 3000).toISOString());
    expect(record.wakeAt).toBe(record.mergeAt);
    expect(actions[0]).toEqual({ type: "schedule", at: record.mergeAt });
    expect(record.timeline.map((t) => t.text)).toEqual(["CI passed", "merge scheduled for 13:05 UTC"]);
  });

  it("keeps the CI-green time across later looks, so the delay does not restart", () => {
    const [first, second] = steps({ now: T0 }, { now: minutes(20) });
    expect(second!.record.mergeAt).toBe(first!.record.mergeAt);
    expect(second!.record.ciPassedAt).toBe(T0.toISOString());
    expect(second!.actions).toEqual([]);
  });

  it("does not merge outside the alarm even when due: it asks for an alarm now", () => {
    const [, due] = steps({ now: T0 }, { now: minutes(61) });
    expect(due!.record.state).toBe("scheduled");
    expect(due!.actions.some((a) => a.type === "merge")).toBe(false);
    expect(due!.record.wakeAt).toBe(minutes(61).toISOString());
  });

  it("merges at the alarm once due, marked merging with a recovery wake-up", () => {
    const [, atAlarm] = steps({ now: T0 }, { now: minutes(60), atAlarm: true });
    expect(atAlarm!.record.state).toBe("merging");
    expect(atAlarm!.actions).toContainEqual({ type: "merge", headSha: HEAD });
    expect(atAlarm!.record.wakeAt).toBe(new Date(minutes(60).getTime() + MERGE_RECOVERY_MS).toISOString());
  });

  it("an early alarm does not merge", () => {
    const [, early] = steps({ now: T0 }, { now: minutes(59), atAlarm: true });
    expect(early!.record.state).toBe("scheduled");
    expect(early!.actions).toEqual([]);
  });

  it("a second alarm while merging, or after merged, merges nothing", () => {
    const [, merging, again] = steps({ now: T0 }, { now: minutes(60), atAlarm: true }, { now: minutes(61), atAlarm: true });
    expect(merging!.record.state).toBe("merging");
    expect(again!.actions).toEqual([]);
    const done = merged(merging!.record, NEXT, settings(), minutes(61));
    const after = decide(input({ stored: done, now: minutes(62), atAlarm: true, pr: pr({ state: "merged", mergeCommitSha: NEXT }) }));
    expect(after.actions).toEqual([]);
    expect(after.record.state).toBe("merged");
  });

  it("a conflict GitHub reports at the alarm fails the head without a merge attempt", () => {
    const [, atAlarm] = steps({ now: T0 }, { now: minutes(60), atAlarm: true, pr: pr({ mergeable: false }) });
    expect(atAlarm!.record.state).toBe("failed");
    expect(atAlarm!.record.reason).toMatch(/conflict/);
    expect(atAlarm!.actions.some((a) => a.type === "merge")).toBe(false);
    // Told as a merge GitHub refuses is: the same event, one per head.
    const told = atAlarm!.actions.filter((a) => a.type === "notify");
    expect(told).toEqual([expect.objectContaining({ event: "merge-failed", id: `merge-failed:${atAlarm!.record.pr}:${atAlarm!.record.headSha}`, title: expect.stringMatching(/was not merged$/) })]);
    expect(told[0]).toMatchObject({ text: expect.stringMatching(/conflict with the base branch/) });
  });
});

describe("changes under a schedule", () => {
  it("a new commit cancels and reschedules from its own CI green", () => {
    const [scheduled, moved, green] = steps(
      { now: T0 },
      { now: minutes(10), pr: pr({ headSha: NEXT }), ci: "pending" },
      { now: minutes(15), pr: pr({ headSha: NEXT }), ci: "success" },
    );
    expect(scheduled!.record.state).toBe("scheduled");
    expect(moved!.record).toMatchObject({ state: "waiting-ci", headSha: NEXT, mergeAt: null, wakeAt: null, ciPassedAt: null });
    expect(moved!.actions[0]).toEqual({ type: "cancel" });
    expect(moved!.record.timeline.at(-1)!.text).toBe("rescheduled: new commit bbbbbbb");
    expect(green!.record.mergeAt).toBe(minutes(75).toISOString());
    expect(green!.actions[0]).toEqual({ type: "schedule", at: minutes(75).toISOString() });
  });

  it.each<{ name: string; change: Partial<AutomationPr>; text: string }>([
    { name: "closed", change: { state: "closed" }, text: "cancelled: the PR was closed" },
    { name: "label removed", change: { isUpdatePr: false }, text: "cancelled: no longer an update PR" },
    { name: "superseded", change: { supersededBy: 14 }, text: "cancelled: superseded by #14" },
  ])("$name cancels the schedule and says so", ({ change, text }) => {
    const [, cancelled] = steps({ now: T0 }, { now: minutes(5), pr: pr(change) });
    expect(cancelled!.record.state).toBe("off");
    expect(cancelled!.record.wakeAt).toBeNull();
    expect(cancelled!.actions).toEqual([{ type: "cancel" }]);
    expect(cancelled!.record.timeline.at(-1)!.text).toBe(text);
  });

  it("CI turning red after green cancels; green again schedules from the new green", () => {
    const [, red, green] = steps({ now: T0 }, { now: minutes(5), ci: "failure" }, { now: minutes(8), ci: "success" });
    expect(red!.record.state).toBe("ci-failed");
    expect(red!.actions[0]).toEqual({ type: "cancel" });
    expect(green!.record.mergeAt).toBe(minutes(68).toISOString());
  });

  it("turning the automation off cancels the schedule", () => {
    const [, off] = steps({ now: T0 }, { now: minutes(5), settings: settings({ automation: { enabled: false } }) });
    expect(off!.record.state).toBe("off");
    expect(off!.actions).toEqual([{ type: "cancel" }]);
  });
});

describe("notifications", () => {
  it("announces an update PR when first seen, and the scheduled merge once", () => {
    const [first, second] = steps({ now: T0 }, { now: minutes(1) });
    expect(notifications(first!)).toEqual(["update-pr-opened", "merge-scheduled"]);
    expect(notifications(second!)).toEqual([]);
  });

  it("announces a CI failure once per head, with the failing checks and their links", () => {
    const failing = [{ name: "build", url: "http://github.test/example/fleet/pull/12/checks" }];
    const [red, stillRed, newHeadRed] = steps(
      { ci: "failure", failingChecks: failing },
      { ci: "failure", failingChecks: failing, now: minutes(1) },
      { ci: "failure", failingChecks: failing, now: minutes(2), pr: pr({ headSha: NEXT }) },
    );
    const event = red!.actions.find((a) => a.type === "notify" && a.event === "ci-failed");
    expect(event).toMatchObject({ id: `ci-failed:12:${HEAD}`, title: "CI failed on update PR #12" });
    expect(event?.type === "notify" && event.text).toContain("build: http://github.test/example/fleet/pull/12/checks");
    expect(notifications(stillRed!)).toEqual([]);
    expect(notifications(newHeadRed!)).toEqual(["ci-failed"]);
  });

  it("announces nothing for a PR when flake updates are off", () => {
    expect(notifications(decide(input({ settings: settings({ flakeUpdates: false }) })))).toEqual([]);
  });
});

describe("Skip, Merge now, windows", () => {
  it("Skip leaves this head alone; a new head is considered again", () => {
    const scheduled = decide(input()).record;
    const skipped = skip(scheduled, pr(), "alice@example.com", minutes(1));
    expect(skipped.actions).toEqual([{ type: "cancel" }]);
    expect(skipped.record).toMatchObject({ state: "skipped", wakeAt: null, mergeAt: null });
    expect(skipped.record.timeline.at(-1)!.text).toBe("skipped by alice@example.com");
    const later = decide(input({ stored: skipped.record, now: minutes(90), atAlarm: true }));
    expect(later.record.state).toBe("skipped");
    expect(later.actions).toEqual([]);
    const newHead = decide(input({ stored: skipped.record, now: minutes(91), pr: pr({ headSha: NEXT }) }));
    expect(newHead.record.state).toBe("scheduled");
  });

  it("Merge now merges at once, without the delay or a window, by whoever asked", () => {
    const windows = [{ days: ["sat" as const], start: "02:00", end: "04:00", timeZone: "UTC" }];
    const now = decide(input({ settings: settings({ windows }), mergeNow: { actor: "bob@example.com" } }));
    expect(now.actions).toContainEqual({ type: "merge", headSha: HEAD });
    expect(now.record.timeline.at(-1)!.text).toBe("merging now (by bob@example.com)");
  });

  it("Merge now without required CI merges a head no CI reported on, never a red one", () => {
    const noCi = settings({ automation: { requireCi: false } });
    expect(decide(input({ ci: "unknown", settings: noCi, mergeNow: { actor: "bob" } })).actions).toContainEqual({ type: "merge", headSha: HEAD });
    expect(decide(input({ ci: "failure", settings: noCi, mergeNow: { actor: "bob" } })).actions.some((a) => a.type === "merge")).toBe(false);
  });

  it("Merge now does not merge a head whose CI is not green", () => {
    const pending = decide(input({ ci: "pending", mergeNow: { actor: "bob" } }));
    expect(pending.actions.some((a) => a.type === "merge")).toBe(false);
    const red = decide(input({ ci: "failure", mergeNow: { actor: "bob" } }));
    expect(red.actions.some((a) => a.type === "merge")).toBe(false);
  });

  it("waits for the fleet's maintenance window, with an alarm at its opening", () => {
    // 2026-12-01 is a Tuesday; the window opens Saturday 02:00 UTC.
    const windows = [{ days: ["sat" as const], start: "02:00", end: "04:00", timeZone: "UTC" }];
    const [, waiting] = steps({ settings: settings({ windows }) }, { settings: settings({ windows }), now: minutes(60), atAlarm: true });
    expect(waiting!.record.state).toBe("waiting-window");
    expect(waiting!.record.wakeAt).toBe("2026-12-05T02:00:00.000Z");
    const open = decide(input({ settings: settings({ windows }), stored: waiting!.record, now: new Date("2026-12-05T02:00:00Z"), atAlarm: true }));
    expect(open.actions).toContainEqual({ type: "merge", headSha: HEAD });
  });

  it("a fleet window list that never opens fails the head and tells it as merge-failed, without a merge attempt", () => {
    // The settings schema refuses a window without days (no valid setting reaches this), so the list is
    // built past it: the rule must still end the head instead of waiting for an opening that never comes.
    const never = { ...settings(), windows: [{ days: [], start: "02:00", end: "04:00", timeZone: "UTC" }] } as unknown as Settings;
    const [, atAlarm] = steps({ settings: never }, { settings: never, now: minutes(60), atAlarm: true });
    expect(atAlarm!.record).toMatchObject({ state: "failed", reason: "no maintenance window ever opens", wakeAt: null });
    expect(atAlarm!.actions.some((a) => a.type === "merge")).toBe(false);
    const told = atAlarm!.actions.filter((a) => a.type === "notify");
    expect(told).toEqual([expect.objectContaining({ event: "merge-failed", id: `merge-failed:${atAlarm!.record.pr}:${HEAD}`, text: expect.stringMatching(/no maintenance window ever opens$/) })]);
  });

  it("a host's own window does not hold the merge", () => {
    const windows = [{ days: ["sat" as const], start: "02:00", end: "04:00", timeZone: "UTC", hosts: ["web1"] }];
    const [, due] = steps({ settings: settings({ windows }) }, { settings: settings({ windows }), now: minutes(60), atAlarm: true });
    expect(due!.record.state).toBe("merging");
  });
});

describe("after the merge", () => {
  it("records the merge commit, then the rollout or why none", () => {
    const merging = steps({ now: T0 }, { now: minutes(60), atAlarm: true })[1]!.record;
    const done = merged(merging, NEXT, settings(), minutes(60));
    expect(done).toMatchObject({ state: "merged", mergeCommitSha: NEXT, wakeAt: null });
    expect(deployed(done, { rolloutId: "ro_1" }, minutes(60))).toMatchObject({ state: "deployed", rolloutId: "ro_1" });
    expect(deployed(done, { problem: "no host is in this rollout" }, minutes(60)).reason).toMatch(/no rollout started: no host/);
    expect(merged(merging, NEXT, settings({ automation: { deployStrategy: "none" } }), minutes(60)).reason).toMatch(/deployStrategy none/);
  });

  it("a refused merge is failed with GitHub's reason, and not tried again for that head", () => {
    const merging = steps({ now: T0 }, { now: minutes(60), atAlarm: true })[1]!.record;
    const failed = mergeRefused(merging, "Merge conflict", minutes(60));
    expect(failed).toMatchObject({ state: "failed", reason: "GitHub refused the merge: Merge conflict", wakeAt: null });
    expect(decide(input({ stored: failed, now: minutes(70), atAlarm: true })).actions).toEqual([]);
  });

  it("the view leaves out what only the rules need", () => {
    const view = toView(decide(input()).record, settings());
    expect(Object.keys(view).sort()).toEqual(["ciExpectedBy", "ciPassedAt", "ciRequired", "headSha", "mergeAt", "mergeCommitSha", "reason", "rolloutId", "state", "timeline"]);
  });

  it("the view says whether CI is required and, if so, when a head without any CI reads as missing it", () => {
    const record = decide(input({ ci: "unknown", now: T0 })).record;
    expect(toView(record, settings({ automation: { ciMissingAfterMinutes: 30 } }))).toMatchObject({ ciRequired: true, ciExpectedBy: minutes(30).toISOString() });
    expect(toView(record, settings({ automation: { requireCi: false } }))).toMatchObject({ ciRequired: false, ciExpectedBy: null });
    // A new head starts the wait again.
    const moved = decide(input({ ci: "unknown", pr: pr({ headSha: NEXT }), stored: record, now: minutes(45) })).record;
    expect(toView(moved, settings({ automation: { ciMissingAfterMinutes: 30 } })).ciExpectedBy).toBe(minutes(75).toISOString());
  });

  it("the timeline keeps the newest entries only", () => {
    let record = decide(input()).record;
    for (let i = 0; i < TIMELINE_LIMIT + 10; i++) record = withTimeline(record, T0, `entry ${i}`);
    expect(record.timeline).toHaveLength(TIMELINE_LIMIT);
    expect(record.timeline.at(-1)!.text).toBe(`entry ${TIMELINE_LIMIT + 9}`);
  });
});

describe("under any sequence of events", () => {
  const event = fc.record({
    minutes: fc.integer({ min: 0, max: 30 }),
    ci: fc.constantFrom<CiState>("pending", "success", "failure", "unknown"),
    newHead: fc.boolean(),
    atAlarm: fc.boolean(),
    fleetBuild: fc.constantFrom<FleetBuildVerdict | null>(null, "pending", "success", "failure"),
    mergeable: fc.constantFrom<boolean | null>(true, false, null),
  });

  it("merges only a head whose CI is green, only once due, at most once per head, and never after merging", () => {
    fc.assert(
      fc.property(fc.array(event, { maxLength: 40 }), fc.boolean(), fc.constantFrom(0, 0.05, 5, 60), (events, requireFleetBuild, delay) => {
        const s = settings({ automation: { mergeDelayMinutes: delay, requireFleetBuild } });
        let stored: AutomationRecord | null = null;
        let now = T0;
        let heads = 0;
        const mergedHeads = new Set<string>();
        for (const e of events) {
          now = new Date(now.getTime() + e.minutes * 60_000);
          if (e.newHead) heads++;
          const headSha = heads.toString(16).padStart(40, "0");
          const decision = decide(input({ pr: pr({ headSha, mergeable: e.mergeable }), ci: e.ci, fleetBuild: e.fleetBuild, settings: s, stored, now, atAlarm: e.atAlarm }));
          for (const action of decision.actions) {
            if (action.type !== "merge") continue;
            expect(e.ci).toBe("success");
            expect(e.atAlarm).toBe(true);
            expect(e.mergeable).not.toBe(false);
            if (requireFleetBuild) expect(e.fleetBuild).toBe("success");
            expect(now.getTime()).toBeGreaterThanOrEqual(Date.parse(decision.record.ciPassedAt!) + delay * 60_000);
            expect(mergedHeads.has(action.headSha)).toBe(false);
            mergedHeads.add(action.headSha);
          }
          // Once merging, nothing the webhooks say changes the record: the merge's outcome does.
          if (stored?.state === "merging") expect(decision.record).toEqual(stored);
          stored = decision.record;
          expect(stored.timeline.length).toBeLessThanOrEqual(TIMELINE_LIMIT);
        }
        expect(mergedHeads.size).toBeLessThanOrEqual(1);
      }),
      { numRuns: Number(process.env.NIXFLEET_PROPERTY_RUNS) || 500 },
    );
  });
});
