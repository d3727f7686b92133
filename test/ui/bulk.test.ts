import { describe, expect, it } from "vitest";
import { ApiError } from "../../ui/data/api.ts";
import { sendToHosts } from "../../ui/data/bulk.ts";
import { command } from "./fixtures.ts";

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
