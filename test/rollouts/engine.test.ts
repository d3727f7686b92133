/**
 * The rollout state machine: a whole rollout, the health gate, failure at each step with the revert and
 * host rollbacks, cancel and supersede, offline hosts left pending, windows, and idempotency (repeated
 * and stale events, a restart between every step).
 */
import { describe, expect, it } from "vitest";
import { Rollout, advance, createRollout, toRolloutView } from "../../worker/rollouts/engine.ts";
import { RolloutView } from "../../common/protocol.ts";
import { COMMIT, OTHER_COMMIT, T0, World, commandIdOf, hold, planHost, settings, type WorldOptions } from "./world.ts";

/** canary c0, then waves of 2: [h1 h2] [h3 h4]. */
const fiveHosts = () => [
  planHost("c0", { priority: 1 }),
  planHost("h1", { priority: 10 }),
  planHost("h2", { priority: 20 }),
  planHost("h3", { priority: 30 }),
  planHost("h4", { priority: 40 }),
];

const world = (over: Partial<WorldOptions> = {}) => new World({ hosts: fiveHosts(), waveSize: 2, ...over });

const states = (w: World) => Object.fromEntries(w.view().waves.flatMap((x) => x.hosts.map((h) => [h.name, h.state])));
const waveStates = (w: World) => w.view().waves.map((x) => x.state);

describe("a whole rollout", () => {
  it("goes canary → soak → wave by wave → succeeded, each host sent exactly once", () => {
    const w = world({ canarySoakSeconds: 300 });
    expect(w.view().state).toBe("planned");
    expect(w.step({ type: "start" })).toEqual([
      expect.objectContaining({ type: "notify", event: "rollout-started" }),
      { type: "send", host: "c0", kind: "pull-switch", commit: COMMIT },
    ]);
    expect(w.view()).toMatchObject({ state: "running", currentWave: 1, done: 0, total: 5 });
    expect(w.host("c0")).toMatchObject({ state: "pulling", reason: "queued" });

    w.queued("c0");
    w.started("c0");
    expect(w.host("c0")).toMatchObject({ state: "pulling", commandId: commandIdOf("c0") });
    w.finished("c0");
    expect(w.host("c0").state).toBe("verifying");
    const actions = w.health("c0");
    expect(actions).toEqual([{ type: "wake-at", at: "2026-06-05T10:05:00.000Z" }]);
    expect(w.view()).toMatchObject({ state: "soaking", done: 1, waves: [{ state: "soaking", soakUntil: "2026-06-05T10:05:00.000Z" }, {}, {}] });
    expect(w.host("c0").state).toBe("soaking");

    w.advanceClock(299);
    expect(w.step({ type: "tick" })).toEqual([{ type: "wake-at", at: "2026-06-05T10:05:00.000Z" }]);
    expect(w.sent()).toEqual(["c0"]);

    w.advanceClock(1);
    expect(w.step({ type: "tick" }).filter((a) => a.type === "send").map((a) => a.type === "send" && a.host)).toEqual(["h1", "h2"]);
    expect(w.view()).toMatchObject({ state: "running", currentWave: 2 });
    expect(states(w)).toMatchObject({ c0: "done", h1: "pulling", h2: "pulling", h3: "waiting", h4: "waiting" });

    w.deploy("h1");
    expect(w.sent()).toEqual(["c0", "h1", "h2"]);
    expect(w.host("h1").state).toBe("done");
    w.deploy("h2");
    expect(w.sent()).toEqual(["c0", "h1", "h2", "h3", "h4"]);
    w.deploy("h3");
    w.deploy("h4");

    const view = w.view();
    expect(view).toMatchObject({ state: "succeeded", done: 5, total: 5, pending: 0, finishedAt: T0.toISOString().replace("10:00:00", "10:05:00") });
    expect(w.host("c0")).toMatchObject({ startedAt: "2026-06-05T10:00:00.000Z", finishedAt: "2026-06-05T10:00:00.000Z" });
    expect(w.host("h1")).toMatchObject({ startedAt: "2026-06-05T10:05:00.000Z", finishedAt: "2026-06-05T10:05:00.000Z" });
    expect(waveStates(w)).toEqual(["passed", "passed", "passed"]);
    expect(w.ofType("notify").map((n) => n.event)).toEqual(["rollout-started", "rollout-succeeded"]);
    expect(w.ofType("revert")).toEqual([]);
    expect(RolloutView.parse(view)).toEqual(view);
  });

  it("soaks every wave for soakSeconds", () => {
    const w = world({ soakSeconds: 60 });
    w.step({ type: "start" });
    w.deploy("c0");
    expect(w.sent()).toEqual(["c0", "h1", "h2"]);
    w.deploy("h1");
    expect(w.host("h1").state).toBe("soaking");
    w.deploy("h2");
    expect(w.view().state).toBe("soaking");
    expect(w.sent()).toEqual(["c0", "h1", "h2"]);
    w.advanceClock(60);
    w.step({ type: "tick" });
    expect(w.sent()).toEqual(["c0", "h1", "h2", "h3", "h4"]);
    expect(states(w)).toMatchObject({ h1: "done", h2: "done" });
  });

  it("succeeds at once with no hosts", () => {
    const w = new World({ hosts: [] });
    w.step({ type: "start" });
    expect(w.view()).toMatchObject({ state: "succeeded", done: 0, total: 0 });
  });

  it("does not change the rollout it was given", () => {
    const w = world();
    const before = JSON.stringify(w.rollout);
    advance(w.rollout, { type: "start" }, { settings: settings(), now: T0, hosts: {} });
    expect(JSON.stringify(w.rollout)).toBe(before);
  });
});

