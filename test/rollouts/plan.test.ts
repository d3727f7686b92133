/**
 * Planning: which hosts a rollout touches (deploy strategy, holds, autoUpdate, selection) and in which
 * waves (the canary first, then by priority in waves of waveSize).
 */
import { describe, expect, it } from "vitest";
import { planRollout, type PlanHost } from "../../worker/rollouts/plan.ts";
import { T0, hold, planHost as h, settings, type SettingsOver } from "./world.ts";

const plan = (hosts: PlanHost[], over: SettingsOver = {}, extra: { automatic?: boolean; selected?: string[] } = {}) =>
  planRollout({ hosts, settings: settings(over), automatic: extra.automatic ?? false, selected: extra.selected, now: T0 });

const wavesOf = (p: ReturnType<typeof plan>) => p.waves.map((w) => (w.canary ? ["canary", ...w.hosts] : w.hosts));

const nine = ["a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9"].map((name, i) => h(name, { priority: 10 + i }));

describe("waves", () => {
  it.each([
    {
      name: "hosts with canary = true form the canary wave, whatever their priority",
      hosts: [h("hsb0", { priority: 1 }), h("gpc0", { priority: 50, canary: true }), h("csb0", { priority: 90 })],
      over: {},
      waves: [["canary", "gpc0"], ["hsb0"], ["csb0"]],
    },
    {
      name: "with no canary flag, canary.count picks the lowest priority number",
      hosts: [h("csb0", { priority: 90 }), h("hsb0", { priority: 20 }), h("gpc0", { priority: 5 })],
      over: {},
      waves: [["canary", "gpc0"], ["hsb0"], ["csb0"]],
    },
    {
      name: "priority ties are broken by name",
      hosts: [h("hsb1", { priority: 1 }), h("hsb0", { priority: 1 }), h("abc", { priority: 2 })],
      over: { waveSize: 5 },
      waves: [["canary", "hsb0"], ["hsb1", "abc"]],
    },
    {
      name: "canary.count 2 takes the two lowest priority numbers",
      hosts: nine,
      over: { canary: 2, waveSize: 4 },
      waves: [["canary", "a1", "a2"], ["a3", "a4", "a5", "a6"], ["a7", "a8", "a9"]],
    },
    {
      name: "canary.count 0 and no flagged host: no canary wave",
      hosts: nine.slice(0, 4),
      over: { canary: 0, waveSize: 2 },
      waves: [["a1", "a2"], ["a3", "a4"]],
    },
    {
      name: "every flagged host is a canary, even beyond canary.count",
      hosts: [h("x", { canary: true }), h("y", { canary: true }), h("z")],
      over: { canary: 1 },
      waves: [["canary", "x", "y"], ["z"]],
    },
    {
      name: "the default wave size is a quarter of the rollout's hosts, rounded up (9 → 3)",
      hosts: nine,
      over: { waveSize: null },
      waves: [["canary", "a1"], ["a2", "a3", "a4"], ["a5", "a6", "a7"], ["a8", "a9"]],
    },
    {
      name: "the default wave size is at least 1",
      hosts: nine.slice(0, 3),
      over: { waveSize: null },
      waves: [["canary", "a1"], ["a2"], ["a3"]],
    },
    {
      name: "a single host is its own canary",
      hosts: [h("solo")],
      over: {},
      waves: [["canary", "solo"]],
    },
    { name: "no hosts, no waves", hosts: [], over: {}, waves: [] },
  ])("$name", ({ hosts, over, waves }) => {
    const p = plan(hosts, over);
    expect(wavesOf(p)).toEqual(waves);
    expect(p.waves.map((w) => w.index)).toEqual(waves.map((_, i) => i + 1));
  });

  it("is deterministic: the order the hosts come in changes nothing", () => {
    const shuffled = [nine[4]!, nine[0]!, nine[8]!, nine[2]!, nine[6]!, nine[1]!, nine[3]!, nine[7]!, nine[5]!];
    expect(plan(shuffled, { canary: 2, waveSize: 3 })).toEqual(plan(nine, { canary: 2, waveSize: 3 }));
  });
});

