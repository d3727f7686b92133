/**
 * Troubleshooting and rollback: each problem a host can be in shows the colour, the words and the
 * action the rules promise (see docs/compartments.md "Precedence per compartment").
 */
import { describe, expect, it } from "vitest";
import { LOCK_AGE_DAYS, lockAge } from "../../common/compartments.ts";
import {
  NOW,
  buildCommand,
  buildInputs,
  buildRepoState,
  buildReport,
  buildTestRun,
  buildUpdatePr,
  lockHash,
  minutesAgo,
  unixDaysAgo,
} from "./builders.ts";
import { COMMIT, G, LOCK, PR42_CHANGES, SYSTEM, W, Y, colours, compute, hostReport, hsb0, mainAt } from "./world.ts";

describe("Agent compartment", () => {
  it("is red for an outdated agent and offers Pull + Switch, which updates the binary", () => {
    const agent = compute(hsb0("lockA", "lockA", "lockA", { report: hostReport("lockA", "lockA", { agentVersion: "0.0.9" }) })).agent;
    expect(agent).toMatchObject({ state: "red", action: "pull-switch" });
  });

  it("on macOS mentions that Restart Agent may be needed after the switch", () => {
    const report = hostReport("lockA", "lockA", { agentVersion: "0.0.9", platform: "darwin" });
    const agent = compute(hsb0("lockA", "lockA", "lockA", { report, platform: "darwin" })).agent;
    expect(agent.reason).toBe(
      "agent 0.0.9 is older than 0.1.0: Pull + Switch updates it (on macOS, Restart Agent may be needed after the switch)",
    );
    expect(agent.action).toBe("pull-switch");
  });

  it("on macOS offers Restart Agent once the switch to main is done and the old agent still runs", () => {
    const pullSwitch = buildCommand({ kind: "pull-switch", state: "succeeded", createdAt: minutesAgo(10) });
    const report = hostReport("config", "config", { agentVersion: "0.0.9", platform: "darwin" });
    const c = compute(hsb0("config", "config", "config", { report, platform: "darwin", commands: [pullSwitch] }));
    expect(c.agent).toMatchObject({ state: "red", action: "restart-agent" });
    expect(c.agent.reason).toBe("agent still 0.0.9 after the switch: restart the agent to load 0.1.0");
  });

  it("is red with 'unknown version' for a version that is not semver", () => {
    const agent = compute(hsb0("lockA", "lockA", "lockA", { report: hostReport("lockA", "lockA", { agentVersion: "dev-build" }) })).agent;
    expect(agent.state).toBe("red");
    expect(agent.reason).toContain('unknown agent version "dev-build"');
  });

  it("is green for an agent newer than the control plane, and says so", () => {
    const agent = compute(hsb0("lockA", "lockA", "lockA", { report: hostReport("lockA", "lockA", { agentVersion: "0.2.0" }) })).agent;
    expect(agent).toMatchObject({ state: "green", reason: "agent 0.2.0 (newer than the control plane's 0.1.0)" });
  });

  it("is gray when the host never connected, and so is everything else", () => {
    const c = compute(buildInputs({ report: null }));
    expect(colours(c)).toEqual([W, W, W, W, W]);
    expect(c.agent.reason).toBe("never connected");
    expect(c.agent.stale).toBe(false);
  });

  it("is gray when the host is offline (spec: host offline or never connected)", () => {
    const c = compute(hsb0("lockA", "lockA", "lockA", { online: false, lastSeenAt: minutesAgo(180) }));
    expect(c.agent.state).toBe("gray");
    expect(c.agent.reason).toBe("offline for 3 h — last known: agent 0.1.0 is current");
  });

  it("is blue while the agent restarts, and green again once it reports after the restart", () => {
    const restarting = buildCommand({ kind: "restart-agent", state: "running", createdAt: minutesAgo(1) });
    expect(compute(hsb0("lockA", "lockA", "lockA", { commands: [restarting] })).agent.state).toBe("blue");
    // The restart cut the agent off mid-command: the worker marks it lost, the new agent reports.
    const lost = buildCommand({ kind: "restart-agent", state: "lost", createdAt: minutesAgo(5), finishedAt: minutesAgo(4) });
    expect(compute(hsb0("lockA", "lockA", "lockA", { commands: [lost], reportedAt: minutesAgo(3) })).agent.state).toBe("green");
  });
});