describe("the health gate", () => {
  const afterCommand = (commitAfter: string | null = COMMIT) => {
    const w = world();
    w.step({ type: "start" });
    w.queued("c0");
    w.started("c0");
    w.finished("c0", "succeeded", { commitAfter });
    return w;
  };

  it.each([
    { name: "System and Tests green at the commit pass", health: {}, state: "done" },
    { name: "Tests not configured (gray) pass on System green", health: { tests: "gray" as const, testsConfigured: false }, state: "done" },
    { name: "Tests configured but not run yet keep it verifying", health: { tests: "yellow" as const }, state: "verifying" },
    { name: "Tests running keep it verifying", health: { tests: "blue" as const }, state: "verifying" },
    { name: "System yellow keeps it verifying", health: { system: "yellow" as const }, state: "verifying" },
    { name: "a report at another commit is stale and ignored, even red", health: { commit: OTHER_COMMIT, system: "red" as const }, state: "verifying" },
    { name: "System red fails it", health: { system: "red" as const, reason: "2 failed units: nginx.service, x.service" }, state: "failed" },
    { name: "Tests red fail it", health: { tests: "red" as const, reason: "smoke failed" }, state: "failed" },
  ])("$name", ({ health, state }) => {
    const w = afterCommand();
    w.health("c0", health);
    expect(w.host("c0").state).toBe(state);
  });

  it("a succeeded command at another commit fails: exit code 0 is not proof", () => {
    const w = afterCommand(OTHER_COMMIT);
    expect(w.host("c0")).toMatchObject({ state: "failed", reason: "switched to bad0000, not the rollout's c0ffee0" });
    expect(w.view().failure).toEqual({ host: "c0", reason: "switched to bad0000, not the rollout's c0ffee0", commandId: commandIdOf("c0") });
  });

  it("a succeeded command that names no commit fails", () => {
    expect(afterCommand(null).host("c0").state).toBe("failed");
  });

  it("names the red compartment and its reason", () => {
    const w = afterCommand();
    w.health("c0", { system: "red", reason: "1 failed unit: nginx.service" });
    expect(w.view().failure?.reason).toBe("System red at c0ffee0: 1 failed unit: nginx.service");
  });

  it.each([
    { outcome: "failed" as const, error: "error: builder for '/nix/store/…-system.drv' failed", reason: "pull-switch failed: error: builder for '/nix/store/…-system.drv' failed" },
    { outcome: "timed-out" as const, error: null, reason: "pull-switch timed out" },
    { outcome: "lost" as const, error: null, reason: "pull-switch lost: the agent restarted or went away mid-command" },
    { outcome: "cancelled" as const, error: null, reason: "pull-switch was cancelled" },
  ])("a $outcome command fails its host", ({ outcome, error, reason }) => {
    const w = world();
    w.step({ type: "start" });
    w.queued("c0");
    w.started("c0");
    w.finished("c0", outcome, { error });
    expect(w.host("c0")).toMatchObject({ state: "failed", reason });
    expect(w.view().state).toBe("failed");
  });

  it("a switch the host rolled back by itself (the safety net) fails that host and the rollout, saying so", () => {
    const w = world();
    w.step({ type: "start" });
    w.queued("c0");
    w.started("c0");
    w.finished("c0", "failed", { error: "rolled back on the host: no confirmation within 120 s after switching to c0ffee0" });
    expect(w.host("c0")).toMatchObject({ state: "failed", reason: "pull-switch failed: rolled back on the host: no confirmation within 120 s after switching to c0ffee0" });
    expect(w.view()).toMatchObject({ state: "failed", failure: { host: "c0" } });
  });
});

