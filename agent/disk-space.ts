/**
 * Space checks before a switch (docs/hosts.md "Space checks"): the store's filesystem before anything
 * is built, and `/boot` — when it is its own filesystem — after the build, when the new kernel and
 * initrd are known, and before anything is activated. nixos-rebuild reports success with a full /boot
 * (nixpkgs #189966) and a full store fails a build halfway: a refused switch changes nothing instead.
 * The same readings go into the report's `disk`.
 */
import * as path from "node:path";
import type { AgentConfig } from "../common/agent-config.ts";
import type { DiskSpace } from "../common/protocol.ts";
import { formatBytes } from "../common/text.ts";
import type { HostPlatform } from "./platforms/platform.ts";
import { describeFailure, type HostRunner } from "./runner.ts";
import { NIX_FLAKE_FLAGS } from "./system.ts";

export interface DiskReport {
  store: DiskSpace;
  boot: DiskSpace | null;
}

type SpaceConfig = AgentConfig["spaceCheck"];

/** The report's `disk`; undefined when the store's filesystem cannot be read. */
export async function readDisk(config: AgentConfig, runner: HostRunner): Promise<DiskReport | undefined> {
  const space = config.spaceCheck;
  const store = await runner.filesystem(space.storeDir).catch(() => null);
  if (store === null) return undefined;
  const boot = await ownBootFilesystem(space, runner);
  return {
    store: { path: space.storeDir, freeBytes: store.freeBytes, totalBytes: store.totalBytes },
    boot: boot === null ? null : { path: space.bootDir, freeBytes: boot.freeBytes, totalBytes: boot.totalBytes },
  };
}

/** /boot's filesystem when it is not the root's (a separate ESP or boot partition); null otherwise or when there is no /boot. */
async function ownBootFilesystem(space: SpaceConfig, runner: HostRunner) {
  const [boot, root] = await Promise.all([runner.filesystem(space.bootDir).catch(() => null), runner.filesystem(space.rootDir).catch(() => null)]);
  return boot !== null && root !== null && boot.device !== root.device ? boot : null;
}

/** "not enough space on /boot: 38 MiB free, 64 MiB needed". */
export function notEnoughSpace(where: string, freeBytes: number, neededBytes: number): string {
  return `not enough space on ${where}: ${formatBytes(freeBytes)} free, ${formatBytes(neededBytes)} needed`;
}

/** Before anything is built: why the store's filesystem is too full for a switch, or null. */
export async function checkStoreSpace(config: AgentConfig, runner: HostRunner, say: (line: string) => void): Promise<string | null> {
  const space = config.spaceCheck;
  if (!space.enable) return null;
  const store = await runner.filesystem(space.storeDir).catch((error: unknown) => String(error));
  if (typeof store === "string") {
    say(`space check: cannot read the free space of ${space.storeDir} (${store}): not checked`);
    return null;
  }
  const where = `the Nix store (${space.storeDir})`;
  if (store.freeBytes < space.storeMinFree) return notEnoughSpace(where, store.freeBytes, space.storeMinFree);
  say(`space check: ${formatBytes(store.freeBytes)} free on ${where}, ${formatBytes(space.storeMinFree)} needed`);
  return null;
}

export interface BootCheckInput {
  config: AgentConfig;
  platform: HostPlatform;
  runner: HostRunner;
  cloneDir: string;
  /** The store path the configuration builds (evaluated before the switch); null when it did not evaluate. */
  system: string | null;
  /** `system` is in the store already (a substitute switch fetched it): nothing is built to measure it. */
  realised?: boolean;
  signal: AbortSignal;
  say(line: string): void;
  output(stream: "stdout" | "stderr", data: string): void;
}

/**
 * After the build, before the activation: why /boot is too full for the new generation's kernel and
 * initrd plus the margin, or null. Where /boot is its own filesystem the system is built here first
 * (the rebuild that follows finds it built), so the files' sizes are real, not guessed.
 */
export async function checkBootSpace(input: BootCheckInput): Promise<string | null> {
  const { config, platform, runner, say } = input;
  const space = config.spaceCheck;
  if (!space.enable || input.system === null) return null;
  const boot = await ownBootFilesystem(space, runner);
  if (boot === null) return null;
  const files = platform.bootFiles(input.system);
  if (files.length === 0) return null;
  if (input.realised !== true) {
    const argv = [config.tools.nix, ...NIX_FLAKE_FLAGS, "build", "--no-link", platform.systemInstallable(input.cloneDir)];
    say(`space check: ${space.bootDir} is its own filesystem; building the new system first to know its kernel and initrd`);
    say(`$ ${argv.join(" ")}`);
    const built = await runner.run(argv, { cwd: input.cloneDir, signal: input.signal, onOutput: input.output });
    if (built.aborted) return null;
    if (built.exitCode !== 0) return `the new system did not build, so nothing was activated: ${describeFailure("nix build", built)}`;
  }
  const needed = await bootBytesNeeded(runner, space.bootDir, files);
  const total = needed.bytes + space.bootMargin;
  // Read again: the build itself may have filled /boot's filesystem when it shares nothing else.
  const free = (await runner.filesystem(space.bootDir)).freeBytes;
  if (free < total) return notEnoughSpace(space.bootDir, free, total);
  say(
    `space check: ${formatBytes(free)} free on ${space.bootDir}, ${formatBytes(total)} needed ` +
      `(${needed.copied.length === 0 ? "its kernel and initrd are there already" : `${needed.copied.join(", ")} to copy`} + ${formatBytes(space.bootMargin)} margin)`,
  );
  return null;
}

/**
 * What the boot loader will copy to /boot: the new system's kernel and initrd, unless a file named
 * after their store path is there already (systemd-boot's `EFI/nixos/<hash>-linux-…-bzImage.efi`,
 * GRUB's `kernels/<hash>-…`). Sizes are the files' own; the boot loader's entries are small enough
 * for the margin.
 */
export async function bootBytesNeeded(runner: HostRunner, bootDir: string, files: readonly string[]): Promise<{ bytes: number; copied: string[] }> {
  const present = await namesUnder(runner, bootDir, 4, 5000);
  let bytes = 0;
  const copied: string[] = [];
  for (const file of files) {
    const real = await runner.realPath(file).catch(() => null);
    if (real === null) continue;
    const hash = /^\/nix\/store\/([0-9a-z]{32})-/.exec(real)?.[1];
    if (hash !== undefined && present.some((name) => name.startsWith(hash))) continue;
    bytes += await runner.fileSize(real);
    copied.push(path.basename(file));
  }
  return { bytes, copied };
}

/** File names under `dir`, at most `depth` levels down and `limit` names in all (an ESP is small). */
async function namesUnder(runner: HostRunner, dir: string, depth: number, limit: number): Promise<string[]> {
  const names: string[] = [];
  const queue: Array<{ dir: string; depth: number }> = [{ dir, depth }];
  for (let next = queue.shift(); next !== undefined && names.length < limit; next = queue.shift()) {
    const entries = await runner.listDirectory(next.dir).catch(() => []);
    for (const entry of entries) {
      names.push(entry.name);
      if (!entry.isFile && next.depth > 1) queue.push({ dir: path.join(next.dir, entry.name), depth: next.depth - 1 });
    }
  }
  return names;
}
