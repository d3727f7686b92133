/**
 * What every compartment shares: commands turning them blue and red, lost
 * contact at the deadline, an offline host's stale colours, and the fleet
 * summary.
 */
import { describe, expect, it } from "vitest";
import { compartmentsOfCommand, firstErrorLine, summarizeFleet } from "../../common/compartments.ts";
import { COMMAND_KINDS, COMPARTMENT_NAMES } from "../../common/protocol.ts";
import type { CommandKind, CompartmentName } from "../../common/protocol.ts";
import { NOW, buildCommand, buildInputs, minutesAgo } from "./builders.ts";
import { G, W, Y, colours, compute, hostReport, hsb0 } from "./world.ts";

describe("commands and compartments", () => {
  const moves: Array<{ kind: CommandKind; moves: CompartmentName[] }> = [
    { kind: "pull", moves: ["git"] },
    { kind: "switch", moves: ["system"] },
    { kind: "rollback", moves: ["system"] },
    { kind: "pull-switch", moves: ["git", "system"] },
    { kind: "test", moves: ["tests"] },
    { kind: "restart-agent", moves: ["agent"] },
    { kind: "refresh", moves: [] },
    { kind: "stop", moves: [] },
    { kind: "build", moves: [] },
  ];

  it.each(moves)("a running $kind turns $moves blue and nothing else", ({ kind, moves }) => {
    const running = buildCommand({ kind, state: "running", createdAt: minutesAgo(0.5) });
    const c = compute(hsb0("lockA", "lockA", "lockA", { commands: [running] }));
    for (const name of COMPARTMENT_NAMES) {
      expect({ name, state: c[name].state }).toEqual({ name, state: moves.includes(name) ? "blue" : "green" });
      if (moves.includes(name)) expect(c[name].commandId).toBe(running.id);
    }
    expect(compartmentsOfCommand(kind)).toEqual(moves);
  });

  it("maps every command kind", () => {
    for (const kind of COMMAND_KINDS) expect(Array.isArray(compartmentsOfCommand(kind))).toBe(true);
  });

  it("is blue from delivery, not from queueing: a queued pull only shows in the reason", () => {
    const queued = buildCommand({ kind: "pull", state: "queued", createdAt: minutesAgo(2) });
    const delivered = buildCommand({ kind: "pull", state: "delivered", createdAt: minutesAgo(2) });
    const whileQueued = compute(hsb0("lockA", "lockA", "config", { commands: [queued] })).git;
    expect(whileQueued.state).toBe("yellow");
    expect(whileQueued.reason).toMatch(/\(pull queued\)$/);
    expect(compute(hsb0("lockA", "lockA", "config", { commands: [delivered] })).git.state).toBe("blue");
  });

  it("looks past a cancelled command to the one before it", () => {
    const failed = buildCommand({ kind: "pull", state: "failed", createdAt: minutesAgo(20), error: "fatal: Authentication failed" });
    const cancelled = buildCommand({ kind: "pull", state: "cancelled", createdAt: minutesAgo(5) });
    expect(compute(hsb0("lockA", "lockA", "config", { commands: [cancelled, failed] })).git.state).toBe("red");
  });

  it("orders commands by creation, whatever order they arrive in", () => {
    const older = buildCommand({ kind: "pull", state: "failed", createdAt: minutesAgo(20), error: "fatal: Authentication failed" });
    const newer = buildCommand({ kind: "pull", state: "succeeded", createdAt: minutesAgo(5) });
    expect(compute(hsb0("config", "lockA", "config", { commands: [older, newer] })).git.state).toBe("green");
  });

  it("blames a pull-switch that failed in its switch half on System only", () => {
    const failed = buildCommand({
      kind: "pull-switch",
      state: "failed",
      createdAt: minutesAgo(10),
      error: "error: builder for '/nix/store/0x9…-nvidia-x11-570.133.07.drv' failed with exit code 2",
      result: { commitBefore: "a".repeat(40), commitAfter: hostReport("config", "lockA").repo.commit.value },
    });
    const c = compute(hsb0("config", "lockA", "config", { commands: [failed] }));
    expect([c.git.state, c.system.state]).toEqual(["green", "red"]);
    expect(c.system.reason).toBe("pull-switch failed: builder for '/nix/store/0x9…-nvidia-x11-570.133.07.drv' failed with exit code 2");
  });

  it("blames a pull-switch that failed in its pull half on Git only", () => {
    const failed = buildCommand({
      kind: "pull-switch",
      state: "failed",
      createdAt: minutesAgo(10),
      error: "fatal: Authentication failed for 'https://github.com/example/nixcfg.git/'",
    });
    const c = compute(hsb0("lockA", "lockA", "config", { commands: [failed] }));
    expect([c.git.state, c.system.state]).toEqual(["red", "green"]);
  });
});

