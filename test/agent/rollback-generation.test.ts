import { afterEach, beforeEach, expect, it } from "vitest";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import { createHarness, type Harness } from "./harness.ts";

let h: Harness;

describeWithNix("rollback to a chosen generation, with real nix", () => {
  beforeEach(async () => {
    h = await createHarness();
  });

  afterEach(async () => {
    await h.cleanup();
    expect(h.plane.protocolErrors).toEqual([]);
  });

  it("activates the chosen generation's system; a generation that does not exist, or the one that runs, fails and changes nothing", async () => {
    await h.startAgent({ systemProfileLink: h.shim.systemProfileLink });
    const systems: string[] = [];
    for (const n of [1, 2, 3]) {
      if (n > 1) await h.fleet.setHost("web1", `web1 generation ${n}`);
      expect((await h.run("pull-switch")).finished.outcome).toBe("succeeded");
      systems.push((await h.shim.currentSystem())!);
    }
    expect(await h.shim.generations()).toEqual([1, 2, 3]);

    const missing = await h.run("rollback", { generation: 9 });
    expect(missing.finished.outcome).toBe("failed");
    expect(missing.finished.error).toBe(`generation 9 does not exist in ${h.shim.systemProfileLink} (its generations: 1, 2, 3); nothing was changed`);
    expect(await h.shim.generations()).toEqual([1, 2, 3]);
    expect(await h.shim.currentSystem()).toBe(systems[2]);

    const back = await h.run("rollback", { generation: 1 });
    expect(back.finished.error).toBeNull();
    expect(back.finished.outcome).toBe("succeeded");
    expect(back.finished.result).toEqual({ systemBefore: systems[2], systemAfter: systems[0] });
    expect(await h.shim.currentSystem()).toBe(systems[0]);
    // Set to that store path, as the safety net does: a new generation of the old system, the others kept.
    expect(await h.shim.generations()).toEqual([1, 2, 3, 4]);
    expect(h.plane.output(back.id)).toContain(`rolling back to generation 1: ${systems[0]}`);

    const again = await h.run("rollback", { generation: 1 });
    expect(again.finished.outcome).toBe("failed");
    expect(again.finished.error).toBe(`generation 1 (${systems[0]}) is what runs already; nothing was changed`);
    expect(await h.shim.generations()).toEqual([1, 2, 3, 4]);

    const report = await h.plane.waitFor(() => {
      const generations = h.plane.lastReport()?.generations?.value;
      return generations?.length === 4 ? generations : undefined;
    }, "a report listing the four generations");
    expect(report.map((g) => [g.number, g.storePath, g.current])).toEqual([
      [1, systems[0], false],
      [2, systems[1], false],
      [3, systems[2], false],
      [4, systems[0], true],
    ]);
  });
});
