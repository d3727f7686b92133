/**
 * Space checks before a switch (agent/disk-space.ts): thresholds set above what is really free on this
 * machine's filesystems (read with statfs here, as the agent reads them) refuse the switch with the
 * reason and leave the running system as it was; the report carries what is free.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bootBytesNeeded } from "../../agent/disk-space.ts";
import { createNodeRunner } from "../../agent/runner.ts";
import { TEST_NIX_CONFIG } from "../../tools/fleet-kit/host-env.ts";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import { createHarness, type Harness } from "./harness.ts";

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

async function freeBytes(dir: string): Promise<number> {
  const space = await fs.statfs(dir);
  return space.bavail * space.bsize;
}

/** A directory on a filesystem other than the root's: tmpfs at /dev/shm on Linux. */
async function dirOnOtherFilesystem(): Promise<string> {
  const root = (await fs.stat("/")).dev;
  for (const candidate of ["/dev/shm", `/run/user/${process.getuid?.() ?? 0}`]) {
    const stat = await fs.stat(candidate).catch(() => null);
    if (stat?.isDirectory() && stat.dev !== root) {
      const made = await fs.mkdtemp(path.join(candidate, "nixfleet-boot-")).catch(() => null);
      if (made !== null) return made;
    }
  }
  throw new Error("no writable directory on a filesystem other than / (looked at /dev/shm and /run/user/<uid>): the /boot check needs one");
}

let h: Harness;
let bootDir: string | null = null;

describeWithNix("space checks before a switch, against the real filesystems", () => {
  beforeEach(async () => {
    h = await createHarness();
  });

  afterEach(async () => {
    await h.cleanup();
    if (bootDir !== null) await fs.rm(bootDir, { recursive: true, force: true });
    bootDir = null;
    expect(h.plane.protocolErrors).toEqual([]);
  });

  it("refuses a switch when the store's filesystem has less free than storeMinFree, and the running system stays", async () => {
    await h.startAgent();
    await h.run("pull");
    const first = await h.run("switch");
    expect(first.finished.outcome).toBe("succeeded");
    const running = await h.shim.currentSystem();
    expect(running).not.toBeNull();

    await h.stopAgent();
    const needed = (await freeBytes("/nix/store")) + GiB;
    await h.startAgent({ spaceCheck: { storeMinFree: needed } });
    await h.fleet.setHost("web1", "web1 generation 2");
    await h.run("pull");
    const { id, finished } = await h.run("switch");
    expect(finished.outcome).toBe("failed");
    expect(finished.error).toMatch(/^not enough space on the Nix store \(\/nix\/store\): \d+(\.\d)? [KMGT]iB free, \d+(\.\d)? [KMGT]iB needed$/);
    expect(await h.shim.currentSystem()).toBe(running);
    // Refused before anything ran: no evaluation, no rebuild.
    expect(h.plane.output(id)).not.toContain("$ ");

    const report = await h.plane.waitFor(() => h.plane.lastReport()?.disk, "a report with disk");
    expect(report.store.path).toBe("/nix/store");
    expect(report.store.freeBytes).toBeLessThan(needed);
    expect(report.store.totalBytes).toBeGreaterThan(report.store.freeBytes);
  });

  it("refuses a build of a commit too when the store's filesystem is short, fetching and building nothing", async () => {
    await h.startAgent({ spaceCheck: { storeMinFree: (await freeBytes("/nix/store")) + GiB } });
    const { id, finished } = await h.run("build", { commit: await h.fleet.head() });
    expect(finished.outcome).toBe("failed");
    expect(finished.error).toMatch(/^not enough space on the Nix store \(\/nix\/store\): .* free, .* needed$/);
    expect(finished.result.build?.storePath).toBeNull();
    expect(h.plane.output(id)).not.toContain("$ ");
  });

  it("builds first where /boot is its own filesystem, then refuses the activation when /boot lacks kernel, initrd and margin", async () => {
    bootDir = await dirOnOtherFilesystem();
    const margin = (await freeBytes(bootDir)) + GiB;
    await h.startAgent({ spaceCheck: { bootDir, bootMargin: margin } });
    await h.run("pull");
    const { id, finished } = await h.run("switch");
    expect(finished.outcome).toBe("failed");
    expect(finished.error).toMatch(new RegExp(`^not enough space on ${bootDir}: \\d+(\\.\\d)? [KMGT]iB free, \\d+(\\.\\d)? [KMGT]iB needed$`));
    // The system was built (its store path exists) and never activated.
    const built = await h.fleet.systemPath("web1");
    await expect(fs.access(built)).resolves.toBeUndefined();
    expect(h.plane.output(id)).toContain(`${bootDir} is its own filesystem; building the new system first`);
    expect(await h.shim.currentSystem()).toBeNull();

    const disk = await h.plane.waitFor(() => h.plane.lastReport()?.disk, "a report with disk");
    expect(disk.boot).toMatchObject({ path: bootDir });
    expect(disk.boot?.freeBytes).toBeLessThan(margin);
  });

  it("switches when /boot has room, saying what it found, and reports /boot as null where it is on the root filesystem", async () => {
    bootDir = await dirOnOtherFilesystem();
    await h.startAgent({ spaceCheck: { bootDir, bootMargin: 16 * MiB } });
    await h.run("pull");
    const { id, finished } = await h.run("switch");
    expect(finished.outcome).toBe("succeeded");
    expect(await h.shim.currentSystem()).toBe(await h.fleet.systemPath("web1"));
    expect(h.plane.output(id)).toMatch(new RegExp(`space check: .* free on ${bootDir}, 16 MiB needed`));

    await h.stopAgent();
    const onRoot = path.join(h.root, "boot");
    await fs.mkdir(onRoot);
    await h.startAgent({ spaceCheck: { bootDir: onRoot } });
    const report = await h.plane.waitFor(
      () => {
        const last = h.plane.lastReport();
        return last?.disk !== undefined && last.disk.boot === null ? last : undefined;
      },
      "a report whose /boot is on the root filesystem",
    );
    expect(report.disk?.store.path).toBe("/nix/store");
  });
});

