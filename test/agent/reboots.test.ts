/**
 * Activation modes and reboots on the agent (docs/hosts.md "Activation modes and reboots"), with the
 * rebuild stand-in: `nixos-rebuild boot` moves only the profile; the stand-in reboot points
 * booted-system and current-system at the profile's system (or, in reboot-mode old-generation, back
 * at the one booted before) and writes a new boot id; the test then stops the agent and starts a new
 * one on the same state, as the boot would. Systems carry a `kernel` (fleet-repo.ts), so a kernel
 * change is a reboot needed.
 */
import * as fs from "node:fs/promises";
import { afterEach, beforeEach, expect, it } from "vitest";
import type { AgentConfigInput } from "../../common/agent-config.ts";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import { createHarness, type Harness } from "./harness.ts";

let h: Harness;

/** The links and tools of the stand-in's boot: its profile, its boot id, its reboot. */
const bootable = (): Partial<AgentConfigInput> => ({
  systemProfileLink: h.shim.systemProfileLink,
  bootIdFile: h.shim.bootIdFile,
  tools: { ...h.config.tools, reboot: h.shim.reboot },
});
const bootId = async (): Promise<string> => (await fs.readFile(h.shim.bootIdFile, "utf8")).trim();

/** The host runs (and booted) a system with kernel 6.6.1; the clone then holds one with `nextKernel`. Returns both systems. */
async function bootedFirstThenNext(nextKernel: string): Promise<{ first: string; second: string }> {
  await h.fleet.setHost("web1", "web1 generation 1\nkernel 6.6.1");
  await h.startAgent(bootable());
  const switched = await h.run("pull-switch");
  expect(switched.finished).toMatchObject({ outcome: "succeeded", error: null });
  const first = await h.fleet.systemPath("web1");
  await h.shim.markBooted();
  await h.fleet.setHost("web1", `web1 generation 2\nkernel ${nextKernel}`);
  return { first, second: await h.fleet.systemPath("web1") };
}

/** What the boot does to the agent: the one that rebooted is stopped, a new process starts on the same state. */
async function restartAfterReboot(): Promise<void> {
  await h.shim.rebooted();
  await h.stopAgent();
  await h.startAgent(bootable());
}

