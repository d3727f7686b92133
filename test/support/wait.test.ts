import { describe, expect, it } from "vitest";
import { eventually, eventuallyWith } from "./wait.ts";

describe("eventually: the one wait on a condition", () => {
  it("returns the probe's first truthy answer, probing again after falsy ones and thrown errors", async () => {
    const answers: Array<() => number | null> = [
      () => null,
      () => {
        throw new Error("not up yet");
      },
      () => 0,
      () => 7,
    ];
    let calls = 0;
    const value = await eventually("the seventh", () => answers[calls++]!(), { intervalMs: 1 });
    expect(value).toBe(7);
    expect(calls).toBe(4);
  });

  it("says on a timeout what it waited for, the probe's last error and the details", async () => {
    const wait = eventually(
      "the host to report",
      () => {
        throw new Error("GET /api/hosts/a: 503");
      },
      { timeoutMs: 30, intervalMs: 5, details: () => "--- a\nagent log" },
    );
    await expect(wait).rejects.toThrow(/^timed out after 30 ms waiting for the host to report \(last error: GET \/api\/hosts\/a: 503\)\n--- a\nagent log$/);
  });

  it("with failFast, a probe's error ends the wait at once", async () => {
    let calls = 0;
    const wait = eventually(
      "a command",
      () => {
        calls += 1;
        throw new Error("the command failed");
      },
      { failFast: true, timeoutMs: 10_000 },
    );
    await expect(wait).rejects.toThrow("the command failed");
    expect(calls).toBe(1);
  });

  it("gives up at once when giveUpWhen names a reason, before probing again", async () => {
    let calls = 0;
    const wait = eventually("the ready line", () => ++calls > 100, {
      timeoutMs: 10_000,
      intervalMs: 1,
      giveUpWhen: () => (calls >= 2 ? "the demo exited (1)" : null),
      details: () => "its output",
    });
    await expect(wait).rejects.toThrow(/^the demo exited \(1\) while waiting for the ready line\nits output$/);
    expect(calls).toBe(2);
  });

  it("eventuallyWith keeps a file's defaults and lets a call override them", async () => {
    const wait = eventuallyWith({ timeoutMs: 10_000, intervalMs: 1, details: () => "the file's logs" });
    await expect(wait("never", () => false, { timeoutMs: 20 })).rejects.toThrow(/^timed out after 20 ms waiting for never\nthe file's logs$/);
    expect(await wait("soon", () => "here")).toBe("here");
  });
});
