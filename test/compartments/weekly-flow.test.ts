/**
 * The normal weekly update: the six pictures, in order, as the host
 * and the repository move through them — and how scenario 5 (Git green, Lock
 * yellow after a merge) fits into the same rules (docs/compartments.md).
 */
import { describe, expect, it } from "vitest";
import type { CompartmentInputs } from "../../common/compartments.ts";
import { buildCommand, buildInputs, buildTestRun, buildUpdatePr, minutesAgo } from "./builders.ts";
import { B, COMMIT, G, PR42_CHANGES, SYSTEM, Y, colours, compute, hostReport, mainAt, type Colours } from "./world.ts";

const openPr = buildUpdatePr({ number: 42, createdAt: minutesAgo(6 * 60), lockChanges: PR42_CHANGES });
const mergedPr = buildUpdatePr({
  number: 42,
  state: "merged",
  createdAt: minutesAgo(6 * 60),
  mergedAt: minutesAgo(40),
  mergeCommitSha: COMMIT.lockB,
  lockChanges: PR42_CHANGES,
});
// The dashboard merged it and read main right away (the merge API answers with the new head).
const mainAfterMerge = mainAt("lockB", { committedAt: minutesAgo(40), updatedAt: minutesAgo(40), source: "api" });
const pull = buildCommand({ kind: "pull", state: "succeeded", createdAt: minutesAgo(30) });
const switched = buildCommand({
  kind: "switch",
  state: "succeeded",
  createdAt: minutesAgo(20),
  result: { commitBefore: COMMIT.lockB, commitAfter: COMMIT.lockB, systemBefore: SYSTEM.lockA, systemAfter: SYSTEM.lockB },
});

interface Picture {
  step: string;
  inputs: CompartmentInputs;
  expected: Colours;
}

const weeklyFlow: Picture[] = [
  {
    step: "1 GitHub Action runs: all green",
    inputs: buildInputs({ report: hostReport("lockA", "lockA"), repo: mainAt("lockA") }),
    expected: [G, G, G, G, G],
  },
  {
    step: "2 the Action opens an update PR: Lock yellow (PR pending)",
    inputs: buildInputs({ report: hostReport("lockA", "lockA"), repo: mainAt("lockA"), updatePrs: [openPr] }),
    expected: [G, G, Y, G, G],
  },
  {
    step: "3 Merge PR in the dashboard: Git yellow (PR merged), Lock yellow",
    inputs: buildInputs({ report: hostReport("lockA", "lockA"), repo: mainAfterMerge, updatePrs: [mergedPr] }),
    expected: [G, Y, Y, G, G],
  },
  {
    step: "4 Pull on the host: System yellow (need switch)",
    inputs: buildInputs({ report: hostReport("lockB", "lockA"), repo: mainAfterMerge, commands: [pull] }),
    expected: [G, G, G, Y, G],
  },
  {
    step: "5 Switch on the host: Tests yellow (need run)",
    inputs: buildInputs({
      report: hostReport("lockB", "lockB", {
        lastTestRun: buildTestRun({ system: SYSTEM.lockA, finishedAt: minutesAgo(90), results: { "ssh-reachable": true } }),
      }),
      repo: mainAfterMerge,
      commands: [switched, pull],
    }),
    expected: [G, G, G, G, Y],
  },
  {
    step: "6 tests auto-run and pass: all green",
    inputs: buildInputs({
      report: hostReport("lockB", "lockB", {
        autoRunAfterSwitch: true,
        lastTestRun: buildTestRun({
          system: SYSTEM.lockB,
          finishedAt: minutesAgo(15),
          results: { "ssh-reachable": true, "systemctl-failed": true },
        }),
      }),
      repo: mainAfterMerge,
      commands: [switched, pull],
    }),
    expected: [G, G, G, G, G],
  },
];

