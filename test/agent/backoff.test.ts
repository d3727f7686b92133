import { describe, expect, it } from "vitest";
import { backoffDelay, sleep } from "../../agent/backoff.ts";

describe("backoff", () => {
  const policy = { initialMs: 1_000, maxMs: 60_000 };

  it("doubles the ceiling with each failure up to the cap", () => {
    const ceiling = (failures: number) => backoffDelay(policy, failures, () => 0.999999);
    expect([1, 2, 3, 4, 5, 6, 7, 8, 20].map(ceiling)).toEqual([999, 1999, 3999, 7999, 15999, 31999, 59999, 59999, 59999]);
  });

  it("spreads retries over the whole range (full jitter)", () => {
    expect(backoffDelay(policy, 5, () => 0)).toBe(0);
    expect(backoffDelay(policy, 5, () => 0.5)).toBe(8_000);
  });

  it("sleep ends early when its signal aborts", async () => {
    const controller = new AbortController();
    const slept = sleep(60_000, controller.signal);
    controller.abort();
    await expect(slept).resolves.toBeUndefined();
  });
});