describe("Git compartment", () => {
  const errors = [
    {
      cause: "local changes",
      error: [
        "Updating 5d2f1e0..9c41b7a",
        "error: Your local changes to the following files would be overwritten by merge:",
        "\thosts/hsb0/configuration.nix",
        "Please commit your changes or stash them before you merge.",
        "Aborting",
      ].join("\n"),
      reason: "pull failed: Your local changes to the following files would be overwritten by merge:",
    },
    {
      cause: "a merge conflict",
      error: ["Auto-merging flake.lock", "CONFLICT (content): Merge conflict in flake.lock", "Automatic merge failed; fix conflicts and then commit the result."].join("\n"),
      reason: "pull failed: CONFLICT (content): Merge conflict in flake.lock",
    },
    {
      cause: "authentication",
      error: "remote: Invalid username or token.\nfatal: Authentication failed for 'https://github.com/example/nixcfg.git/'",
      reason: "pull failed: Authentication failed for 'https://github.com/example/nixcfg.git/'",
    },
  ];

  it.each(errors)("is not green after a pull that failed on $cause, and names git's error", ({ error, reason }) => {
    const failed = buildCommand({
      kind: "pull",
      state: "failed",
      createdAt: minutesAgo(5),
      error,
      result: { commitBefore: COMMIT.lockA, commitAfter: null },
    });
    const git = compute(hsb0("lockA", "lockA", "config", { commands: [failed] })).git;
    expect(git).toMatchObject({ state: "red", reason, action: "pull", commandId: failed.id, since: failed.finishedAt });
  });

  it("stays red after a failed pull while the host is still at the old commit, even with newer reports", () => {
    const failed = buildCommand({ kind: "pull", state: "failed", createdAt: minutesAgo(30), error: "fatal: unable to access 'https://github.com/example/nixcfg.git/': Could not resolve host: github.com" });
    const git = compute(hsb0("lockA", "lockA", "config", { commands: [failed], reportedAt: minutesAgo(1) })).git;
    expect(git.state).toBe("red");
    expect(git.reason).toBe("pull failed: unable to access 'https://github.com/example/nixcfg.git/': Could not resolve host: github.com");
  });

  it("is green once the clone was fixed by hand and reports main's head", () => {
    const failed = buildCommand({ kind: "pull", state: "failed", createdAt: minutesAgo(30), error: "error: Your local changes…", result: { commitBefore: COMMIT.lockA } });
    const git = compute(hsb0("config", "lockA", "config", { commands: [failed], reportedAt: minutesAgo(2) })).git;
    expect(git.state).toBe("green");
  });

  it("is green again after a later pull succeeds", () => {
    const failed = buildCommand({ kind: "pull", state: "failed", createdAt: minutesAgo(30), error: "fatal: Authentication failed" });
    const retried = buildCommand({ kind: "pull", state: "succeeded", createdAt: minutesAgo(10) });
    expect(compute(hsb0("config", "lockA", "config", { commands: [retried, failed] })).git.state).toBe("green");
  });

  it("is yellow when someone else pushed, says how far and offers a pull", () => {
    const git = compute(hsb0("lockA", "lockA", "config")).git;
    expect(git).toMatchObject({ state: "yellow", action: "pull", since: mainAt("config").head?.committedAt });
  });

  it("mentions local changes in the clone, which a pull resets", () => {
    const report = hostReport("lockA", "lockA", { dirty: true });
    expect(compute(hsb0("lockA", "lockA", "config", { report })).git.reason).toContain("local changes (pull resets them)");
  });

  it("is gray with the agent's reason when the host's commit is unknown", () => {
    const report = hostReport("lockA", "lockA", { commit: null, commitReason: "git not found in PATH" });
    expect(compute(hsb0("lockA", "lockA", "lockA", { report })).git).toMatchObject({
      state: "gray",
      reason: "host commit unknown: git not found in PATH",
    });
  });

  it("is gray until main's head has been read", () => {
    const git = compute(hsb0("lockA", "lockA", "lockA", { repo: null })).git;
    expect(git).toMatchObject({ state: "gray", reason: "main not read from GitHub yet" });
    expect(compute(hsb0("lockA", "lockA", "lockA", { repo: buildRepoState({ headSha: null }) })).git.state).toBe("gray");
  });
});