describeWithNix("activation modes and reboots with the rebuild stand-in", () => {
  beforeEach(async () => {
    h = await createHarness();
  });

  afterEach(async () => {
    await h.cleanup();
    expect(h.plane.protocolErrors).toEqual([]);
  });

  it("boot mode makes the new system the boot default, leaves the running one, and the report says a reboot is needed for the kernel", async () => {
    const { first, second } = await bootedFirstThenNext("6.6.2");
    const id = h.plane.queue("pull-switch", { activation: "boot" });
    const finished = await h.plane.waitForFinished(id);
    expect(finished).toMatchObject({ outcome: "succeeded", error: null });
    expect(finished.result).toMatchObject({ systemBefore: first, systemAfter: first });
    expect(await h.shim.profileSystem()).toBe(second);
    expect(await h.shim.currentSystem()).toBe(first);
    expect(h.plane.output(id)).toContain(`${second} is the boot default; it runs after the next reboot (the running system stays ${first})`);

    const report = await h.plane.waitFor(() => {
      const last = h.plane.lastReport();
      return last?.system.reboot?.value?.needed === true ? last : undefined;
    }, "a report saying a reboot is needed");
    expect(report.system.reboot?.value).toEqual({ needed: true, changed: ["kernel"], kernel: { booted: "6.6.1", next: "6.6.2" } });
    expect(report.system.current.value).toBe(first);
    expect(report.activation).toBe("switch");
    expect(report.bootId).toBe(await bootId());
  });

  it("a reboot is verified by the agent that starts after it: a new boot id and the intended system booted", async () => {
    const { first, second } = await bootedFirstThenNext("6.6.2");
    expect((await h.plane.waitForFinished(h.plane.queue("pull-switch", { activation: "boot" }))).outcome).toBe("succeeded");
    const before = await bootId();

    const id = h.plane.queue("reboot");
    await h.shim.rebooted();
    await h.stopAgent();
    expect(h.plane.finished(id)).toBeUndefined();
    await h.startAgent(bootable());

    const finished = await h.plane.waitForFinished(id);
    const after = await bootId();
    expect(after).not.toBe(before);
    expect(finished).toMatchObject({ outcome: "succeeded", error: null });
    expect(finished.result).toMatchObject({ systemBefore: first, systemAfter: second });
    expect(h.plane.output(id)).toContain(`the host came back on ${second}, as intended (boot id ${before} → ${after})`);
    expect(await h.shim.bootedSystem()).toBe(second);
    const report = await h.plane.waitFor(() => {
      const last = h.plane.lastReport();
      return last?.bootId === after && last.system.current.value === second ? last : undefined;
    }, "a report from the new boot");
    expect(report.system.reboot?.value).toMatchObject({ needed: false, changed: [] });
  });

  it("a reboot that comes back on the old generation fails, naming the system it booted and the one intended", async () => {
    const { first, second } = await bootedFirstThenNext("6.6.2");
    expect((await h.plane.waitForFinished(h.plane.queue("pull-switch", { activation: "boot" }))).outcome).toBe("succeeded");
    await h.shim.setRebootMode("old-generation");
    const before = await bootId();

    const id = h.plane.queue("reboot");
    await restartAfterReboot();
    const finished = await h.plane.waitForFinished(id);
    expect(finished.outcome).toBe("failed");
    expect(finished.error).toBe(`the host came back on the old generation ${first} instead of ${second} (boot id ${before} → ${await bootId()})`);
    expect(await h.shim.currentSystem()).toBe(first);
  });

  it("boot-then-reboot-if-needed reboots when the kernel changed, only once the control plane acknowledged its rebooting event, and the next agent verifies it; with the same kernel it switches without a reboot", async () => {
    const { first, second } = await bootedFirstThenNext("6.6.2");
    // The control plane refuses the event: the host is not rebooted, and the new system waits as the boot default.
    h.plane.eventFaults.push({ status: 400, body: '{"error":{"code":"invalid_request","message":"refused by the test"}}', type: "rebooting" });
    const refused = h.plane.queue("pull-switch", { activation: "boot-then-reboot-if-needed" });
    expect(await h.plane.waitForFinished(refused)).toMatchObject({
      outcome: "failed",
      error: "not rebooting: the control plane did not acknowledge the reboot (it refused the rebooting event), so it would not expect the host back",
    });
    expect(h.plane.events(refused).map((event) => event.type)).not.toContain("rebooting");
    expect(await fs.access(`${h.shim.stateDir}/rebooted`).then(() => true, () => false)).toBe(false);
    expect(await fs.readdir(`${h.stateDir}/reboots`)).toEqual([]);
    expect(await h.shim.profileSystem()).toBe(second);
    expect(await h.shim.currentSystem()).toBe(first);

    const id = h.plane.queue("pull-switch", { activation: "boot-then-reboot-if-needed" });
    await h.shim.rebooted();
    expect(h.plane.events(id)).toContainEqual({ type: "rebooting", at: expect.any(String), system: second });
    expect(h.plane.output(id)).toContain(`rebooting to activate ${second}: telling the control plane first, which then expects the host back within 10 minutes`);
    await h.stopAgent();
    await h.startAgent(bootable());
    const finished = await h.plane.waitForFinished(id);
    expect(finished).toMatchObject({ outcome: "succeeded", error: null });
    expect(finished.result).toMatchObject({ systemAfter: second });
    expect(h.plane.output(id)).toContain("its kernel differ from the booted system's: rebooting into it");
    expect(await h.shim.bootedSystem()).toBe(second);

    await fs.rm(`${h.shim.stateDir}/rebooted`);
    await h.fleet.setHost("web1", "web1 generation 3\nkernel 6.6.2");
    const third = await h.fleet.systemPath("web1");
    const sameKernel = h.plane.queue("pull-switch", { activation: "boot-then-reboot-if-needed" });
    const switched = await h.plane.waitForFinished(sameKernel);
    expect(switched).toMatchObject({ outcome: "succeeded", error: null });
    expect(h.plane.output(sameKernel)).toContain("its kernel, initrd and kernel modules are the booted ones: switching to it without a reboot");
    expect(await h.shim.currentSystem()).toBe(third);
    expect(await h.shim.bootedSystem()).toBe(second);
    expect(await fs.access(`${h.shim.stateDir}/rebooted`).then(() => true, () => false)).toBe(false);
  });

  it("a reboot that does not start fails at once and leaves nothing for the next agent to verify", async () => {
    await bootedFirstThenNext("6.6.1");
    await h.shim.setRebootMode("fail");
    const id = h.plane.queue("reboot");
    const finished = await h.plane.waitForFinished(id);
    expect(finished.outcome).toBe("failed");
    expect(finished.error).toContain("the reboot did not start:");
    expect(finished.error).toContain("the reboot was refused (the test shim's reboot-mode fail)");
    expect(await fs.readdir(`${h.stateDir}/reboots`)).toEqual([]);
  });
});
