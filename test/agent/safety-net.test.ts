/**
 * The host's safety net with a real agent, real Nix and the nixos-rebuild shim, the control plane
 * reached through a TCP proxy that can refuse new connections while open ones go on (a switch that
 * cuts the host off). The watchdog is a real process of its own (`nixfleet-agent watchdog DIR`).
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { shortSha } from "../../common/text.ts";
import { eventually } from "../support/wait.ts";
import { hostAndPort, startTcpProxy, type TcpProxy } from "../support/tcp-proxy.ts";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import { createHarness, groupGone, type Harness } from "./harness.ts";

const CONFIRM_TIMEOUT_SECONDS = 3;

let h: Harness;
let proxy: TcpProxy;

const safetyNetDir = (id: string) => path.join(h.stateDir, "safety-net", id);
const readJson = async (file: string): Promise<unknown> => JSON.parse(await fs.readFile(file, "utf8")) as unknown;

/** Calls `action` the moment the shim's running-system link points at `system`; resolves with that moment. */
async function onActivation(system: string, action: () => void | Promise<void>): Promise<number> {
  const at = await h.shim.activated(system);
  await action();
  return at;
}

/** Pulls and switches to a new generation of web1's system; returns its store path and commit. */
async function nextGeneration(label: string): Promise<{ system: string; commit: string }> {
  const commit = await h.fleet.setHost("web1", `web1 ${label}`);
  await h.run("pull");
  return { system: await h.fleet.systemPath("web1"), commit };
}

/**
 * From a first switched generation, a switch to the next one whose activation takes the agent down (its unit
 * restarts) while the cut stops the old process from confirming; returns once the new system is active.
 */
async function switchCutOffWithTheAgentDown(startAgent: () => Promise<unknown>): Promise<{ id: string; gen1: string; gen2: { system: string; commit: string } }> {
  await startAgent();
  await h.run("pull");
  await h.run("switch");
  const gen1 = await h.fleet.systemPath("web1");
  const gen2 = await nextGeneration("generation 2");
  const activated = onActivation(gen2.system, async () => {
    proxy.refuseNew();
    await h.stopAgent();
  });
  const id = h.plane.queue("switch");
  await activated;
  return { id, gen1, gen2 };
}

