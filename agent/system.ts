/**
 * The running system and what the clone would build, on any platform (the
 * links and the flake output are the platform's: see platforms/).
 *
 * The link is followed to its final target, so a profile (`system` → `system-42-link` →
 * store path) and `/run/current-system` (→ store path) compare alike.
 */
import { known, unknown, type Known } from "./known.ts";
import type { HostPlatform } from "./platforms/platform.ts";
import { describeFailure, type HostRunner } from "./runner.ts";

/** Flakes are still "experimental" in Nix; a host that has not enabled them still works with the agent. */
export const NIX_FLAKE_FLAGS = ["--extra-experimental-features", "nix-command flakes"] as const;

/** Node's names for the CPUs Nix builds for, as Nix's system types spell them. */
const NIX_ARCHES: Readonly<Record<string, string>> = { x64: "x86_64", arm64: "aarch64", ia32: "i686", riscv64: "riscv64" };

/**
 * The Nix system type the agent runs on (`x86_64-linux`, `aarch64-darwin`), from Node's OS and CPU: the
 * control plane hands this host's fleet build to the builder of that type. Undefined where Nix has no name
 * for the pair here.
 */
export function nixSystemOf(os: string, arch: string): string | undefined {
  const cpu = NIX_ARCHES[arch];
  return cpu !== undefined && (os === "linux" || os === "darwin") ? `${cpu}-${os}` : undefined;
}

/** The store path the running system link resolves to. */
export async function readCurrentSystem(platform: HostPlatform, runner: HostRunner): Promise<Known<string>> {
  const candidates = platform.runningSystemLinks(runner);
  const problems: string[] = [];
  for (const link of candidates) {
    try {
      return known(await runner.realPath(link));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      problems.push(code === "ENOENT" ? `${link} does not exist` : `cannot read ${link}: ${String(error)}`);
    }
  }
  if (problems.length === 0) return unknown("no running-system link to read (set currentSystemLink)");
  return unknown(problems.join("; "));
}

/**
 * The store path the clone's configuration evaluates to. `nix eval --raw …outPath`
 * works on Nix 2.8 (Debian's), which lacks `nix build --print-out-paths`; nothing is built.
 */
export async function evaluateSystem(
  nix: string,
  platform: HostPlatform,
  runner: HostRunner,
  cloneDir: string,
  signal?: AbortSignal,
): Promise<Known<string>> {
  const installable = `${platform.systemInstallable(cloneDir)}.outPath`;
  const result = await runner.run([nix, ...NIX_FLAKE_FLAGS, "eval", "--raw", installable], { cwd: cloneDir, signal });
  const value = result.stdout.trim();
  if (result.exitCode === 0 && value.startsWith("/")) return known(value);
  return unknown(describeFailure("nix eval", result));
}