describe("what a new generation needs on /boot", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-boot-needed-"));
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it("counts the kernel and initrd by their sizes, except a file whose store hash /boot already holds", async () => {
    await fs.writeFile(path.join(dir, "bzImage"), Buffer.alloc(3 * MiB, 1));
    await fs.writeFile(path.join(dir, "initrd"), Buffer.alloc(2 * MiB, 2));
    const system = path.join(dir, "system");
    await fs.mkdir(system);
    const boot = path.join(dir, "boot");
    await fs.mkdir(path.join(boot, "EFI", "nixos"), { recursive: true });
    const runner = createNodeRunner();

    // Outside the store the files have no hash to find in /boot: both are copied.
    await fs.symlink(path.join(dir, "bzImage"), path.join(system, "kernel"));
    await fs.symlink(path.join(dir, "initrd"), path.join(system, "initrd"));
    const files = [path.join(system, "kernel"), path.join(system, "initrd")];
    expect(await bootBytesNeeded(runner, boot, files)).toEqual({ bytes: 5 * MiB, copied: ["kernel", "initrd"] });

    // A system with no kernel (Home Manager, a test system) needs only the margin.
    expect(await bootBytesNeeded(runner, boot, [path.join(dir, "missing", "kernel")])).toEqual({ bytes: 0, copied: [] });
  });

  describeWithNix("with the kernel in the Nix store", () => {
    it("leaves out the kernel systemd-boot already copied under its store hash", async () => {
      const kernel = spawnSync("nix-store", ["--add", await writeKernel(dir)], { encoding: "utf8", env: { ...process.env, NIX_CONFIG: TEST_NIX_CONFIG } });
      expect(kernel.status, kernel.stderr).toBe(0);
      const storePath = kernel.stdout.trim();
      const hash = path.basename(storePath).slice(0, 32);
      const boot = path.join(dir, "boot");
      await fs.mkdir(path.join(boot, "EFI", "nixos"), { recursive: true });
      const runner = createNodeRunner();

      expect(await bootBytesNeeded(runner, boot, [storePath])).toEqual({ bytes: 3 * MiB, copied: [path.basename(storePath)] });
      await fs.writeFile(path.join(boot, "EFI", "nixos", `${hash}-linux-6.6-bzImage.efi`), "");
      expect(await bootBytesNeeded(runner, boot, [storePath])).toEqual({ bytes: 0, copied: [] });
    });
  });
});

async function writeKernel(dir: string): Promise<string> {
  const file = path.join(dir, "linux-6.6-bzImage");
  await fs.writeFile(file, Buffer.alloc(3 * MiB, 7));
  return file;
}
