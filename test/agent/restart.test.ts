import * as fs from "node:fs/promises";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { describeWithNix, nixAvailable } from "../fixtures/nix/require-nix.ts";
import { createHarness, type Harness } from "./harness.ts";

let h: Harness;

afterEach(async () => {
  await h.cleanup();
  expect(h.plane.protocolErrors).toEqual([]);
});

describe("agent restarts", () => {
  beforeEach(async () => {
    h = await createHarness({ lock: nixAvailable });
  });

  it("restart-agent reports success first, then asks the process to exit", async () => {
    const agent = await h.startAgent();
    const id = h.plane.queue("restart-agent");
    await agent.restartRequested;
    // By the time the process would exit, the server already has the result.
    expect(h.plane.finished(id)).toMatchObject({ outcome: "succeeded", error: null });
    expect(h.restarts).toBe(1);
  });

  it("a stopping agent ends an attached command and says so", async () => {
    await h.startAgent({ tests: { commands: [{ name: "hangs", command: "sleep 300" }] } });
    const id = h.plane.queue("test");
    await h.plane.waitFor(() => h.plane.events(id).some((e) => e.type === "started"), "the test to start");
    await h.stopAgent();
    expect(h.plane.finished(id)).toMatchObject({ outcome: "failed", error: "the agent stopped while this command ran" });
  });

  it("resends a result the server did not get before the agent stopped", async () => {
    await h.startAgent();
    h.plane.eventFaults.push(...Array.from({ length: 1000 }, () => ({ status: 503, body: "down for maintenance" })));
    const id = h.plane.queue("refresh");
    await h.plane.waitFor(() => h.plane.eventFaults.length <= 997, "a few failed event posts");
    await h.stopAgent();
    expect(h.plane.finished(id)).toBeUndefined();

    h.plane.eventFaults.length = 0;
    await h.startAgent();
    expect((await h.plane.waitForFinished(id)).outcome).toBe("succeeded");
  });
});

describeWithNix("a detached switch outlives the agent", () => {
  beforeEach(async () => {
    h = await createHarness();
  });

  it("a new agent process resumes following the switch and reports its verified result", async () => {
    await h.startAgent();
    await h.run("pull");
    await h.shim.setMode("gate");
    const id = h.plane.queue("switch");
    await h.plane.waitFor(() => h.plane.output(id).includes("waiting for"), "the switch to wait at the gate");

    await h.stopAgent();
    expect(h.plane.finished(id)).toBeUndefined();

    const agent = await h.startAgent();
    await h.plane.waitForPoll((poll) => poll.request.agentSession === agent.session && poll.request.activeCommands.includes(id), "the new agent to list the job as active");
    await h.shim.release();
    const finished = await h.plane.waitForFinished(id);
    const built = await h.fleet.systemPath("web1");
    expect(finished).toMatchObject({ outcome: "succeeded", exitCode: 0 });
    expect(finished.result).toEqual({ systemBefore: null, systemAfter: built });
    const output = h.plane.output(id);
    // Output continues where the old process left it: nothing twice, nothing lost.
    expect(output.match(/waiting for/g)).toHaveLength(1);
    expect(output).toContain("activated generation 1");
    // The report after the finished event says what the running system was built from, and so does the one it carries.
    const head = await h.fleet.head();
    expect(finished.report?.agentSession).toBe(agent.session);
    expect(finished.report?.report.system).toMatchObject({ current: { value: built }, builtFromCommit: head });
    await h.plane.waitFor(() => h.plane.lastReport()?.system.builtFromCommit === head, "the report of the switched system");
    expect(h.plane.lastReport()?.system.builtFromCommit).toBe(head);
  });

  it("picks up the result of a switch that ended while no agent ran", async () => {
    await h.startAgent();
    await h.run("pull");
    await h.shim.setMode("gate");
    const id = h.plane.queue("switch");
    await h.plane.waitFor(() => h.plane.output(id).includes("waiting for"), "the switch to wait at the gate");
    await h.stopAgent();

    await h.shim.release();
    const exitFile = path.join(h.stateDir, "jobs", id, "exit");
    for (let i = 0; i < 200 && !(await exists(exitFile)); i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await exists(exitFile)).toBe(true);

    await h.startAgent();
    const finished = await h.plane.waitForFinished(id);
    expect(finished.outcome).toBe("succeeded");
    expect(finished.result.systemAfter).toBe(await h.shim.currentSystem());
  });
});

const exists = (file: string) => fs.access(file).then(
  () => true,
  () => false,
);
