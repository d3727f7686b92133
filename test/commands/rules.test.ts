import { describe, expect, it } from "vitest";
import { ACTIVE_COMMAND_STATES, isActiveCommand } from "../../common/commands.ts";
import { COMMAND_DEADLINE_SECONDS, COMMAND_KINDS, COMMAND_STATES, FINAL_COMMAND_STATES, type CommandKind, type CommandState } from "../../common/protocol.ts";
import {
  acceptOutput,
  admit,
  applyPatch,
  canTransition,
  commandsLostBy,
  deliveryPatch,
  isDeliverable,
  MAX_OUTPUT_BYTES_PER_COMMAND,
  newCommand,
  nextDeadline,
  rebootingPatch,
  timeoutPatch,
  type CommandRecord,
} from "../../worker/commands/rules.ts";

const T0 = Date.parse("2026-12-01T10:00:00Z");

function command(overrides: Partial<CommandRecord> = {}, kind: CommandKind = "switch"): CommandRecord {
  return {
    ...newCommand({ id: `cmd_${"a".repeat(12)}`, hostId: "host_1", hostName: "hsb0", kind, target: null, commit: null, actor: "alice", now: T0, ttlSeconds: 3600 }),
    ...overrides,
  };
}

describe("transitions", () => {
  const FINAL: CommandState[] = ["succeeded", "failed", "cancelled", "timed-out", "lost"];
  it.each(FINAL.flatMap((from) => COMMAND_STATES.map((to) => [from, to] as const)))("never leaves the final state %s (to %s)", (from, to) => {
    expect(canTransition(from, to)).toBe(false);
    const refused = applyPatch(command({ state: from }), { state: to });
    expect(refused).toMatchObject({ ok: false, status: 409, code: "command_final" });
  });

  it.each([
    ["queued", "delivered", true],
    ["queued", "running", false],
    ["queued", "lost", false],
    ["queued", "cancelled", true],
    ["queued", "timed-out", true],
    ["delivered", "running", true],
    ["delivered", "succeeded", true],
    ["delivered", "lost", true],
    ["running", "failed", true],
    ["running", "queued", false],
    ["running", "delivered", false],
  ] as const)("%s → %s allowed: %s", (from, to, allowed) => {
    expect(canTransition(from, to)).toBe(allowed);
  });

  it("a patch without a state on a final command is refused too (late output, late acks)", () => {
    expect(applyPatch(command({ state: "timed-out" }), { acked: true })).toMatchObject({ ok: false, code: "command_final" });
  });

  it("applyPatch returns a new record and leaves the old one as it was", () => {
    const before = command({ state: "running" });
    const after = applyPatch(before, { state: "succeeded", exitCode: 0 });
    expect(after).toMatchObject({ ok: true, record: { state: "succeeded", exitCode: 0 } });
    expect(before.state).toBe("running");
  });
});

describe("active commands", () => {
  it("every state is either active or final, never both", () => {
    expect([...ACTIVE_COMMAND_STATES, ...FINAL_COMMAND_STATES].sort()).toEqual([...COMMAND_STATES].sort());
    for (const state of COMMAND_STATES) expect(isActiveCommand({ state })).toBe((ACTIVE_COMMAND_STATES as readonly CommandState[]).includes(state));
  });

  it("no command is not an active one", () => {
    expect(isActiveCommand(null)).toBe(false);
    expect(isActiveCommand(undefined)).toBe(false);
  });
});

describe("admission: one exclusive command per host", () => {
  const running = command({ id: "cmd_running_0001", state: "running" });
  const queued = command({ id: "cmd_queued_00001", state: "queued" });
  it.each([
    ["switch", [], "queue"],
    ["switch", [running], "host_busy"],
    ["pull", [queued], "host_busy"],
    ["refresh", [running], "queue"],
    ["stop", [], "nothing_to_stop"],
    ["stop", [running], "stop-delivered"],
    ["stop", [queued], "cancel-queued"],
  ] as const)("%s with %j active → %s", (kind, active, expected) => {
    const admission = admit("hsb0", active, kind);
    expect(admission.ok ? admission.action : admission.code).toBe(expected);
  });

  it("the refusal names the command that holds the host", () => {
    const refused = admit("hsb0", [running], "pull-switch");
    expect(refused).toMatchObject({ ok: false, status: 409 });
    expect(!refused.ok && refused.message).toContain("cmd_running_0001");
  });
});