describe("failure", () => {
  it("a failing canary stops everything: no other host is sent, the revert PR is asked for", () => {
    const w = world();
    w.step({ type: "start" });
    w.queued("c0");
    w.started("c0");
    const actions = w.finished("c0", "failed", { error: "boom" });
    expect(actions).toEqual([
      expect.objectContaining({ type: "notify", event: "rollout-failed", message: expect.stringContaining("c0 — pull-switch failed: boom") }),
      { type: "revert", strategy: "revert-pr", commit: COMMIT, pr: 42 },
    ]);
    expect(w.sent()).toEqual(["c0"]);
    expect(states(w)).toEqual({ c0: "failed", h1: "skipped", h2: "skipped", h3: "skipped", h4: "skipped" });
    expect(w.host("h1").reason).toBe("rollout stopped: c0 failed");
    expect(waveStates(w)).toEqual(["failed", "skipped", "skipped"]);
    expect(w.view()).toMatchObject({ state: "failed", finishedAt: T0.toISOString(), revert: { kind: "revert-pr", url: null, state: "requested" } });

    w.step({ type: "revert-opened", kind: "revert-pr", url: "https://github.com/example/fleet/pull/43" });
    expect(w.view().revert).toEqual({ kind: "revert-pr", url: "https://github.com/example/fleet/pull/43", state: "opened" });
    // Nothing more happens, whatever comes.
    w.step({ type: "tick" });
    w.step({ type: "revert-opened", kind: "revert-pr", url: "https://github.com/example/fleet/pull/43" });
    expect(w.ofType("revert")).toHaveLength(1);
    expect(w.sent()).toEqual(["c0"]);
  });

  it("a failure in wave 2 waits for the running command, then reverts and rolls back every switched host", () => {
    const w = world({ rollbackHosts: true, rollbackStrategy: "revert-commit" });
    w.step({ type: "start" });
    w.deploy("c0");
    w.queued("h1");
    w.queued("h2");
    w.started("h1");
    w.started("h2");
    const atFailure = w.finished("h1", "failed", { error: "activation failed" });
    expect(atFailure.map((a) => a.type)).toEqual(["notify"]);
    expect(w.view()).toMatchObject({ state: "failed", failure: { host: "h1" } });
    expect(w.view().finishedAt).toBeUndefined();
    expect(states(w)).toMatchObject({ h2: "pulling", h3: "skipped", h4: "skipped" });

    w.advanceClock(30);
    const settled = w.finished("h2");
    expect(settled).toEqual([
      { type: "revert", strategy: "revert-commit", commit: COMMIT, pr: 42 },
      { type: "rollback-host", host: "c0" },
      { type: "rollback-host", host: "h2" },
    ]);
    expect(w.host("h2").state).toBe("verifying");
    expect(w.view().finishedAt).toBe("2026-06-05T10:00:30.000Z");
    expect(w.sent()).toEqual(["c0", "h1", "h2"]);
    // h2's later report is still recorded; nothing is sent again.
    w.health("h2");
    expect(w.host("h2").state).toBe("done");
    expect(w.ofType("rollback-host")).toHaveLength(2);
  });

  it("a host of a passed wave that turns red during the soak fails the rollout", () => {
    const w = world({ canarySoakSeconds: 300 });
    w.step({ type: "start" });
    w.deploy("c0");
    expect(w.view().state).toBe("soaking");
    w.advanceClock(120);
    const actions = w.health("c0", { system: "red", reason: "1 failed unit: nginx.service" });
    expect(actions.map((a) => a.type)).toEqual(["notify", "revert"]);
    expect(w.view()).toMatchObject({ state: "failed", failure: { host: "c0", commandId: commandIdOf("c0") } });
    w.advanceClock(600);
    w.step({ type: "tick" });
    expect(w.sent()).toEqual(["c0"]);
  });

  it("a host of an earlier wave that turns red while a later wave runs fails the rollout", () => {
    const w = world();
    w.step({ type: "start" });
    w.deploy("c0");
    w.deploy("h1");
    w.health("c0", { tests: "red", reason: "smoke failed" });
    expect(w.view()).toMatchObject({ state: "failed", failure: { host: "c0", reason: "Tests red at c0ffee0: smoke failed" } });
    expect(states(w)).toMatchObject({ c0: "failed", h1: "done", h2: "skipped" });
    // h2 was sent but its command id is not known yet: it is cancelled as soon as it is.
    expect(w.ofType("cancel-command")).toEqual([]);
    expect(w.sent()).toEqual(["c0", "h1", "h2"]);
    expect(w.queued("h2")).toEqual([{ type: "cancel-command", host: "h2", commandId: commandIdOf("h2") }]);
  });

  it("cancels a command that was queued but had not started", () => {
    const w = world();
    w.step({ type: "start" });
    w.deploy("c0");
    w.queued("h1");
    w.queued("h2");
    w.started("h1");
    const actions = w.finished("h1", "failed");
    expect(actions).toContainEqual({ type: "cancel-command", host: "h2", commandId: commandIdOf("h2") });
    expect(w.host("h2")).toMatchObject({ state: "skipped", reason: "rollout stopped: h1 failed" });
    expect(w.ofType("revert")).toEqual([]);
    // The coordinator cancels it: no failure of its own, and now the rollout settles and reverts.
    const settled = w.finished("h2", "cancelled");
    expect(settled).toEqual([{ type: "revert", strategy: "revert-pr", commit: COMMIT, pr: 42 }]);
    expect(w.host("h2").state).toBe("skipped");
  });

  it("cancels a command whose id arrives after the stop", () => {
    const w = world();
    w.step({ type: "start" });
    w.deploy("c0");
    w.queued("h1");
    w.started("h1");
    expect(w.finished("h1", "failed").map((a) => a.type)).toEqual(["notify"]);
    // h2 was sent, its id is not known yet: the revert waits for it.
    expect(w.view().finishedAt).toBeUndefined();
    expect(w.queued("h2")).toEqual([{ type: "cancel-command", host: "h2", commandId: commandIdOf("h2") }]);
    expect(w.finished("h2", "cancelled")).toEqual([{ type: "revert", strategy: "revert-pr", commit: COMMIT, pr: 42 }]);
    expect(w.host("h2").state).toBe("skipped");
  });

  it("alert-only emits no revert", () => {
    const w = world({ rollbackStrategy: "alert-only", rollbackHosts: true });
    w.step({ type: "start" });
    w.deploy("c0");
    w.queued("h1");
    w.started("h1");
    w.finished("h1", "lost");
    w.queued("h2");
    expect(w.finished("h2", "cancelled")).toEqual([{ type: "rollback-host", host: "c0" }]);
    expect(w.ofType("revert")).toEqual([]);
    expect(w.view().revert).toBeUndefined();
  });

  it("records a failed revert", () => {
    const w = world();
    w.step({ type: "start" });
    w.queued("c0");
    w.started("c0");
    w.finished("c0", "failed");
    w.step({ type: "revert-failed", error: "GitHub refused: merge conflict" });
    expect(w.view().revert).toEqual({ kind: "revert-pr", url: null, state: "failed", error: "GitHub refused: merge conflict" });
  });

  it("a command the coordinator could not queue fails its host", () => {
    const w = world();
    w.step({ type: "start" });
    w.step({ type: "send-failed", host: "c0", error: "host removed" });
    expect(w.view()).toMatchObject({ state: "failed", failure: { host: "c0", reason: "could not queue pull-switch: host removed", commandId: null } });
  });
});