describeWithNix("the host's safety net: confirm or roll back", () => {
  beforeEach(async () => {
    h = await createHarness();
    proxy = await startTcpProxy(hostAndPort(h.plane.url));
  });

  afterEach(async () => {
    await h.cleanup();
    await proxy.close();
    expect(h.plane.protocolErrors).toEqual([]);
  });

  const startAgent = () => h.startAgent({ url: proxy.url, safetyNet: { confirmTimeoutSeconds: CONFIRM_TIMEOUT_SECONDS } });

  it("with the control plane reachable, the new agent confirms on a connection of its own and nothing is rolled back", async () => {
    await startAgent();
    await h.run("pull");
    const first = await h.run("switch");
    expect(first.finished.outcome).toBe("succeeded");
    // No previous system to go back to: the first switch is not armed, and says so.
    expect(h.plane.output(first.id)).toContain("no previous system to go back to: not armed");
    const gen1 = await h.fleet.systemPath("web1");
    // Not armed, the switch's end carries the post-switch report itself.
    expect(first.finished.report?.report.system.current.value).toBe(gen1);

    const gen2 = await nextGeneration("generation 2");
    const { id, finished } = await h.run("switch");
    expect(finished).toMatchObject({ outcome: "succeeded", error: null });
    // Armed, the confirmation carried it; the end carries it again with the safety net's decision in it (nothing pending).
    expect(finished.report?.report.system.current.value).toBe(gen2.system);
    expect(finished.report?.report.safetyNet?.pending).toBeNull();
    expect(finished.result).toMatchObject({ systemBefore: gen1, systemAfter: gen2.system });
    expect(h.plane.confirmations.map((c) => [c.request.commandId, c.request.system])).toEqual([[id, gen2.system]]);
    // The confirmation carries the post-switch report.
    expect(h.plane.confirmations[0]?.request.report?.system.current.value).toBe(gen2.system);
    expect(await readJson(path.join(safetyNetDir(id), "decision.json"))).toMatchObject({ decision: "confirmed", by: "agent" });
    expect(await readJson(path.join(safetyNetDir(id), "record.json"))).toMatchObject({ previous: gen1, next: gen2.system, confirmTimeoutSeconds: 3 });
    const output = h.plane.output(id);
    expect(output).toContain(`safety net: recorded the previous system ${gen1}`);
    expect(output).toContain("safety net: confirmed;");

    // The watchdog saw the confirmation and ended without touching the host.
    await eventually("the watchdog to end", () => fs.readFile(path.join(safetyNetDir(id), "watchdog.exit"), "utf8"));
    expect(await fs.readFile(path.join(safetyNetDir(id), "watchdog.log"), "utf8")).toContain("decided by the agent: confirmed");
    expect(await h.shim.currentSystem()).toBe(gen2.system);
    const report = await h.plane.waitFor(() => h.plane.lastReport()?.safetyNet, "a report with the safety net");
    expect(report).toEqual({ enabled: true, confirmTimeoutSeconds: 3, pending: null, lastRollback: null, rejected: [] });
  });

  it("cut off at the activation, the host goes back to the RECORDED previous system (not one generation back) and says so once it reaches the control plane again", async () => {
    await startAgent();
    await h.run("pull");
    await h.run("switch");
    const gen1 = await h.fleet.systemPath("web1");
    await nextGeneration("generation 2");
    await h.run("switch");
    // Back on generation 1 by an operator's rollback: one generation back from the next switch would be generation 2.
    expect((await h.run("rollback")).finished.outcome).toBe("succeeded");
    expect(await h.shim.currentSystem()).toBe(gen1);

    const gen3 = await nextGeneration("generation 3");
    const activated = onActivation(gen3.system, () => proxy.refuseNew());
    const id = h.plane.queue("switch");
    const activatedAt = await activated;
    await eventually("the host back on the recorded previous system", async () => (await h.shim.currentSystem()) === gen1, {
      timeoutMs: (CONFIRM_TIMEOUT_SECONDS + 10) * 1000,
      intervalMs: 50,
    });
    const backAfterMs = Date.now() - activatedAt;
    expect(backAfterMs).toBeGreaterThanOrEqual(CONFIRM_TIMEOUT_SECONDS * 1000);
    expect(backAfterMs).toBeLessThan((CONFIRM_TIMEOUT_SECONDS + 10) * 1000);
    // No confirmation reached the control plane: every new connection was refused, while the open ones went on.
    expect(h.plane.confirmations.filter((c) => c.request.commandId === id)).toEqual([]);
    expect(proxy.counts().refused).toBeGreaterThan(0);
    expect(h.plane.finished(id)).toBeUndefined();

    proxy.reopen();
    const finished = await h.plane.waitForFinished(id);
    expect(finished.outcome).toBe("failed");
    expect(finished.error).toBe(`rolled back on the host: no confirmation within 3 s after switching to ${shortSha(gen3.commit)}`);
    expect(finished.result.hostRollback).toMatchObject({ commandId: id, from: gen3.system, to: gen1, commit: gen3.commit, outcome: "rolled-back", error: null });
    expect(finished.result.systemAfter).toBe(gen1);
    // The report that comes with the end already says the host rolled back.
    expect(finished.report?.report.system.current.value).toBe(gen1);
    expect(finished.report?.report.safetyNet?.lastRollback).toMatchObject({ commandId: id, from: gen3.system, to: gen1 });
    const output = h.plane.output(id);
    expect(output).toContain(`safety net: recorded the previous system ${gen1}`);
    expect(output).toMatch(/watchdog: \S+ no confirmation within 3 s after switching to [0-9a-f]{7}: activating the recorded previous system/);
    expect(output).toContain(`activating the recorded previous system ${gen1}`);
    expect(await readJson(path.join(safetyNetDir(id), "decision.json"))).toMatchObject({ decision: "rollback", by: "watchdog" });

    const report = await h.plane.waitFor(() => (h.plane.lastReport()?.safetyNet?.lastRollback ? h.plane.lastReport()?.safetyNet : undefined), "a report with the rollback");
    expect(report.rejected).toEqual([{ storePath: gen3.system, commit: gen3.commit, at: finished.result.hostRollback?.at }]);
    expect(report.pending).toBeNull();
    // The rollback is not under confirmation: nothing moves after it.
    await eventually("the watchdog to end", () => fs.readFile(path.join(safetyNetDir(id), "watchdog.exit"), "utf8"));
    expect(await h.shim.currentSystem()).toBe(gen1);
  });

  it("a new generation whose agent cannot start at all is rolled back by the watchdog, and the next agent that starts reports it", async () => {
    const { id, gen1, gen2 } = await switchCutOffWithTheAgentDown(startAgent);
    // The new generation's agent exits at start: its token file moved.
    await expect(h.startAgent({ url: proxy.url, tokenFile: path.join(h.root, "moved-token") })).rejects.toThrow(/token file .* does not exist/);
    await eventually("the watchdog to roll the host back", async () => (await h.shim.currentSystem()) === gen1, {
      timeoutMs: (CONFIRM_TIMEOUT_SECONDS + 10) * 1000,
      intervalMs: 50,
    });

    proxy.reopen();
    await startAgent();
    const finished = await h.plane.waitForFinished(id);
    expect(finished.error).toBe(`rolled back on the host: no confirmation within 3 s after switching to ${shortSha(gen2.commit)}`);
    expect(finished.result.hostRollback).toMatchObject({ from: gen2.system, to: gen1, outcome: "rolled-back" });
    expect(await readJson(path.join(safetyNetDir(id), "decision.json"))).toMatchObject({ decision: "rollback", by: "watchdog" });
  });

  it("killed right after the activation with its watchdog, an agent restarted past the deadline rolls back at start", async () => {
    const { id, gen1, gen2 } = await switchCutOffWithTheAgentDown(startAgent);
    // Whatever ended the agent ended its watchdog too (as a reboot would, or the OOM killer).
    const handle = (await readJson(path.join(safetyNetDir(id), "watchdog.json"))) as { mode: string; pgid: number };
    expect(handle.mode).toBe("process-group");
    process.kill(-handle.pgid, "SIGKILL");
    await eventually("the watchdog to be gone", () => groupGone(handle.pgid));
    // Nobody saw the activation end: the switch job's exit file is its only witness. Wait past its deadline.
    const exitFile = path.join(h.stateDir, "jobs", id, "exit");
    const endedAt = await eventually("the switch job to end", () => fs.stat(exitFile).then((stat) => stat.mtimeMs));
    await eventually("the deadline to pass", () => Date.now() > endedAt + CONFIRM_TIMEOUT_SECONDS * 1000 + 500, {
      timeoutMs: (CONFIRM_TIMEOUT_SECONDS + 10) * 1000,
    });
    expect(await h.shim.currentSystem()).toBe(gen2.system);

    proxy.reopen();
    await startAgent();
    const finished = await h.plane.waitForFinished(id);
    expect(await h.shim.currentSystem()).toBe(gen1);
    expect(finished.error).toBe(`rolled back on the host: no confirmation within 3 s after switching to ${shortSha(gen2.commit)}`);
    expect(await readJson(path.join(safetyNetDir(id), "decision.json"))).toMatchObject({ decision: "rollback", by: "agent" });
  });

  it("a health test that fails on the new system keeps it from being confirmed: the host rolls back", async () => {
    const tests = { commands: [{ name: "not-generation-2", command: `! grep -q "generation 2" ${h.shim.currentSystemLink}` }] };
    await h.startAgent({ url: proxy.url, tests, safetyNet: { confirmTimeoutSeconds: CONFIRM_TIMEOUT_SECONDS } });
    await h.run("pull");
    await h.run("switch");
    const gen1 = await h.fleet.systemPath("web1");
    const gen2 = await nextGeneration("generation 2");
    const { id, finished } = await h.run("switch", { timeoutMs: 60_000 });
    expect(finished.error).toBe(`rolled back on the host: no confirmation within 3 s after switching to ${shortSha(gen2.commit)}`);
    expect(h.plane.output(id)).toContain("safety net: not confirming: 1 of 1 health tests failed: not-generation-2");
    expect(h.plane.confirmations.filter((c) => c.request.commandId === id)).toEqual([]);
    expect(await h.shim.currentSystem()).toBe(gen1);
  });

  it("an answer that is not the control plane's own (an Access login page) does not confirm: the host rolls back", async () => {
    await startAgent();
    await h.run("pull");
    await h.run("switch");
    const gen1 = await h.fleet.systemPath("web1");
    const gen2 = await nextGeneration("generation 2");
    const accessPage = { status: 200, contentType: "text/html", body: "<!doctype html><title>Sign in ・ Cloudflare Access</title>" };
    h.plane.confirmFaults.push(...Array.from({ length: 100 }, () => accessPage));
    const { id, finished } = await h.run("switch", { timeoutMs: 60_000 });
    expect(finished.error).toBe(`rolled back on the host: no confirmation within 3 s after switching to ${shortSha(gen2.commit)}`);
    expect(await h.shim.currentSystem()).toBe(gen1);
    expect(h.plane.confirmations.filter((c) => c.request.commandId === id).length).toBeGreaterThan(0);
    expect(h.plane.output(id)).toContain("the answer is not the control plane's confirmation: not JSON");
  });
});

