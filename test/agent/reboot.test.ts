import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AgentConfig, type AgentConfigInput } from "../../common/agent-config.ts";
import { platformFor } from "../../agent/platforms/index.ts";
import { kernelVersion } from "../../agent/reboot.ts";
import { isolatedAgentConfig, toolLessRunner } from "./isolated-host.ts";
import { ReportCollector } from "../../agent/report.ts";

/**
 * A NixOS host's links as real symlinks in a temp dir: store paths with kernel,
 * initrd and kernel-modules, the system profile's generations, and
 * current-system / booted-system, moved the way switch, boot and a reboot move them.
 */
describe("reboot needed: the booted system against the profile that boots next", () => {
  let root: string;
  let store: string;
  beforeEach(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-reboot-"));
    store = path.join(root, "nix", "store");
    await fs.mkdir(path.join(root, "profiles"), { recursive: true });
  });
  afterEach(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  const hash = (seed: string) => seed.padEnd(32, "0");

  /** A store path with a file in it; returns the file's path. */
  const storeFile = async (seed: string, name: string, file: string) => {
    const dir = path.join(store, `${hash(seed)}-${name}`);
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(path.join(dir, file), name);
    return path.join(dir, file);
  };

  /** A system toplevel whose kernel, initrd and kernel-modules link into their own store paths. */
  const system = async (seed: string, parts: { kernel: string; initrd: string; modules: string }) => {
    const toplevel = path.join(store, `${hash(seed)}-nixos-system-web1`);
    await fs.mkdir(toplevel, { recursive: true });
    await fs.symlink(await storeFile(`${seed}k`, parts.kernel, "bzImage"), path.join(toplevel, "kernel"));
    await fs.symlink(await storeFile(`${seed}i`, parts.initrd, "initrd"), path.join(toplevel, "initrd"));
    const modules = path.join(store, `${hash(`${seed}m`)}-${parts.modules}`, "lib");
    await fs.mkdir(modules, { recursive: true });
    await fs.symlink(modules, path.join(toplevel, "kernel-modules"));
    return toplevel;
  };

  /** Points a link at a target, replacing it as `ln -sfn` would. */
  const pointAt = async (link: string, target: string) => {
    await fs.rm(link, { force: true });
    await fs.symlink(target, link);
  };
  const links = () => ({
    currentSystemLink: path.join(root, "run-current-system"),
    bootedSystemLink: path.join(root, "run-booted-system"),
    systemProfileLink: path.join(root, "profiles", "system"),
  });
  /** What `nixos-rebuild boot` does: a new generation and the profile on it. */
  const boot = async (generation: number, toplevel: string) => {
    const generationLink = path.join(root, "profiles", `system-${generation}-link`);
    await fs.symlink(toplevel, generationLink);
    await pointAt(links().systemProfileLink, `system-${generation}-link`);
  };
  /** What `nixos-rebuild switch` does: `boot`, then activation moves /run/current-system. */
  const switchTo = async (generation: number, toplevel: string) => {
    await boot(generation, toplevel);
    await pointAt(links().currentSystemLink, toplevel);
  };
  /** What the boot does: the booted system and the running one are the profile's. */
  const reboot = async () => {
    const next = await fs.realpath(links().systemProfileLink);
    await pointAt(links().bootedSystemLink, next);
    await pointAt(links().currentSystemLink, next);
  };

  const collect = async (overrides: Partial<AgentConfigInput> = {}) => {
    const config = isolatedAgentConfig(root, { ...links(), ...overrides });
    const runner = toolLessRunner(root);
    const collector = new ReportCollector({ config, platform: platformFor(config), runner, store: null, cloneDir: path.join(root, "clone"), agentStartedAt: Date.now() });
    return (await collector.collect()).system;
  };

  const installFirstSystem = async () => {
    const first = await system("a", { kernel: "linux-6.6.1", initrd: "initrd-linux-6.6.1", modules: "linux-6.6.1-modules-shrunk" });
    await switchTo(1, first);
    await reboot();
    return first;
  };
  const newKernel = () => system("b", { kernel: "linux-6.6.8", initrd: "initrd-linux-6.6.8", modules: "linux-6.6.8-modules-shrunk" });

  it("needs none while the booted system is the profile's", async () => {
    await installFirstSystem();
    expect((await collect()).reboot).toEqual({ value: { needed: false, changed: [], kernel: null } });
  });

  it("needs one after a switch to a new kernel: profile and current system moved, the booted system did not", async () => {
    const first = await installFirstSystem();
    await switchTo(2, await newKernel());
    const reported = await collect();
    expect(reported.current.value).not.toBe(first);
    expect(reported.reboot).toEqual({
      value: { needed: true, changed: ["kernel", "initrd", "kernel-modules"], kernel: { booted: "6.6.1", next: "6.6.8" } },
    });
  });

  it("needs one after a boot activation: only the profile moved, the running system is still the booted one", async () => {
    const first = await installFirstSystem();
    await boot(2, await newKernel());
    const reported = await collect();
    expect(reported.current.value).toBe(first);
    expect(reported.reboot?.value).toEqual({ needed: true, changed: ["kernel", "initrd", "kernel-modules"], kernel: { booted: "6.6.1", next: "6.6.8" } });
  });

  it("needs none again once the host rebooted into the new system", async () => {
    await installFirstSystem();
    await switchTo(2, await newKernel());
    expect((await collect()).reboot?.value?.needed).toBe(true);
    await reboot();
    expect((await collect()).reboot).toEqual({ value: { needed: false, changed: [], kernel: null } });
  });

  it("names only the initrd when a switch changed the initrd and kept the kernel", async () => {
    await installFirstSystem();
    await switchTo(2, await system("c", { kernel: "linux-6.6.1", initrd: "initrd-linux-6.6.1-luks", modules: "linux-6.6.1-modules-shrunk" }));
    // The same kernel file: the new system's kernel link leads into the first system's kernel store path.
    const second = await fs.realpath(links().systemProfileLink);
    await pointAt(path.join(second, "kernel"), path.join(store, `${hash("ak")}-linux-6.6.1`, "bzImage"));
    await pointAt(path.join(second, "kernel-modules"), path.join(store, `${hash("am")}-linux-6.6.1-modules-shrunk`, "lib"));
    expect((await collect()).reboot).toEqual({ value: { needed: true, changed: ["initrd"], kernel: null } });
  });

  it("says why when there is no booted system to compare (a container, a host that is not NixOS)", async () => {
    await installFirstSystem();
    const missing = path.join(root, "no-booted-system");
    expect((await collect({ bootedSystemLink: missing })).reboot).toEqual({ value: null, reason: `${missing} does not exist` });
  });

  it("is not applicable on nix-darwin and Home Manager, and says so", async () => {
    await installFirstSystem();
    await switchTo(2, await newKernel());
    expect((await collect({ platform: "darwin" })).reboot).toEqual({ value: null, reason: expect.stringMatching(/^not applicable: nix-darwin/) });
    expect((await collect({ platform: "home-manager" })).reboot).toEqual({ value: null, reason: expect.stringMatching(/^not applicable: Home Manager/) });
  });
});

describe("the kernel version in a kernel's store path", () => {
  it.each([
    ["/nix/store/0123456789abcdfghijklmnpqrsvwxyz-linux-6.6.8/bzImage", "6.6.8"],
    ["/nix/store/0123456789abcdfghijklmnpqrsvwxyz-linux-6.12-rc3/Image", "6.12-rc3"],
    ["/nix/store/0123456789abcdfghijklmnpqrsvwxyz-linux-rt-6.6.7-rt18/bzImage", "6.6.7-rt18"],
    ["/nix/store/0123456789abcdfghijklmnpqrsvwxyz-my-custom-kernel/bzImage", null],
    [null, null],
  ])("%s → %s", (kernelPath, version) => {
    expect(kernelVersion(kernelPath)).toBe(version);
  });
});