describe("scope", () => {
  const reasons = (p: ReturnType<typeof plan>) => Object.fromEntries(p.leftOut.map((l) => [l.name, l.reason]));
  const inPlan = (p: ReturnType<typeof plan>) => p.waves.flatMap((w) => w.hosts).sort();

  it.each([
    {
      name: "a held host is left out with the hold named",
      hosts: [h("a"), h("b", { hold: hold() })],
      over: {},
      extra: {},
      included: ["a"],
      leftOut: { b: "held by alice@example.com: kernel bisect" },
    },
    {
      name: "a hold with a future until still holds and says until when",
      hosts: [h("a"), h("b", { hold: hold({ until: "2026-06-06T00:00:00Z" }) })],
      over: {},
      extra: {},
      included: ["a"],
      leftOut: { b: "held by alice@example.com: kernel bisect (until 2026-06-06T00:00:00Z)" },
    },
    {
      name: "a hold whose until has passed no longer holds",
      hosts: [h("a"), h("b", { hold: hold({ until: "2026-06-05T09:59:59Z" }) })],
      over: {},
      extra: {},
      included: ["a", "b"],
      leftOut: {},
    },
    {
      name: "an automatic rollout leaves autoUpdate = false hosts out",
      hosts: [h("a"), h("b", { autoUpdate: false })],
      over: {},
      extra: { automatic: true },
      included: ["a"],
      leftOut: { b: "autoUpdate = false" },
    },
    {
      name: "a manual deploy lists autoUpdate = false hosts as not selected",
      hosts: [h("a"), h("b", { autoUpdate: false })],
      over: {},
      extra: {},
      included: ["a"],
      leftOut: { b: "autoUpdate = false (not selected)" },
    },
    {
      name: "a manual deploy that selects an autoUpdate = false host includes it",
      hosts: [h("a"), h("b", { autoUpdate: false })],
      over: {},
      extra: { selected: ["a", "b"] },
      included: ["a", "b"],
      leftOut: {},
    },
    {
      name: "selected restricts the rollout to those hosts; unknown names are listed",
      hosts: [h("a"), h("b"), h("c")],
      over: {},
      extra: { selected: ["c", "nope"] },
      included: ["c"],
      leftOut: { a: "not selected", b: "not selected", nope: "unknown host" },
    },
    {
      name: "selection does not override a hold",
      hosts: [h("a"), h("b", { hold: hold() })],
      over: {},
      extra: { selected: ["a", "b"] },
      included: ["a"],
      leftOut: { b: "held by alice@example.com: kernel bisect" },
    },
    {
      name: "online-only leaves offline hosts out",
      hosts: [h("a"), h("b", { online: false })],
      over: { deployStrategy: "online-only" as const },
      extra: {},
      included: ["a"],
      leftOut: { b: "offline" },
    },
    {
      name: "all keeps offline hosts: their command waits in the offline queue",
      hosts: [h("a"), h("b", { online: false })],
      over: { deployStrategy: "all" as const },
      extra: { automatic: true },
      included: ["a", "b"],
      leftOut: {},
    },
    {
      name: "none deploys nothing automatically",
      hosts: [h("a"), h("b")],
      over: { deployStrategy: "none" as const },
      extra: { automatic: true },
      included: [],
      leftOut: { a: "deploy strategy is none", b: "deploy strategy is none" },
    },
    {
      name: "none does not stop a manual deploy",
      hosts: [h("a"), h("b", { online: false })],
      over: { deployStrategy: "none" as const },
      extra: {},
      included: ["a", "b"],
      leftOut: {},
    },
  ])("$name", ({ hosts, over, extra, included, leftOut }) => {
    const p = plan(hosts, over, extra);
    expect(inPlan(p)).toEqual(included);
    expect(reasons(p)).toEqual(leftOut);
  });

  it("a host whose build failed reads so; left out of the chosen hosts, it reads as left behind on purpose", () => {
    const failedBuilds = { commit: "c".repeat(40), hosts: ["b", "c"] };
    const hosts = [h("a"), h("b"), h("c")];
    const byDefault = planRollout({ hosts, settings: settings(), automatic: false, failedBuilds, now: T0 });
    expect(reasons(byDefault)).toEqual({ b: "its build of ccccccc failed", c: "its build of ccccccc failed" });
    const chosen = planRollout({ hosts, settings: settings(), automatic: false, selected: ["a", "c"], failedBuilds, now: T0 });
    expect(inPlan(chosen)).toEqual(["a"]);
    expect(reasons(chosen)).toEqual({ b: "left behind on purpose: not selected, its build of ccccccc failed", c: "its build of ccccccc failed" });
  });

  it("counts left-out hosts out of the wave size", () => {
    const hosts = [...nine.slice(0, 5), h("held", { hold: hold(), priority: 0 })];
    // 5 hosts in scope: a quarter rounds up to 2.
    expect(wavesOf(plan(hosts))).toEqual([["canary", "a1"], ["a2", "a3"], ["a4", "a5"]]);
  });
});