describeWithNix("the host's safety net across a reboot", () => {
  let bootIdFile: string;

  beforeEach(async () => {
    h = await createHarness();
    proxy = await startTcpProxy(hostAndPort(h.plane.url));
    bootIdFile = path.join(h.root, "boot_id");
    await fs.writeFile(bootIdFile, "boot-1\n");
  });

  afterEach(async () => {
    await h.cleanup();
    await proxy.close();
    expect(h.plane.protocolErrors).toEqual([]);
  });

  const startAgent = () => h.startAgent({ url: proxy.url, bootIdFile, safetyNet: { confirmTimeoutSeconds: CONFIRM_TIMEOUT_SECONDS } });

  /** Switches to a new generation and "reboots" once its window opened: the agent and its watchdog gone, a new boot id. */
  async function switchThenReboot(): Promise<{ id: string; gen1: string; gen2: { system: string; commit: string } }> {
    const { id, gen1, gen2 } = await switchCutOffWithTheAgentDown(startAgent);
    // The watchdog opens the window when the switch job ends; then the host goes down.
    await eventually("the window to open", () => fs.readFile(path.join(safetyNetDir(id), "window.json"), "utf8"));
    const handle = (await readJson(path.join(safetyNetDir(id), "watchdog.json"))) as { pgid: number };
    process.kill(-handle.pgid, "SIGKILL");
    await eventually("the watchdog to be gone", () => groupGone(handle.pgid));
    await fs.writeFile(bootIdFile, "boot-2\n");
    proxy.reopen();
    return { id, gen1, gen2 };
  }

  it("a host that booted the unconfirmed system gets a fresh window, and its agent confirms the switch", async () => {
    const { id, gen2 } = await switchThenReboot();
    await startAgent();
    const finished = await h.plane.waitForFinished(id);
    expect(finished, finished.error ?? "").toMatchObject({ outcome: "succeeded" });
    expect(await h.shim.currentSystem()).toBe(gen2.system);
    expect(await readJson(path.join(safetyNetDir(id), "window.json"))).toMatchObject({ bootId: "boot-2" });
    expect(await readJson(path.join(safetyNetDir(id), "decision.json"))).toMatchObject({ decision: "confirmed" });
    expect(h.logs.join("\n")).toContain("the host rebooted into the unconfirmed system: a fresh confirmation window");
  });

  it("after a reboot, a watchdog handle whose process group id the new boot gave to another process is not taken for the watchdog", async () => {
    const { id, gen1, gen2 } = await switchThenReboot();
    await fs.symlink(gen1, `${h.shim.currentSystemLink}.new`);
    await fs.rename(`${h.shim.currentSystemLink}.new`, h.shim.currentSystemLink);
    // Another process now leads a group with the id the handle names (a pid reused after the reboot).
    const stranger = spawn("sleep", ["60"], { detached: true, stdio: "ignore" });
    try {
      await fs.writeFile(path.join(safetyNetDir(id), "watchdog.json"), JSON.stringify({ mode: "process-group", pgid: stranger.pid }));
      await startAgent();
      const finished = await h.plane.waitForFinished(id);
      expect(finished.error).toBe(`rolled back on the host: the host rebooted into ${gen1}, not the unconfirmed ${gen2.system}`);
      expect(await readJson(path.join(safetyNetDir(id), "decision.json"))).toMatchObject({ decision: "rollback", by: "agent" });
    } finally {
      stranger.kill("SIGKILL");
    }
  });

  it("a host that booted another system is rolled back to the recorded previous one first, then reports", async () => {
    const { id, gen1, gen2 } = await switchThenReboot();
    // The boot loader started the old generation: the running system is not the unconfirmed one.
    await fs.symlink(gen1, `${h.shim.currentSystemLink}.new`);
    await fs.rename(`${h.shim.currentSystemLink}.new`, h.shim.currentSystemLink);
    const generationsBefore = await h.shim.generations();
    await startAgent();
    const finished = await h.plane.waitForFinished(id);
    expect(finished.error).toBe(`rolled back on the host: the host rebooted into ${gen1}, not the unconfirmed ${gen2.system}`);
    expect(finished.result.hostRollback).toMatchObject({ from: gen2.system, to: gen1, outcome: "rolled-back" });
    // The profile, which the next boot starts, points at the previous system again.
    const generations = await h.shim.generations();
    expect(generations.length).toBe(generationsBefore.length + 1);
    expect(await fs.realpath(path.join(h.shim.stateDir, "profiles", "system"))).toBe(gen1);
    expect(await readJson(path.join(safetyNetDir(id), "decision.json"))).toMatchObject({ decision: "rollback", by: "agent" });
  });
});