describe("the normal weekly update", () => {
  it.each(weeklyFlow)("picture $step", ({ inputs, expected }) => {
    expect(colours(compute(inputs))).toEqual(expected);
  });

  it("shows the update PR's lock diff while it is pending (the Lock tooltip)", () => {
    const lock = compute(weeklyFlow[1]!.inputs).lock;
    expect(lock.reason).toBe("Update PR pending: nixpkgs 3f1a9c2 → 8be04d1 (+1 more input)");
    expect(lock.action).toBeNull();
    expect(lock.since).toBe(openPr.createdAt);
  });

  it("names the inputs that changed once the new flake.lock is on main, and offers a pull", () => {
    const { git, lock } = compute(weeklyFlow[2]!.inputs);
    expect(lock.reason).toBe("new flake.lock on main (home-manager, nixpkgs changed)");
    expect(lock.action).toBe("pull");
    expect(git.reason).toBe(`behind main: ${COMMIT.lockA.slice(0, 7)} → ${COMMIT.lockB.slice(0, 7)}`);
    expect(git.action).toBe("pull");
  });

  it("suggests the next step at each picture: pull, switch, test", () => {
    const actions = weeklyFlow.map(({ inputs }) => {
      const c = compute(inputs);
      return [c.git.action, c.lock.action, c.system.action, c.tests.action];
    });
    expect(actions).toEqual([
      [null, null, null, null],
      [null, null, null, null],
      ["pull", "pull", null, null],
      [null, null, "switch", null],
      [null, null, null, "test"],
      [null, null, null, null],
    ]);
  });

  it("goes blue while the pull and the switch run", () => {
    const running = (kind: "pull" | "switch") => buildCommand({ kind, state: "running", createdAt: minutesAgo(1) });
    const pulling = compute(buildInputs({ report: hostReport("lockA", "lockA"), repo: mainAfterMerge, commands: [running("pull")] }));
    expect(colours(pulling)).toEqual([G, B, Y, G, G]);
    const switching = compute(
      buildInputs({ report: hostReport("lockB", "lockA"), repo: mainAfterMerge, commands: [running("switch"), pull] }),
    );
    expect(colours(switching)).toEqual([G, G, G, B, G]);
  });
});

describe("scenario 5 and the weekly flow's third picture", () => {
  // Both follow the merge of a lock-only update PR. Git compares with the head
  // the control plane has read; Lock also follows the update PRs. Scenario 5 is
  // the host while the merge is known and the new head is not yet read.
  const heardOfMergeOnly = buildInputs({
    report: hostReport("lockA", "lockA"),
    repo: mainAt("lockA", { updatedAt: minutesAgo(120) }),
    updatePrs: [mergedPr],
  });

  it("a merge on GitHub seen before the new head is scenario 5: Git green, Lock yellow", () => {
    expect(colours(compute(heardOfMergeOnly))).toEqual([G, G, Y, G, G]);
  });

  it("reading main's new head turns scenario 5 into the weekly flow's third picture", () => {
    const headRead = { ...heardOfMergeOnly, repo: mainAt("lockB", { updatedAt: minutesAgo(39), source: "webhook" }) };
    expect(colours(compute(headRead))).toEqual([G, Y, Y, G, G]);
  });

  it("a host that pulls the merge before main is read again is current in Git and Lock", () => {
    const pulledEarly = { ...heardOfMergeOnly, report: hostReport("lockB", "lockA"), commands: [pull] };
    const c = compute(pulledEarly);
    expect(colours(c)).toEqual([G, G, G, Y, G]);
    expect(c.git.reason).toContain("update PR #42 merged");
    expect(c.lock.reason).toMatch(/^flake\.lock from update PR #42; nixpkgs is less than a day old$/);
  });

  it("ignores a merged PR that main already includes (merged before main was last read)", () => {
    const olderMerge = buildUpdatePr({
      number: 41,
      state: "merged",
      mergedAt: minutesAgo(7 * 24 * 60),
      mergeCommitSha: COMMIT.lockA,
      lockChanges: PR42_CHANGES,
    });
    const inputs = buildInputs({ report: hostReport("lockA", "lockA"), repo: mainAt("config"), updatePrs: [olderMerge] });
    expect(compute(inputs).lock.state).toBe("green");
  });

  it("ignores a merge into another branch", () => {
    const elsewhere = buildUpdatePr({ ...mergedPr, state: "merged", baseRef: "staging", mergedAt: minutesAgo(10), mergeCommitSha: COMMIT.lockB });
    const inputs = { ...heardOfMergeOnly, updatePrs: [elsewhere] };
    expect(compute(inputs).lock.state).toBe("green");
  });
});