describe("cancel and supersede", () => {
  it("cancel: unstarted hosts cancelled, queued commands cancelled, running ones finish; no revert", () => {
    const w = world();
    w.step({ type: "start" });
    w.deploy("c0");
    w.queued("h1");
    w.queued("h2");
    w.started("h1");
    const actions = w.step({ type: "cancel", actor: "bob@example.com" });
    expect(actions).toEqual([
      { type: "cancel-command", host: "h2", commandId: commandIdOf("h2") },
      expect.objectContaining({ type: "notify", event: "rollout-cancelled", message: expect.stringContaining("cancelled by bob@example.com") }),
    ]);
    expect(w.view()).toMatchObject({ state: "cancelled", stoppedBecause: "cancelled by bob@example.com" });
    expect(states(w)).toEqual({ c0: "done", h1: "pulling", h2: "cancelled", h3: "cancelled", h4: "cancelled" });
    expect(w.host("h3").reason).toBe("cancelled by bob@example.com");
    expect(w.view().finishedAt).toBeUndefined();

    w.finished("h1");
    w.health("h1");
    expect(w.host("h1").state).toBe("done");
    expect(w.view().finishedAt).toBeUndefined();
    w.finished("h2", "cancelled");
    expect(w.view().finishedAt).toBeDefined();
    expect(w.host("h2").state).toBe("cancelled");
    expect(waveStates(w)).toEqual(["passed", "cancelled", "cancelled"]);
    expect(w.ofType("revert")).toEqual([]);
    expect(w.sent()).toEqual(["c0", "h1", "h2"]);
    // A second cancel changes nothing.
    expect(w.step({ type: "cancel", actor: "carol@example.com" })).toEqual([]);
    expect(w.view().stoppedBecause).toBe("cancelled by bob@example.com");
  });

  it("a rollout cancelled before its start sends nothing", () => {
    const w = world();
    w.step({ type: "cancel", actor: "bob@example.com" });
    w.step({ type: "start" });
    expect(w.sent()).toEqual([]);
    expect(w.view()).toMatchObject({ state: "cancelled", finishedAt: T0.toISOString() });
  });

  it("superseded: like cancel, naming the newer rollout", () => {
    const w = world();
    w.step({ type: "start" });
    w.deploy("c0");
    w.step({ type: "superseded", by: "ro_2" });
    expect(w.view()).toMatchObject({ state: "cancelled", stoppedBecause: "superseded by ro_2" });
    expect(w.host("h1")).toMatchObject({ state: "cancelled", reason: "superseded by ro_2" });
    expect(w.ofType("notify").at(-1)).toMatchObject({ event: "rollout-cancelled", message: expect.stringContaining("superseded by ro_2") });
  });

  it("nothing fails a finished rollout", () => {
    const w = world({ hosts: [planHost("c0")] });
    w.step({ type: "start" });
    w.deploy("c0");
    expect(w.view().state).toBe("succeeded");
    w.health("c0", { system: "red" });
    w.step({ type: "cancel", actor: "bob@example.com" });
    expect(w.view().state).toBe("succeeded");
    expect(w.host("c0").state).toBe("done");
  });
});

