import { describe, expect, it } from "vitest";
import { ApiError } from "../../ui/data/api.ts";
import { bulkTargets, heldAmong, sendToHosts } from "../../ui/data/bulk.ts";
import { command, hostView } from "./fixtures.ts";

describe("sendToHosts", () => {
  it("reports each host's outcome in the hosts' order, refusals with the worker's code and message", async () => {
    const outcomes = await sendToHosts(
      async (host, kind) => {
        if (host === "beta") throw new ApiError(409, "host_busy", "beta already has pull running");
        return command(host, { kind });
      },
      ["alpha", "beta", "gamma"],
      "pull",
    );
    expect(outcomes.map((o) => [o.host, o.ok])).toEqual([
      ["alpha", true],
      ["beta", false],
      ["gamma", true],
    ]);
    expect(outcomes[1]).toMatchObject({ ok: false, code: "host_busy", message: "beta already has pull running" });
  });

  it("sends to no more hosts at once than asked", async () => {
    let running = 0;
    let peak = 0;
    await sendToHosts(
      async (host) => {
        running += 1;
        peak = Math.max(peak, running);
        await new Promise((resolve) => setTimeout(resolve, 5));
        running -= 1;
        return command(host);
      },
      Array.from({ length: 10 }, (_, i) => `h${i}`),
      "switch",
      3,
    );
    expect(peak).toBe(3);
  });
});

describe("held hosts in a bulk action", () => {
  const hold = { reason: "kernel bisect", until: null, by: "alice@example.com", at: "2025-12-01T12:00:00.000Z" };
  const hosts = [hostView("alpha"), hostView("beta", { hold }), hostView("gamma"), hostView("delta", { hold: { ...hold, reason: "disk swap" } })];

  it("names the held hosts among the targets, in the targets' order, with their holds", () => {
    expect(heldAmong(hosts, ["delta", "alpha", "beta"])).toEqual([
      { name: "delta", hold: { ...hold, reason: "disk swap" } },
      { name: "beta", hold },
    ]);
    expect(heldAmong(hosts, ["alpha", "gamma"])).toEqual([]);
  });

  it("leaves the held hosts out unless the person keeps them in", () => {
    const held = heldAmong(hosts, ["alpha", "beta", "gamma"]);
    expect(bulkTargets(["alpha", "beta", "gamma"], held, true)).toEqual(["alpha", "gamma"]);
    expect(bulkTargets(["alpha", "beta", "gamma"], held, false)).toEqual(["alpha", "beta", "gamma"]);
  });
});
