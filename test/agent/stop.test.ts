import * as fs from "node:fs/promises";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { describeWithNix, nixAvailable } from "../fixtures/nix/require-nix.ts";
import { createHarness, processGone, type Harness } from "./harness.ts";

let h: Harness;

afterEach(async () => {
  await h.cleanup();
  expect(h.plane.protocolErrors).toEqual([]);
});

describe("stop", () => {
  beforeEach(async () => {
    h = await createHarness({ lock: nixAvailable });
  });

  it("kills a running command's whole process group; the command ends cancelled", async () => {
    const pids = path.join(h.root, "pids");
    // The shell, a background sleep and a foreground sleep: all in one process group.
    await h.startAgent({
      tests: { commands: [{ name: "hangs", command: `sleep 300 & echo $! >> ${pids}; echo $$ >> ${pids}; sleep 300` }] },
    });
    const target = h.plane.queue("test");
    const recorded = await waitForPids(pids, 2);
    const { finished: stop } = await h.run("stop", { target });
    expect(stop).toMatchObject({ outcome: "succeeded", result: { stopped: true } });

    const finished = await h.plane.waitForFinished(target);
    expect(finished).toMatchObject({ outcome: "cancelled", error: "stopped by a stop command" });
    for (const pid of recorded) expect(await waitGone(pid), `process ${pid} is gone`).toBe(true);
  });

  it("keeps polling while a command runs, so the stop arrives", async () => {
    await h.startAgent({ tests: { commands: [{ name: "hangs", command: "sleep 300" }] } });
    const target = h.plane.queue("test");
    await h.plane.waitFor(() => h.plane.events(target).some((e) => e.type === "started"), "the target to start");
    // `sleep 300` only ends early if the stop reached the agent while it ran.
    const stop = h.plane.queue("stop", { target });
    await h.plane.waitForFinished(stop);
    expect(h.plane.finished(target)?.outcome).toBe("cancelled");
  });

  it("cancels a queued command before it starts", async () => {
    await h.startAgent({ tests: { commands: [{ name: "hangs", command: "sleep 300" }] } });
    const running = h.plane.queue("test");
    await h.plane.waitFor(() => h.plane.events(running).some((e) => e.type === "started"), "the first test to start");
    const queued = h.plane.queue("pull");
    await h.plane.waitForPoll((poll) => poll.request.activeCommands.includes(queued), "the pull to be held");
    await h.run("stop", { target: queued });
    expect(h.plane.finished(queued)).toMatchObject({ outcome: "cancelled", error: "stopped by a stop command before it started" });
    expect(h.plane.events(queued).some((e) => e.type === "started")).toBe(false);
    await h.run("stop", { target: running });
  });

  it("reports stopped: false when the target is not running", async () => {
    await h.startAgent();
    const { finished: done } = await h.run("refresh");
    expect(done.outcome).toBe("succeeded");
    const { finished } = await h.run("stop", { target: "cmd_not_running_here" });
    expect(finished).toMatchObject({ outcome: "succeeded", result: { stopped: false } });
  });
});

describeWithNix("stop a detached switch", () => {
  beforeEach(async () => {
    h = await createHarness();
  });

  it("kills the detached job's process group; the switch ends cancelled and the system stays", async () => {
    await h.startAgent();
    await h.run("pull");
    await h.shim.setMode("gate");
    const target = h.plane.queue("switch");
    await h.plane.waitFor(() => h.plane.output(target).includes("waiting for"), "the switch to wait at the gate");
    const shimPid = Number((await fs.readFile(path.join(h.shim.stateDir, "last-pid"), "utf8")).trim());

    const { finished: stop } = await h.run("stop", { target });
    expect(stop.result).toEqual({ stopped: true });
    const finished = await h.plane.waitForFinished(target);
    expect(finished.outcome).toBe("cancelled");
    expect(await waitGone(shimPid)).toBe(true);
    expect(await h.shim.currentSystem()).toBeNull();
  });
});

/** Waits until `file` lists `count` pids (the test command writes them as it starts). */
async function waitForPids(file: string, count: number): Promise<number[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const text = await fs.readFile(file, "utf8").catch(() => "");
    const pids = text.split("\n").filter(Boolean).map(Number);
    if (pids.length >= count) return pids;
    if (Date.now() > deadline) throw new Error(`${file} never listed ${count} pids`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function waitGone(pid: number): Promise<boolean> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (await processGone(pid)) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}