describe("repeated and stale events", () => {
  it("feeding every event twice gives the same rollout and sends each host once", () => {
    const once = world({ canarySoakSeconds: 60 });
    const twice = world({ canarySoakSeconds: 60 });
    const both = (f: (w: World) => void) => {
      f(once);
      f(twice);
      f(twice);
    };
    both((w) => w.step({ type: "start" }));
    both((w) => w.deploy("c0"));
    both((w) => (w.now = new Date(T0.getTime() + 30_000)));
    both((w) => (w.now = new Date(T0.getTime() + 60_000)));
    both((w) => w.step({ type: "tick" }));
    for (const h of ["h1", "h2", "h3", "h4"]) both((w) => w.deploy(h));
    expect(twice.rollout).toEqual(once.rollout);
    expect(twice.sent()).toEqual(["c0", "h1", "h2", "h3", "h4"]);
    expect(twice.view()).toMatchObject({ state: "succeeded", done: 5 });
  });

  it("ignores events for an unknown command id, an unknown host and an unsent host", () => {
    const w = world();
    w.step({ type: "start" });
    w.queued("c0");
    const before = JSON.stringify(w.rollout);
    const stale = commandIdOf("c0", 99);
    w.step({ type: "command-started", host: "c0", commandId: stale });
    w.step({ type: "command-finished", host: "c0", commandId: stale, outcome: "failed", error: "old", commitAfter: null });
    w.step({ type: "command-queued", host: "c0", commandId: stale });
    w.step({ type: "command-finished", host: "nope", commandId: commandIdOf("nope"), outcome: "failed", error: null, commitAfter: null });
    w.step({ type: "command-finished", host: "h1", commandId: commandIdOf("h1"), outcome: "failed", error: null, commitAfter: null });
    w.health("h1", { system: "red" });
    w.health("c0", { system: "red" });
    w.step({ type: "revert-opened", kind: "revert-pr", url: "https://example.com" });
    expect(JSON.stringify(w.rollout)).toBe(before);
  });

  it("knows a host's command only from command-queued: another command of the host never counts", () => {
    const w = world();
    w.step({ type: "start" });
    const manual = commandIdOf("c0", 7);
    w.step({ type: "command-finished", host: "c0", commandId: manual, outcome: "failed", error: "manual", commitAfter: null });
    w.step({ type: "command-started", host: "c0", commandId: manual });
    expect(w.host("c0")).toMatchObject({ state: "pulling", reason: "queued" });
    expect(w.host("c0").commandId).toBeUndefined();
    w.queued("c0");
    w.step({ type: "command-queued", host: "c0", commandId: manual });
    expect(w.host("c0").commandId).toBe(commandIdOf("c0"));
    w.started("c0");
    w.finished("c0");
    w.health("c0");
    expect(w.host("c0").state).toBe("done");
  });

  it("a late finish does not reopen a wave, and no wave is skipped", () => {
    const w = world();
    w.step({ type: "start" });
    w.deploy("c0");
    w.deploy("h1");
    w.finished("h1", "failed");
    expect(w.host("h1").state).toBe("done");
    expect(w.view().currentWave).toBe(2);
    w.deploy("h2");
    expect(w.view().currentWave).toBe(3);
    expect(w.sent()).toEqual(["c0", "h1", "h2", "h3", "h4"]);
  });
});

