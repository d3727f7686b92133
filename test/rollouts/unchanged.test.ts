/**
 * Hosts a commit does not change (docs/rollouts.md): the planner gives them no wave slot and no
 * canary role, and a host counts as unchanged only when its desired system at the commit is known
 * and is the one it runs.
 */
import { describe, expect, it } from "vitest";
import type { DesiredReport } from "../../common/protocol.ts";
import { planRollout, type PlanHost } from "../../worker/rollouts/plan.ts";
import { unchangedBy } from "../../worker/rollouts/unchanged.ts";
import { buildReport, sha, storePath } from "../compartments/builders.ts";
import { T0, planHost as h, settings, type SettingsOver } from "./world.ts";

const plan = (hosts: PlanHost[], over: SettingsOver = {}) => planRollout({ hosts, settings: settings(over), automatic: false, now: T0 });
const wavesOf = (p: ReturnType<typeof plan>) => p.waves.map((w) => (w.canary ? ["canary", ...w.hosts] : w.hosts));

describe("planning with hosts the commit does not change", () => {
  it("gives unchanged hosts no wave slot and lists them apart", () => {
    const p = plan([h("a1", { priority: 1, unchanged: true }), h("a2", { priority: 2 }), h("a3", { priority: 3, unchanged: true }), h("a4", { priority: 4 })], { waveSize: 1 });
    expect(wavesOf(p)).toEqual([["canary", "a2"], ["a4"]]);
    expect(p.unchanged).toEqual(["a1", "a3"]);
    expect(p.leftOut).toEqual([]);
  });

  it("makes the first host the commit changes the canary, not a lower-priority unchanged one", () => {
    const p = plan([h("hsb0", { priority: 1, unchanged: true }), h("gpc0", { priority: 5 }), h("csb0", { priority: 9 })], { waveSize: 5 });
    expect(wavesOf(p)).toEqual([["canary", "gpc0"], ["csb0"]]);
  });

  it("passes over a flagged canary the commit does not change", () => {
    const p = plan([h("x", { canary: true, unchanged: true }), h("y", { priority: 50 }), h("z", { priority: 60 })], { waveSize: 5 });
    expect(wavesOf(p)).toEqual([["canary", "y"], ["z"]]);
    expect(p.unchanged).toEqual(["x"]);
  });

  it("sizes the default waves by the hosts it switches (a quarter of 4, not of 8)", () => {
    const changed = ["c1", "c2", "c3", "c4"].map((name, i) => h(name, { priority: 10 + i }));
    const same = ["u1", "u2", "u3", "u4"].map((name, i) => h(name, { priority: 20 + i, unchanged: true }));
    const p = plan([...changed, ...same], { waveSize: null });
    expect(wavesOf(p)).toEqual([["canary", "c1"], ["c2"], ["c3"], ["c4"]]);
    expect(p.unchanged).toEqual(["u1", "u2", "u3", "u4"]);
  });

  it("leaves a held unchanged host out rather than pulling it", () => {
    const held = { reason: "disk swap", until: null, by: "alice", at: T0.toISOString() };
    const p = plan([h("a1", { unchanged: true, hold: held }), h("a2")]);
    expect(p.unchanged).toEqual([]);
    expect(p.leftOut.map((l) => l.name)).toEqual(["a1"]);
  });
});

describe("whether a commit changes a host's system", () => {
  const commit = sha("hosts: h2 only");
  const tree = sha("tree of hosts: h2 only");
  const running = storePath("nixos-system-h1-25.05");
  const at = { commit, tree, published: new Map<string, string>() };
  const reportWith = (desired: DesiredReport | undefined) => buildReport({ current: running, ...(desired === undefined ? {} : { mainDesired: desired }) });
  const evaluated = (c: string, outPath: string, t: string | null = null): DesiredReport => ({
    source: "local",
    latest: { commit: c, tree: t, evaluatedAt: T0.toISOString(), outPath, changes: null },
    evaluating: null,
  });

  it("is unchanged when the host's desired system at the commit is the one it runs", () => {
    expect(unchangedBy("h1", reportWith(evaluated(commit, running)), at)).toBe(true);
  });

  it("is unchanged when an evaluation of another commit of the same tree gives the running system", () => {
    expect(unchangedBy("h1", reportWith(evaluated(sha("the PR head"), running, tree)), at)).toBe(true);
  });

  it("is changed when the desired system differs, or is known only for another commit, or failed, or is not reported", () => {
    expect(unchangedBy("h1", reportWith(evaluated(commit, storePath("nixos-system-h1-25.05-new"))), at)).toBe(false);
    expect(unchangedBy("h1", reportWith(evaluated(sha("older"), running, sha("older tree"))), at)).toBe(false);
    const failed: DesiredReport = { source: "local", latest: { commit, tree, evaluatedAt: T0.toISOString(), error: "error: boom" }, evaluating: null };
    expect(unchangedBy("h1", reportWith(failed), at)).toBe(false);
    expect(unchangedBy("h1", reportWith({ source: "local", latest: null, evaluating: commit }), at)).toBe(false);
    expect(unchangedBy("h1", reportWith(undefined), at)).toBe(false);
    expect(unchangedBy("h1", null, at)).toBe(false);
  });

  it("takes a ci host's desired system from CI's publication for the commit", () => {
    const ci = reportWith({ source: "ci", latest: null, evaluating: null });
    expect(unchangedBy("h1", ci, { ...at, published: new Map([["h1", running]]) })).toBe(true);
    expect(unchangedBy("h1", ci, { ...at, published: new Map([["h1", storePath("nixos-system-h1-new")]]) })).toBe(false);
    expect(unchangedBy("h1", ci, at)).toBe(false);
  });
});