describe("lost contact", () => {
  // Deadline 12:05 UTC; NOW is 12:00 UTC.
  const switchDue = (state: "running" | "timed-out" | "lost", deadlineAt: string) =>
    buildCommand({ kind: "switch", state, createdAt: minutesAgo(40), deadlineAt, finishedAt: state === "running" ? null : deadlineAt });

  it("stays blue up to the deadline", () => {
    const running = switchDue("running", "2025-12-17T12:05:00.000Z");
    expect(compute(hsb0("config", "lockA", "config", { commands: [running] })).system.state).toBe("blue");
  });

  it("turns red past the deadline even before the worker marks the command timed out", () => {
    const overdue = switchDue("running", "2025-12-17T11:55:00.000Z");
    const system = compute(hsb0("config", "lockA", "config", { commands: [overdue] })).system;
    expect(system).toMatchObject({
      state: "red",
      reason: "lost contact: switch did not report back by 11:55 UTC",
      commandId: overdue.id,
      since: "2025-12-17T11:55:00.000Z",
    });
  });

  it("names the date when the deadline was on another day", () => {
    const overdue = switchDue("timed-out", "2025-12-16T23:10:00.000Z");
    expect(compute(hsb0("config", "lockA", "config", { commands: [overdue] })).system.reason).toBe(
      "lost contact: switch did not report back by 2025-12-16 23:10 UTC",
    );
  });

  it("says the agent restarted when the worker marked the command lost", () => {
    const lost = switchDue("lost", "2025-12-17T11:50:00.000Z");
    expect(compute(hsb0("config", "lockA", "config", { commands: [lost] })).system.reason).toBe(
      "lost contact: the agent restarted before the switch reported back",
    );
  });

  it.each([
    { kind: "pull", name: "git", action: "pull" },
    { kind: "pull-switch", name: "git", action: "pull" },
    { kind: "pull-switch", name: "system", action: "switch" },
    { kind: "test", name: "tests", action: "test" },
    { kind: "restart-agent", name: "agent", action: "restart-agent" },
    { kind: "rollback", name: "system", action: null },
  ] satisfies Array<{ kind: CommandKind; name: CompartmentName; action: string | null }>)(
    "a $kind past its deadline turns $name red, offering $action",
    ({ kind, name, action }) => {
      const overdue = buildCommand({ kind, state: "running", createdAt: minutesAgo(90), deadlineAt: minutesAgo(10) });
      const compartment = compute(hsb0("lockA", "lockA", "config", { commands: [overdue], reportedAt: minutesAgo(30) }))[name];
      expect(compartment).toMatchObject({ state: "red", action, commandId: overdue.id });
      expect(compartment.reason).toMatch(/^lost contact: /);
    },
  );

  it("lets a timed-out pull go once the host reports main's head afterwards", () => {
    const timedOut = buildCommand({ kind: "pull", state: "timed-out", createdAt: minutesAgo(20), deadlineAt: minutesAgo(14) });
    expect(compute(hsb0("config", "lockA", "config", { commands: [timedOut], reportedAt: minutesAgo(12) })).git.state).toBe("green");
    expect(compute(hsb0("lockA", "lockA", "config", { commands: [timedOut], reportedAt: minutesAgo(12) })).git.state).toBe("red");
  });
});