describe("offline hosts", () => {
  it("under all: an offline host's command waits in the queue and the rollout succeeds with it pending", () => {
    const w = world({ hosts: [planHost("c0", { priority: 1 }), planHost("h1"), planHost("h2", { online: false })] });
    w.step({ type: "start" });
    w.deploy("c0");
    expect(w.sent()).toEqual(["c0", "h1", "h2"]);
    expect(w.host("h2")).toMatchObject({ state: "pending", reason: "offline: the command waits in its queue" });
    w.deploy("h1");
    expect(w.view()).toMatchObject({ state: "succeeded", done: 2, total: 3, pending: 1 });
    expect(w.ofType("notify").at(-1)?.message).toMatch(/succeeded on 2 hosts with 1 pending$/);

    // Back a day later: it finishes on its own.
    w.advanceClock(86_400);
    w.online.h2 = true;
    w.queued("h2");
    expect(w.host("h2").state).toBe("pulling");
    w.started("h2");
    w.finished("h2");
    w.health("h2");
    expect(w.view()).toMatchObject({ state: "succeeded", done: 3, pending: 0 });
    expect(w.sent()).toEqual(["c0", "h1", "h2"]);
  });

  it("superseding a rollout that succeeded with hosts pending cancels their queued commands", () => {
    const w = world({ hosts: [planHost("c0", { priority: 1 }), planHost("h1", { online: false })] });
    w.step({ type: "start" });
    w.deploy("c0");
    w.queued("h1");
    expect(w.view()).toMatchObject({ state: "succeeded", pending: 1 });
    expect(w.step({ type: "superseded", by: "ro_2" })).toEqual([{ type: "cancel-command", host: "h1", commandId: commandIdOf("h1") }]);
    expect(w.view()).toMatchObject({ state: "succeeded", pending: 0 });
    expect(w.host("h1")).toMatchObject({ state: "cancelled", reason: "superseded by ro_2" });
    w.finished("h1", "cancelled");
    expect(w.host("h1").state).toBe("cancelled");
  });

  it("a host that goes offline after its send becomes pending and does not hold the wave", () => {
    const w = world({ hosts: [planHost("c0", { priority: 1 }), planHost("h1"), planHost("h2")] });
    w.step({ type: "start" });
    w.deploy("c0");
    w.online.h2 = false;
    w.deploy("h1");
    expect(w.host("h2").state).toBe("pending");
    expect(w.view()).toMatchObject({ state: "succeeded", pending: 1 });
  });

  it("under online-only: a host that went offline before its wave is skipped", () => {
    const w = world({ deployStrategy: "online-only" });
    w.step({ type: "start" });
    w.online.h2 = false;
    w.deploy("c0");
    expect(w.host("h2")).toMatchObject({ state: "skipped", reason: "offline" });
    expect(w.sent()).toEqual(["c0", "h1"]);
    w.deploy("h1");
    expect(w.view().currentWave).toBe(3);
  });
});

describe("holds", () => {
  it("a host held after the plan was made is skipped when its turn comes; an expired hold does not hold", () => {
    const w = world();
    w.step({ type: "start" });
    w.holds.h1 = hold({ reason: "disk swap" });
    w.holds.h2 = hold({ until: "2026-06-05T09:00:00Z" });
    w.deploy("c0");
    expect(w.host("h1")).toMatchObject({ state: "skipped", reason: "held by alice@example.com: disk swap" });
    expect(w.sent()).toEqual(["c0", "h2"]);
    w.deploy("h2");
    expect(w.view().currentWave).toBe(3);
  });
});

