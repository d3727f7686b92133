/**
 * Reboot needed on System: a current system turns yellow with the kernel
 * versions, a switch needed carries the note in its reason, and anything worse
 * (working, failed, unknown) keeps its colour (docs/compartments.md "System", row 13).
 */
import { describe, expect, it } from "vitest";
import type { RebootStatus } from "../../common/protocol.ts";
import { buildCommand, minutesAgo, type ReportOptions } from "./builders.ts";
import { B, COMMIT, G, R, SYSTEM, Y, colours, compute, hostReport, hsb0 } from "./world.ts";

const newKernel: RebootStatus = { needed: true, changed: ["kernel", "initrd", "kernel-modules"], kernel: { booted: "6.6.1", next: "6.6.8" } };
const rebootDue = { value: newKernel };
const pulled = buildCommand({ kind: "pull", state: "succeeded", createdAt: minutesAgo(30) });

/** hsb0 with everything current (scenario 1), its report saying `reboot`. */
const currentWith = (reboot: ReportOptions["reboot"], overrides: Parameters<typeof hsb0>[3] = {}) =>
  hsb0("lockA", "lockA", "lockA", { report: hostReport("lockA", "lockA", { reboot }), ...overrides });

describe("System with a reboot due", () => {
  it("turns a current system yellow with the booted and the next kernel, and offers no command", () => {
    const c = compute(currentWith(rebootDue));
    expect(colours(c)).toEqual([G, G, G, Y, G]);
    expect(c.system.reason).toBe("reboot needed: kernel 6.6.1 → 6.6.8");
    expect(c.system.action).toBeNull();
  });

  it("names what changed when the kernel stayed, and says only that the kernel changed when its versions are unknown", () => {
    expect(compute(currentWith({ value: { needed: true, changed: ["initrd"], kernel: null } })).system.reason).toBe("reboot needed: initrd changed");
    expect(compute(currentWith({ value: { needed: true, changed: ["initrd", "kernel-modules"], kernel: null } })).system.reason).toBe(
      "reboot needed: initrd and kernel-modules changed",
    );
    const unnamedKernel = { needed: true, changed: ["kernel" as const], kernel: { booted: null, next: "6.6.8" } };
    expect(compute(currentWith({ value: unnamedKernel })).system.reason).toBe("reboot needed: kernel changed");
  });

  it("stays green when no reboot is due, when it does not apply, and for an agent that does not report it", () => {
    expect(compute(currentWith({ value: { needed: false, changed: [], kernel: null } })).system.state).toBe(G);
    expect(compute(currentWith({ value: null, reason: "not applicable: Home Manager manages a user's environment, never the kernel" })).system.state).toBe(G);
    expect(compute(currentWith(undefined)).system.state).toBe(G);
  });

  it("adds the note to a switch needed, which keeps its Switch action (scenario 3 on a host that also waits for a reboot)", () => {
    const c = compute(hsb0("config", "lockA", "config", { commands: [pulled], report: hostReport("config", "lockA", { reboot: rebootDue }) }));
    expect(colours(c)).toEqual([G, G, G, Y, G]);
    expect(c.system.reason).toBe(
      `switch needed: running ${COMMIT.lockA.slice(0, 7)}, clone at ${COMMIT.config.slice(0, 7)}; reboot needed: kernel 6.6.1 → 6.6.8`,
    );
    expect(c.system.action).toBe("switch");
  });

  it("keeps the queued command's note last", () => {
    const queued = buildCommand({ kind: "switch", state: "queued", createdAt: minutesAgo(1) });
    const c = compute(currentWith(rebootDue, { commands: [queued] }));
    expect(c.system).toMatchObject({ state: Y, reason: "reboot needed: kernel 6.6.1 → 6.6.8 (switch queued)" });
  });

  it("leaves a switch under way blue, a failed switch red and an unknown running system gray", () => {
    const running = buildCommand({ kind: "switch", state: "running", createdAt: minutesAgo(1) });
    expect(compute(currentWith(rebootDue, { commands: [running] })).system).toMatchObject({ state: B, reason: "switching…" });

    const failed = buildCommand({
      kind: "switch",
      state: "failed",
      createdAt: minutesAgo(8),
      exitCode: 1,
      error: "error: The option `services.resticc' does not exist.",
      result: { commitBefore: COMMIT.lockA, commitAfter: COMMIT.lockA, systemBefore: SYSTEM.lockA, systemAfter: null },
    });
    expect(compute(currentWith(rebootDue, { commands: [failed] })).system).toMatchObject({
      state: R,
      reason: "switch failed: The option `services.resticc' does not exist.",
    });

    const unknownSystem = hostReport("lockA", "lockA", { reboot: rebootDue, current: null, currentReason: "/run/current-system does not exist" });
    expect(compute(hsb0("lockA", "lockA", "lockA", { report: unknownSystem })).system).toMatchObject({
      state: "gray",
      reason: "running system unknown: /run/current-system does not exist",
    });
  });
});
