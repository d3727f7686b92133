/**
 * A system a host's safety net rolled back is not sent to it again without force: the planner leaves
 * that host out of a rollout of a commit that would send it back there, and says why.
 */
import { describe, expect, it } from "vitest";
import type { DesiredReport, Report } from "../../common/protocol.ts";
import { planRollout } from "../../worker/rollouts/plan.ts";
import { describeRejected, rejectedAt } from "../../worker/rollouts/rejected.ts";
import { buildReport, sha, storePath } from "../compartments/builders.ts";
import { T0, planHost as h, settings } from "./world.ts";

const commit = sha("hosts: web1 breaks its network");
const tree = sha("tree of hosts: web1 breaks its network");
const bad = storePath("nixos-system-web1-bad");
const running = storePath("nixos-system-web1-good");
const at = { commit, tree, published: new Map<string, string>() };
const rolledBackAt = "2026-12-06T21:00:00.000Z";

const evaluated = (c: string, outPath: string, t: string | null = null): DesiredReport => ({
  source: "local",
  latest: { commit: c, tree: t, evaluatedAt: T0.toISOString(), outPath, changes: null },
  evaluating: null,
});

function reportOf(rejected: { storePath: string; commit: string | null }[], desired?: DesiredReport): Report {
  const report = buildReport({ hostname: "web1", current: running, ...(desired === undefined ? {} : { mainDesired: desired }) });
  return {
    ...report,
    safetyNet: { enabled: true, confirmTimeoutSeconds: 120, pending: null, lastRollback: null, rejected: rejected.map((r) => ({ ...r, at: rolledBackAt })) },
  };
}

describe("a system the host's safety net rolled back", () => {
  it.each([
    ["rolled back at the rollout's very commit", [{ storePath: bad, commit }], undefined],
    ["the commit's desired system is the rolled-back store path (another commit, same system)", [{ storePath: bad, commit: sha("the PR head") }], evaluated(commit, bad)],
    ["a commit of the same tree evaluated to the rolled-back store path", [{ storePath: bad, commit: null }], evaluated(sha("merge commit"), bad, tree)],
  ] as const)("is the rollout's target when %s", (_case, rejected, desired) => {
    expect(rejectedAt("web1", reportOf([...rejected], desired), at)).toMatchObject({ storePath: bad });
  });

  it.each([
    ["it rejected nothing", [], undefined],
    ["it rejected another commit's system and the commit's desired system is unknown", [{ storePath: bad, commit: sha("older") }], undefined],
    ["the commit's desired system is another store path", [{ storePath: bad, commit: sha("older") }], evaluated(commit, storePath("nixos-system-web1-fixed"))],
  ] as const)("is not the rollout's target when %s", (_case, rejected, desired) => {
    expect(rejectedAt("web1", reportOf([...rejected], desired), at)).toBeNull();
  });

  it("has no rejected systems to match on a host without a report or an older agent's report", () => {
    expect(rejectedAt("web1", null, at)).toBeNull();
    const { safetyNet: _none, ...older } = reportOf([{ storePath: bad, commit }]);
    expect(rejectedAt("web1", older, at)).toBeNull();
  });

  it("leaves the host out of the plan, saying what was rolled back and that only force sends it", () => {
    const reason = describeRejected({ storePath: bad, commit, at: rolledBackAt });
    expect(reason).toBe(`its safety net rolled nixos-system-web1-bad (commit ${commit.slice(0, 7)}) back at ${rolledBackAt}: not sent again without force`);
    const plan = planRollout({ hosts: [h("web1", { priority: 1, rejected: reason }), h("web2", { priority: 2 }), h("web3", { priority: 3 })], settings: settings({ waveSize: 5 }), automatic: false, now: T0 });
    expect(plan.leftOut).toEqual([{ name: "web1", reason }]);
    // The canary is the first host the rollout may switch.
    expect(plan.waves.map((w) => w.hosts)).toEqual([["web2"], ["web3"]]);
  });
});