describe("maintenance windows", () => {
  // T0 is Friday 2026-06-05 12:00 in Vienna.
  const saturdayNight = { days: ["sat" as const], start: "02:00", end: "04:00", timeZone: "Europe/Vienna" };

  it("an automatic rollout waits for the host's window and starts it when the alarm fires", () => {
    const w = world({ automatic: true, windows: [saturdayNight] });
    const actions = w.step({ type: "start" });
    expect(actions).toEqual([expect.objectContaining({ event: "rollout-started" }), { type: "wake-at", at: "2026-06-06T00:00:00.000Z" }]);
    expect(w.view()).toMatchObject({ state: "waiting-window", waitingFor: "waiting for c0's window, Sat 02:00 Europe/Vienna" });
    expect(w.host("c0")).toMatchObject({ state: "waiting", reason: "waiting for its window, Sat 02:00 Europe/Vienna" });
    // An early alarm changes nothing but asks again.
    w.advanceClock(3600);
    expect(w.step({ type: "tick" })).toEqual([{ type: "wake-at", at: "2026-06-06T00:00:00.000Z" }]);
    w.now = new Date("2026-06-06T00:00:00Z");
    expect(w.step({ type: "tick" })).toEqual([{ type: "send", host: "c0", kind: "pull-switch", commit: COMMIT }]);
    expect(w.view()).toMatchObject({ state: "running" });
    expect(w.view().waitingFor).toBeUndefined();
  });

  it("a window naming a host governs only that host", () => {
    const w = world({ automatic: true, windows: [{ ...saturdayNight, hosts: ["h2"] }] });
    w.step({ type: "start" });
    w.deploy("c0");
    expect(w.sent()).toEqual(["c0", "h1"]);
    w.deploy("h1");
    expect(w.view()).toMatchObject({ state: "waiting-window", waitingFor: "waiting for h2's window, Sat 02:00 Europe/Vienna", currentWave: 2 });
    expect(w.sent()).toEqual(["c0", "h1"]);
  });

  it("a window that closes does not stop a host already started", () => {
    const w = world({ automatic: true, windows: [{ days: ["fri"], start: "11:00", end: "12:30", timeZone: "Europe/Vienna" }] });
    w.step({ type: "start" });
    w.queued("c0");
    w.started("c0");
    w.advanceClock(3600);
    w.finished("c0");
    w.health("c0");
    expect(w.host("c0").state).toBe("done");
    expect(w.view()).toMatchObject({ state: "waiting-window", waitingFor: "waiting for h1's window, Fri 11:00 Europe/Vienna" });
  });

  it.each([
    { name: "a manual deploy confirmed to ignore windows starts at once", automatic: false, ignoreWindows: true, sent: ["c0"] },
    { name: "a manual deploy without the override waits", automatic: false, ignoreWindows: false, sent: [] },
    { name: "an automatic rollout never ignores windows", automatic: true, ignoreWindows: true, sent: [] },
  ])("$name", ({ automatic, ignoreWindows, sent }) => {
    const w = world({ automatic, ignoreWindows, windows: [saturdayNight] });
    w.step({ type: "start" });
    expect(w.sent()).toEqual(sent);
  });

  it("wakes at the right instant across the October DST change", () => {
    const w = world({
      automatic: true,
      now: new Date("2026-10-24T12:00:00Z"),
      windows: [{ days: ["sun"], start: "03:00", end: "05:00", timeZone: "Europe/Vienna" }],
    });
    // Sun 25 Oct 03:00 is already CET (UTC+1).
    expect(w.step({ type: "start" })).toContainEqual({ type: "wake-at", at: "2026-10-25T02:00:00.000Z" });
    expect(w.view().waitingFor).toBe("waiting for c0's window, Sun 03:00 Europe/Vienna");
  });
});