describe("Lock compartment", () => {
  it("is yellow without any PR when the new flake.lock was committed to main directly, and offers a pull", () => {
    const lock = compute(hsb0("lockA", "lockA", "lockB", { updatePrs: [] })).lock;
    expect(lock).toMatchObject({ state: "yellow", action: "pull", reason: "new flake.lock on main (home-manager, nixpkgs changed)" });
  });

  it("is green when the flake.lock matches main, however the commits differ", () => {
    // A config-only change on main leaves the lock alone (scenario 2).
    expect(compute(hsb0("lockA", "lockA", "config")).lock.state).toBe("green");
  });

  const aged = (days: number) => {
    const lastModified = { nixpkgs: unixDaysAgo(days), "home-manager": unixDaysAgo(1) };
    return buildInputs({
      report: buildReport({ commit: COMMIT.lockA, lockHash: LOCK.a, lastModified, current: SYSTEM.lockA, builtFromCommit: COMMIT.lockA }),
      repo: buildRepoState({ headSha: COMMIT.lockA, lockHash: LOCK.a, lastModified }),
    });
  };

  it.each([
    { days: 3, state: "green", reason: "flake.lock matches main; nixpkgs is 3 days old" },
    { days: 7, state: "green", reason: "flake.lock matches main; nixpkgs is 7 days old" },
    { days: 8, state: "green", reason: "flake.lock matches main; nixpkgs is 8 days old, consider updating" },
    { days: 30, state: "green", reason: "flake.lock matches main; nixpkgs is 30 days old, consider updating" },
    { days: 31, state: "yellow", reason: "nixpkgs is 31 days old: needs update" },
    { days: 45, state: "yellow", reason: "nixpkgs is 45 days old: needs update" },
  ])("with nixpkgs $days days old is $state: $reason", ({ days, state, reason }) => {
    expect(compute(aged(days)).lock).toMatchObject({ state, reason, action: null });
  });

  it("dates a stale lock's yellow from the day it crossed 30 days", () => {
    const lock = compute(aged(45)).lock;
    expect(lock.since).toBe(new Date((unixDaysAgo(45) + LOCK_AGE_DAYS.stale * 86400) * 1000).toISOString());
  });

  it("ages the lock by its oldest root nixpkgs input, else by its newest input", () => {
    const now = NOW.getTime();
    expect(lockAge({ nixpkgs: unixDaysAgo(2), "nixpkgs-stable": unixDaysAgo(12), "home-manager/nixpkgs": unixDaysAgo(90) }, now)).toMatchObject({
      input: "nixpkgs-stable",
      days: 12,
    });
    expect(lockAge({ "home-manager": unixDaysAgo(40), agenix: unixDaysAgo(35) }, now)).toMatchObject({ input: "flake.lock", days: 35 });
    expect(lockAge({}, now)).toBeNull();
  });

  it("prefers the pending update PR over the age: an update is on its way", () => {
    const withPr = { ...aged(45), updatePrs: [buildUpdatePr({ number: 43, lockChanges: PR42_CHANGES })] };
    expect(compute(withPr).lock).toMatchObject({ state: "yellow", reason: "Update PR pending: nixpkgs 3f1a9c2 → 8be04d1 (+1 more input)" });
  });

  it("says the PR's lock changes are still being read, rather than 'no input changes'", () => {
    const reading = { ...aged(3), updatePrs: [{ ...buildUpdatePr({ number: 44 }), lockDiff: "pending" as const }] };
    expect(compute(reading).lock).toMatchObject({ state: "yellow", reason: "Update PR pending: #44, reading its flake.lock changes…" });
    const unreadable = { ...aged(3), updatePrs: [{ ...buildUpdatePr({ number: 45 }), lockDiff: "failed" as const, lockDiffProblem: "flake.lock is not valid JSON" }] };
    expect(compute(unreadable).lock.reason).toBe("Update PR pending: #45 (its flake.lock changes could not be read: flake.lock is not valid JSON)");
  });

  it("is gray with the agent's reason when the host cannot hash its flake.lock", () => {
    const report = hostReport("lockA", "lockA", { lockHash: null, lockReason: "flake.lock missing in the clone" });
    expect(compute(hsb0("lockA", "lockA", "lockA", { report })).lock).toMatchObject({
      state: "gray",
      reason: "flake.lock unknown: flake.lock missing in the clone",
    });
  });

  it("does not treat a different lock hash as equal because the inputs' dates match", () => {
    const report = hostReport("lockA", "lockA", { lockHash: lockHash("hand-edited flake.lock") });
    expect(compute(hsb0("lockA", "lockA", "lockA", { report })).lock).toMatchObject({ state: "yellow", reason: "new flake.lock on main" });
  });
});

