/**
 * Reboot needed (NixOS): the system that boots next — the system profile,
 * which both `nixos-rebuild switch` and `nixos-rebuild boot` move — against
 * the one the host booted, by the parts only a reboot brings into use. The
 * same comparison nixpkgs' `system.autoUpgrade` makes before it reboots
 * (`readlink /run/booted-system/{initrd,kernel,kernel-modules}`).
 */
import { BOOT_PARTS, type BootPart, type RebootStatus } from "../common/protocol.ts";
import { known, unknown, type Known } from "./known.ts";
import type { HostRunner } from "./runner.ts";

export interface RebootLinks {
  /** The system the host booted (`/run/booted-system`). */
  booted: string;
  /** The profile the boot loader starts next (`/nix/var/nix/profiles/system`). */
  next: string;
}

export async function readRebootStatus(runner: HostRunner, links: RebootLinks): Promise<Known<RebootStatus>> {
  const [booted, next] = await Promise.all([systemPath(runner, links.booted), systemPath(runner, links.next)]);
  if (booted.value === null) return booted;
  if (next.value === null) return next;
  const [bootedParts, nextParts] = await Promise.all([bootParts(runner, booted.value), bootParts(runner, next.value)]);
  const changed = BOOT_PARTS.filter((part) => bootedParts[part] !== nextParts[part]);
  const kernel = changed.includes("kernel")
    ? { booted: kernelVersion(bootedParts.kernel), next: kernelVersion(nextParts.kernel) }
    : null;
  return known({ needed: changed.length > 0, changed, kernel });
}

async function systemPath(runner: HostRunner, link: string): Promise<Known<string>> {
  try {
    return known(await runner.realPath(link));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return unknown(code === "ENOENT" ? `${link} does not exist` : `cannot read ${link}: ${String(error)}`);
  }
}

/** Where each part's link leads; a part the system lacks (a container has no kernel) is null on both sides alike. */
async function bootParts(runner: HostRunner, system: string): Promise<Record<BootPart, string | null>> {
  const targets = await Promise.all(BOOT_PARTS.map((part) => runner.realPath(`${system}/${part}`).catch(() => null)));
  return { kernel: targets[0] ?? null, initrd: targets[1] ?? null, "kernel-modules": targets[2] ?? null };
}

/** `/nix/store/<hash>-linux-6.6.8/bzImage` → "6.6.8"; null when the store path does not name a Linux version. */
export function kernelVersion(kernelPath: string | null): string | null {
  if (kernelPath === null) return null;
  const match = /\/[0-9a-z]{32}-linux(?:-[a-z][a-z0-9_]*)*-(\d+\.\d+[^/]*)\//.exec(kernelPath);
  return match?.[1]?.slice(0, 100) ?? null;
}