describe("an offline host", () => {
  const offline = (overrides = {}) =>
    hsb0("lockA", "lockA", "config", { online: false, lastSeenAt: minutesAgo(3 * 60), reportedAt: minutesAgo(4 * 60), ...overrides });

  it("keeps the last known colours, marked stale, and says how old they are", () => {
    const c = compute(offline());
    expect(colours(c)).toEqual([W, Y, G, G, G]);
    for (const name of COMPARTMENT_NAMES) expect(c[name].stale).toBe(true);
    expect(c.git.reason).toMatch(/^offline for 3 h — last known: behind main: [0-9a-f]{7} → [0-9a-f]{7}$/);
    expect(c.git.action).toBe("pull");
  });

  it("counts from the last report when it was never seen otherwise, in minutes then days", () => {
    expect(compute(offline({ lastSeenAt: null, reportedAt: minutesAgo(45) })).lock.reason).toMatch(/^offline for 45 min — /);
    expect(compute(offline({ lastSeenAt: minutesAgo(5 * 24 * 60) })).lock.reason).toMatch(/^offline for 5 days — /);
  });

  it("still turns a command it never finished red at the deadline", () => {
    const stuck = buildCommand({ kind: "switch", state: "running", createdAt: minutesAgo(200), deadlineAt: minutesAgo(170) });
    const system = compute(offline({ commands: [stuck] })).system;
    expect(system.state).toBe("red");
    expect(system.stale).toBe(true);
    expect(system.reason).toMatch(/^offline for 3 h — last known: lost contact: switch did not report back by/);
  });

  it("keeps a restart in progress blue on Agent (the agent is expected to drop off)", () => {
    const restarting = buildCommand({ kind: "restart-agent", state: "delivered", createdAt: minutesAgo(1) });
    const agent = compute(offline({ commands: [restarting], lastSeenAt: minutesAgo(0.9) })).agent;
    expect(agent).toMatchObject({ state: "blue", stale: true });
  });

  it("is not stale when it never reported: there is nothing old to show", () => {
    const c = compute(buildInputs({ report: null, online: false }));
    for (const name of COMPARTMENT_NAMES) expect(c[name].stale).toBe(false);
  });

  it("shows a connected host that has not reported yet as gray, waiting", () => {
    const c = compute(buildInputs({ report: null, online: true, lastSeenAt: minutesAgo(0.1) }));
    expect(colours(c)).toEqual([W, W, W, W, W]);
    expect(c.git.reason).toBe("waiting for the host's first report");
  });
});

describe("reasons", () => {
  it.each([
    { error: "error: Your local changes would be overwritten\nAborting", line: "Your local changes would be overwritten" },
    { error: "\n\n  fatal: not a git repository  \n", line: "not a git repository" },
    { error: "copying path…\nwarning: the following units failed: nginx.service", line: "warning: the following units failed: nginx.service" },
    { error: "error (ignored): SQLite database 'eval-cache-v2/x.sqlite' is busy\nerror: builder for 'web3' failed", line: "builder for 'web3' failed" },
    { error: "just one line", line: "just one line" },
    { error: "", line: null },
    { error: null, line: null },
  ])("picks the telling line of an error: $line", ({ error, line }) => {
    expect(firstErrorLine(error)).toBe(line);
  });

  it("shortens a very long error line", () => {
    const line = firstErrorLine(`error: ${"x".repeat(500)}`);
    expect(line).toHaveLength(160);
    expect(line?.endsWith("…")).toBe(true);
  });

  it("says the exit code when a failed command left no error text", () => {
    const failed = buildCommand({ kind: "switch", state: "failed", createdAt: minutesAgo(5), exitCode: 100, error: null });
    expect(compute(hsb0("config", "lockA", "config", { commands: [failed] })).system.reason).toBe("switch failed: exit code 100");
  });

  it("writes the same words whatever the time zone of the machine computing them", () => {
    const overdue = buildCommand({ kind: "pull", state: "running", createdAt: minutesAgo(60), deadlineAt: "2025-12-17T11:30:00.000Z" });
    const inputs = hsb0("lockA", "lockA", "config", { commands: [overdue], now: NOW });
    expect(compute(inputs).git.reason).toBe("lost contact: pull did not report back by 11:30 UTC");
  });
});

describe("summarizeFleet", () => {
  it("counts each compartment's colours across hosts, zeros included", () => {
    const running = buildCommand({ kind: "pull", state: "running", createdAt: minutesAgo(1) });
    const hosts = [
      compute(hsb0("lockA", "lockA", "lockA")),
      compute(hsb0("lockA", "lockA", "config")),
      compute(hsb0("lockA", "lockA", "config", { commands: [running] })),
      compute(hsb0("lockA", "lockA", "lockA", { report: hostReport("lockA", "lockA", { agentVersion: "0.0.1" }) })),
      compute(buildInputs({ report: null, online: false })),
    ];
    const zero = { green: 0, yellow: 0, red: 0, blue: 0, gray: 0 };
    expect(summarizeFleet(hosts)).toEqual({
      agent: { ...zero, green: 3, red: 1, gray: 1 },
      git: { ...zero, green: 2, yellow: 1, blue: 1, gray: 1 },
      lock: { ...zero, green: 4, gray: 1 },
      system: { ...zero, green: 4, gray: 1 },
      tests: { ...zero, green: 4, gray: 1 },
    });
  });

  it("gives all zeros for an empty fleet", () => {
    const zero = { green: 0, yellow: 0, red: 0, blue: 0, gray: 0 };
    expect(summarizeFleet([])).toEqual({ agent: zero, git: zero, lock: zero, system: zero, tests: zero });
  });
});