describe("delivery and time", () => {
  it("a queued command is deliverable until it expires; a delivered one until the agent acknowledges it", () => {
    expect(isDeliverable(command(), T0)).toBe(true);
    expect(isDeliverable(command(), T0 + 3600_000)).toBe(false);
    expect(isDeliverable(command({ state: "delivered" }), T0)).toBe(true);
    expect(isDeliverable(command({ state: "delivered", acked: true }), T0)).toBe(false);
    expect(isDeliverable(command({ state: "running" }), T0)).toBe(false);
  });

  it.each(COMMAND_KINDS.map((kind) => [kind]))("delivering %s starts its own run-time deadline", (kind) => {
    const patch = deliveryPatch(kind, T0 + 5000);
    expect(Date.parse(patch.deadlineAt!)).toBe(T0 + 5000 + COMMAND_DEADLINE_SECONDS[kind] * 1000);
  });

  it("times out an expired queued command and an overdue delivered or running one, nothing else", () => {
    expect(timeoutPatch(command(), T0 + 10)).toBeNull();
    expect(timeoutPatch(command(), T0 + 3600_000)).toMatchObject({ state: "timed-out", error: expect.stringContaining("expired") });
    const delivered = command({ state: "delivered", ...deliveryPatch("switch", T0) });
    expect(nextDeadline(delivered)).toBe(T0 + COMMAND_DEADLINE_SECONDS.switch * 1000);
    expect(timeoutPatch(delivered, nextDeadline(delivered) - 1)).toBeNull();
    expect(timeoutPatch(delivered, nextDeadline(delivered))).toMatchObject({ state: "timed-out", error: expect.stringContaining("lost contact") });
    expect(timeoutPatch(command({ state: "succeeded" }), T0 + 10 ** 10)).toBeNull();
  });

  it("a reboot the agent started that passes its ten-minute deadline ends lost (the host did not come back); one never taken up times out", () => {
    const delivered = command({ state: "delivered", ...deliveryPatch("reboot", T0) }, "reboot");
    expect(nextDeadline(delivered)).toBe(T0 + 10 * 60_000);
    expect(timeoutPatch({ ...delivered, state: "running", acked: true }, nextDeadline(delivered) - 1)).toBeNull();
    expect(timeoutPatch({ ...delivered, state: "running", acked: true }, nextDeadline(delivered))).toMatchObject({
      state: "lost",
      error: expect.stringContaining("the host did not come back from the reboot by the deadline"),
    });
    expect(timeoutPatch(delivered, nextDeadline(delivered))).toMatchObject({ state: "timed-out", error: expect.stringContaining("lost contact") });
  });

  it("a switch whose agent said it reboots gets the reboot's deadline from then and ends lost past it; a repeated event changes nothing", () => {
    const running = command({ state: "running", acked: true, ...deliveryPatch("switch", T0) });
    const said = T0 + 60_000;
    const patch = rebootingPatch(running, said);
    expect(patch).toEqual({ rebootingAt: new Date(said).toISOString(), deadlineAt: new Date(said + COMMAND_DEADLINE_SECONDS.reboot * 1000).toISOString(), acked: true });
    const rebooting = { ...running, ...(patch as object) };
    expect(rebootingPatch(rebooting, said + 5000)).toBeNull();
    expect(timeoutPatch(rebooting, nextDeadline(rebooting) - 1)).toBeNull();
    expect(timeoutPatch(rebooting, nextDeadline(rebooting))).toMatchObject({ state: "lost", error: expect.stringContaining("the host did not come back from the reboot by the deadline") });
    expect(rebootingPatch(command({ state: "running" }, "reboot"), said)).toMatchObject({ deadlineAt: new Date(said + 10 * 60_000).toISOString() });
  });

  it.each(COMMAND_KINDS.filter((kind) => !["reboot", "switch", "pull-switch"].includes(kind)).map((kind) => [kind]))("refuses a rebooting event for a %s, which does not reboot", (kind) => {
    expect(rebootingPatch(command({ state: "running" }, kind), T0)).toMatchObject({ ok: false, status: 409, code: "not_a_reboot" });
  });

  it("only a new agent session loses commands, and only those it confirmed and no longer lists", () => {
    const confirmed = command({ id: "cmd_confirmed_001", state: "running", acked: true });
    const unconfirmed = command({ id: "cmd_unconfirm_001", state: "delivered", acked: false });
    const held = command({ id: "cmd_held_0000001", state: "running", acked: true });
    const waiting = command({ id: "cmd_waiting_00001", state: "queued" });
    const all = [confirmed, unconfirmed, held, waiting];
    expect(commandsLostBy(all, false, new Set())).toEqual([]);
    expect(commandsLostBy(all, true, new Set([held.id])).map((c) => c.id)).toEqual([confirmed.id]);
  });
});

describe("output", () => {
  const at = "2026-12-01T10:00:01Z";
  it("drops retried chunks by sequence number and keeps the high-water mark", () => {
    const first = acceptOutput(command(), [{ seq: 0, stream: "stdout", data: "a" }, { seq: 1, stream: "stdout", data: "bc" }], at);
    expect(first).toMatchObject({ outputBytes: 3, outputHighWater: 1, outputTruncated: false });
    const retried = acceptOutput({ ...command(), ...first }, [{ seq: 1, stream: "stdout", data: "bc" }, { seq: 2, stream: "stderr", data: "d" }], at);
    expect(retried.kept.map((c) => c.seq)).toEqual([2]);
    expect(retried.outputBytes).toBe(4);
  });

  it("counts bytes, not characters, and ends with one visible marker past the cap", () => {
    const nearlyFull = { ...command(), outputBytes: MAX_OUTPUT_BYTES_PER_COMMAND - 2 };
    const result = acceptOutput(nearlyFull, [{ seq: 0, stream: "stdout", data: "é" }, { seq: 1, stream: "stdout", data: "é" }], at);
    expect(result.kept).toHaveLength(2);
    expect(result.kept[1]).toMatchObject({ stream: "system", data: expect.stringContaining("output truncated") });
    expect(result.outputBytes).toBe(MAX_OUTPUT_BYTES_PER_COMMAND);
    expect(result.outputTruncated).toBe(true);
    expect(acceptOutput({ ...nearlyFull, ...result }, [{ seq: 5, stream: "stdout", data: "x" }], at).kept).toEqual([]);
  });

  it("orders chunks that arrive out of order within one post", () => {
    const result = acceptOutput(command(), [{ seq: 2, stream: "stdout", data: "c" }, { seq: 0, stream: "stdout", data: "a" }], at);
    expect(result.kept.map((c) => c.seq)).toEqual([0, 2]);
    expect(result.outputHighWater).toBe(2);
  });
});