describe("System compartment", () => {
  const configError = buildCommand({
    kind: "switch",
    state: "failed",
    createdAt: minutesAgo(8),
    error: "error: attribute 'resticc' missing\n\n       at /nix/store/kq2v8…-source/hosts/hsb0/backup.nix:12:5:",
    result: { systemBefore: SYSTEM.lockA, systemAfter: null },
  });

  it("is red after a failed switch, names the error and links the command's log", () => {
    const system = compute(hsb0("config", "lockA", "config", { commands: [configError] })).system;
    expect(system).toMatchObject({
      state: "red",
      reason: "switch failed: attribute 'resticc' missing",
      action: null,
      commandId: configError.id,
      since: configError.finishedAt,
    });
  });

  it("stays red while the host still runs the system the failure left", () => {
    const system = compute(hsb0("config", "lockA", "config", { commands: [configError], reportedAt: minutesAgo(1) })).system;
    expect(system.state).toBe("red");
  });

  it("is green after fix, push, pull and a successful switch", () => {
    const fixed = buildCommand({ kind: "pull-switch", state: "succeeded", createdAt: minutesAgo(2) });
    expect(compute(hsb0("config", "config", "config", { commands: [fixed, configError] })).system.state).toBe("green");
  });

  it("is no longer red once something else switched the host (a manual rebuild)", () => {
    const c = compute(hsb0("config", "config", "config", { commands: [configError], reportedAt: minutesAgo(1) }));
    expect(c.system.state).toBe("green");
  });

  it("is red, not stuck yellow, when a switch timed out, and offers to retry it", () => {
    const timedOut = buildCommand({ kind: "switch", state: "timed-out", createdAt: minutesAgo(60) });
    const system = compute(hsb0("config", "lockA", "config", { commands: [timedOut] })).system;
    expect(system.state).toBe("red");
    expect(system.action).toBe("switch");
    expect(system.reason).toMatch(/^lost contact: switch did not report back by \d\d:\d\d UTC$/);
  });

  it("compares with what the clone would build when the agent evaluated it", () => {
    const behind = hostReport("config", "lockA", { desired: SYSTEM.config, builtFromCommit: null });
    expect(compute(hsb0("config", "lockA", "config", { report: behind })).system).toMatchObject({
      state: "yellow",
      action: "switch",
      reason: `switch needed: the clone builds ${SYSTEM.config.slice(44)}`,
    });
    const current = hostReport("config", "config", { desired: SYSTEM.config, builtFromCommit: null });
    expect(compute(hsb0("config", "config", "config", { report: current })).system.state).toBe("green");
  });

  it("infers the built commit from the last successful switch when the report does not say", () => {
    const report = hostReport("config", "config", { builtFromCommit: null });
    const switched = buildCommand({
      kind: "switch",
      state: "succeeded",
      createdAt: minutesAgo(20),
      result: { commitAfter: COMMIT.config, systemAfter: SYSTEM.config },
    });
    expect(compute(hsb0("config", "config", "config", { report, commands: [switched] })).system.state).toBe("green");
    expect(compute(hsb0("config", "config", "config", { report })).system).toMatchObject({ state: "gray", action: "switch" });
  });
});