describe("resume", () => {
  /** A rollout with a soak, a window, an offline host, a failure, late finishes and a revert. */
  function script(w: World): void {
    w.step({ type: "start" });
    w.now = new Date("2026-06-06T00:00:00Z");
    w.step({ type: "tick" });
    w.deploy("c0");
    w.advanceClock(300);
    w.step({ type: "tick" });
    w.deploy("h1");
    w.deploy("h2");
    w.queued("h3");
    w.started("h3");
    w.queued("h4");
    w.started("h4");
    w.finished("h4", "failed", { error: "boom" });
    w.advanceClock(10);
    w.finished("h3");
    w.health("h3");
    w.step({ type: "revert-opened", kind: "revert-pr", url: "https://github.com/example/fleet/pull/43" });
  }

  it("a rollout stored and reloaded as JSON between every step ends exactly as one kept in memory", () => {
    const options = {
      hosts: [...fiveHosts(), planHost("h5", { priority: 50, online: false })],
      waveSize: 2,
      automatic: true,
      canarySoakSeconds: 300,
      rollbackHosts: true,
      windows: [{ days: ["sat" as const], start: "02:00", end: "04:00", timeZone: "Europe/Vienna" }],
    };
    const memory = new World(options);
    const stored = new World({ ...options, roundTrip: true });
    script(memory);
    script(stored);
    expect(stored.rollout).toEqual(memory.rollout);
    expect(stored.log).toEqual(memory.log);
    expect(stored.view()).toMatchObject({ state: "failed", failure: { host: "h4" }, revert: { state: "opened" } });
    expect(stored.sent()).toEqual(["c0", "h1", "h2", "h3", "h4"]);
    expect(stored.ofType("rollback-host").map((a) => a.host)).toEqual(["c0", "h1", "h2", "h3"]);
  });

  it("the view of a stored rollout parses as the API's RolloutView", () => {
    const r = createRollout({
      id: "ro_1",
      commit: COMMIT,
      pr: null,
      startedBy: "automation",
      automatic: true,
      ignoreWindows: true,
      plan: { waves: [{ index: 1, canary: true, hosts: ["c0"] }], leftOut: [{ name: "x", reason: "offline" }], unchanged: [] },
      now: T0,
    });
    const view = toRolloutView(r);
    expect(RolloutView.parse(view)).toEqual(view);
    expect(view).toMatchObject({ state: "planned", total: 1, done: 0, leftOut: [{ name: "x", reason: "offline" }] });
    expect(view.pr).toBeUndefined();
    expect(r.ignoreWindows).toBe(false);
  });

  it("a stored host in the retired `switching` state reads back as `pulling` and its rollout goes on", () => {
    const w = world();
    w.step({ type: "start" });
    w.queued("c0");
    w.started("c0");
    expect(w.host("c0").state).toBe("pulling");
    const asStored = JSON.stringify(w.rollout);
    const older = asStored.replace('"name":"c0","wave":1,"state":"pulling"', '"name":"c0","wave":1,"state":"switching"');
    expect(older).not.toBe(asStored);
    const read = Rollout.parse(JSON.parse(older));
    expect(read).toEqual(w.rollout);
    w.rollout = read;
    w.finished("c0");
    expect(w.host("c0").state).toBe("verifying");
  });
});

describe("a person's revert (POST /api/rollouts/:id/revert)", () => {
  it("of a succeeded rollout asks for the chosen revert once; while it is under way another request changes nothing", () => {
    const w = world({ hosts: [planHost("c0")] });
    w.step({ type: "start" });
    w.deploy("c0");
    expect(w.view().state).toBe("succeeded");
    expect(w.step({ type: "revert-requested", strategy: "revert-commit", actor: "alice@example.com" })).toEqual([
      { type: "revert", strategy: "revert-commit", commit: COMMIT, pr: 42, by: "alice@example.com" },
    ]);
    expect(w.view().revert).toEqual({ kind: "revert-commit", url: null, state: "requested", by: "alice@example.com" });
    expect(w.step({ type: "revert-requested", strategy: "revert-pr", actor: "bob@example.com" })).toEqual([]);
    w.step({ type: "revert-opened", kind: "revert-pr", url: "https://github.com/example/fleet/pull/44", note: "GitHub refused the push to main; a revert PR was opened instead" });
    expect(w.view()).toMatchObject({
      state: "succeeded",
      revert: { kind: "revert-pr", state: "opened", by: "alice@example.com", note: expect.stringContaining("refused the push") },
    });
  });

  it("that does not apply fails naming the commit before the update, and may be asked for again", () => {
    const w = world({ hosts: [planHost("c0")] });
    w.step({ type: "start" });
    w.deploy("c0");
    w.step({ type: "revert-requested", strategy: "revert-commit", actor: "alice@example.com" });
    w.step({ type: "revert-failed", error: "flake.lock changed on main after c0ffee0", before: OTHER_COMMIT });
    expect(w.view().revert).toMatchObject({ state: "failed", before: OTHER_COMMIT });
    expect(w.step({ type: "revert-requested", strategy: "revert-pr", actor: "alice@example.com" })).toEqual([
      { type: "revert", strategy: "revert-pr", commit: COMMIT, pr: 42, by: "alice@example.com" },
    ]);
    expect(w.view().revert).toEqual({ kind: "revert-pr", url: null, state: "requested", by: "alice@example.com" });
  });

  it("of a running rollout changes nothing", () => {
    const w = world();
    w.step({ type: "start" });
    expect(w.step({ type: "revert-requested", strategy: "revert-commit", actor: "alice@example.com" })).toEqual([]);
    expect(w.view().revert).toBeUndefined();
  });
});