describe("Tests compartment", () => {
  const goodSwitch = buildCommand({ kind: "switch", state: "succeeded", createdAt: minutesAgo(15) });

  it("is red after a good switch when tests fail, names them, and offers a rollback", () => {
    const testRun = buildCommand({
      kind: "test",
      state: "failed",
      createdAt: minutesAgo(6),
      result: {
        tests: buildTestRun({
          system: SYSTEM.config,
          finishedAt: minutesAgo(5),
          results: { "ssh-reachable": true, gpu: false, "x11-session": false, network: false },
        }),
      },
    });
    const c = compute(hsb0("config", "config", "config", { commands: [testRun, goodSwitch] }));
    expect(c.system.state).toBe("green");
    expect(c.tests).toMatchObject({
      state: "red",
      reason: "tests failed: gpu, x11-session, network",
      action: "rollback",
      commandId: testRun.id,
    });
  });

  it("is always gray when the host has no tests configured, whatever ran", () => {
    const report = hostReport("config", "config", { testsConfigured: false, lastTestRun: null });
    const c = compute(hsb0("config", "config", "config", { report, commands: [goodSwitch] }));
    expect(c.tests).toMatchObject({ state: "gray", reason: "no tests configured", action: null });
  });

  it("is yellow when tests never ran", () => {
    const report = hostReport("config", "config", { lastTestRun: null });
    expect(compute(hsb0("config", "config", "config", { report })).tests).toMatchObject({
      state: "yellow",
      reason: "not run yet",
      action: "test",
    });
  });

  it("is red when the test runner itself failed, and offers to run again", () => {
    const crashed = buildCommand({ kind: "test", state: "failed", createdAt: minutesAgo(3), error: "error: tests directory /etc/nixfleet/tests is not readable" });
    expect(compute(hsb0("config", "config", "config", { commands: [crashed] })).tests).toMatchObject({
      state: "red",
      reason: "test run failed: tests directory /etc/nixfleet/tests is not readable",
      action: "test",
      commandId: crashed.id,
    });
  });

  it("marks tests stale after a switch when the run does not name its system", () => {
    const report = hostReport("config", "config", {
      lastTestRun: buildTestRun({ system: null, finishedAt: minutesAgo(30), results: { "ssh-reachable": true } }),
    });
    expect(compute(hsb0("config", "config", "config", { report, commands: [goodSwitch] })).tests.state).toBe("yellow");
  });
});

describe("per-host rollback", () => {
  const failedTests = buildTestRun({ system: SYSTEM.config, finishedAt: minutesAgo(20), results: { gpu: false } });
  const rollback = buildCommand({
    kind: "rollback",
    state: "succeeded",
    createdAt: minutesAgo(10),
    result: { commitBefore: COMMIT.config, commitAfter: COMMIT.config, systemBefore: SYSTEM.config, systemAfter: SYSTEM.lockA },
  });
  // The agent still records the commit it last switched to: the rollback bypassed the clone.
  const afterRollback = hostReport("config", "config", { current: SYSTEM.lockA, lastTestRun: failedTests });

  it("turns Tests yellow (need re-run) and System yellow, without offering to switch back to the broken config", () => {
    const c = compute(hsb0("config", "config", "config", { report: afterRollback, commands: [rollback] }));
    expect(colours(c)).toEqual([G, G, G, Y, Y]);
    expect(c.system).toMatchObject({ reason: "rolled back; running an older generation", action: null });
    expect(c.tests.action).toBe("test");
  });

  it("offers Switch again once a fix has been pulled", () => {
    const report = hostReport("configAndLock", "config", { current: SYSTEM.lockA, lastTestRun: failedTests });
    const pulledFix = buildCommand({ kind: "pull", state: "succeeded", createdAt: minutesAgo(2) });
    const c = compute(hsb0("configAndLock", "config", "configAndLock", { report, commands: [pulledFix, rollback] }));
    expect(c.system).toMatchObject({ state: "yellow", action: "switch" });
    expect(c.system.reason).toContain("rolled back; switch needed");
  });

  it("is blue while rolling back, and red if the rollback failed, without offering another rollback", () => {
    const rolling = buildCommand({ kind: "rollback", state: "running", createdAt: minutesAgo(1) });
    expect(compute(hsb0("config", "config", "config", { commands: [rolling] })).system).toMatchObject({ state: "blue", reason: "rolling back…" });
    const failed = buildCommand({ kind: "rollback", state: "failed", createdAt: minutesAgo(3), error: "error: no previous generation to roll back to" });
    expect(compute(hsb0("config", "config", "config", { commands: [failed] })).system).toMatchObject({
      state: "red",
      reason: "rollback failed: no previous generation to roll back to",
      action: null,
    });
  });
});
