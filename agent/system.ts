/**
 * What "the running system" means per platform, and what the clone would build.
 *
 * - NixOS: `/run/current-system` → the toplevel `nixosConfigurations.<attr>.config.system.build.toplevel`.
 * - nix-darwin: `/run/current-system` as well → `darwinConfigurations.<attr>.system`.
 * - Home Manager: the profile `$XDG_STATE_HOME/nix/profiles/home-manager` (or the legacy
 *   `/nix/var/nix/profiles/per-user/$USER/home-manager`) → `homeConfigurations.<attr>.activationPackage`,
 *   which is exactly what that profile points to after `home-manager switch`.
 *
 * The link is followed to its final target, so a profile (`system` → `system-42-link` →
 * store path) and `/run/current-system` (→ store path) compare alike.
 */
import * as path from "node:path";
import type { AgentConfig } from "../common/agent-config.ts";
import type { Platform } from "../common/protocol.ts";
import { describeFailure, type HostRunner } from "./runner.ts";

export type Known<T> = { value: T; reason?: undefined } | { value: null; reason: string };

export const known = <T>(value: T): Known<T> => ({ value });
export const unknown = (reason: string): Known<never> => ({ value: null, reason: reason.slice(0, 500) });

/** The links that may hold the running system, most specific first. */
export function systemLinkCandidates(config: AgentConfig, runner: HostRunner): string[] {
  if (config.currentSystemLink !== undefined) return [config.currentSystemLink];
  if (config.platform !== "home-manager") return ["/run/current-system"];
  const home = runner.env("HOME");
  const stateHome = runner.env("XDG_STATE_HOME") ?? (home !== undefined ? path.join(home, ".local", "state") : undefined);
  const user = runner.env("USER");
  return [
    ...(stateHome !== undefined ? [path.join(stateHome, "nix", "profiles", "home-manager")] : []),
    ...(user !== undefined ? [`/nix/var/nix/profiles/per-user/${user}/home-manager`] : []),
  ];
}

/** Flakes are still "experimental" in Nix; a host that has not enabled them still works with the agent. */
export const NIX_FLAKE_FLAGS = ["--extra-experimental-features", "nix-command flakes"] as const;

/** The store path the running system link resolves to. */
export async function readCurrentSystem(config: AgentConfig, runner: HostRunner): Promise<Known<string>> {
  const candidates = systemLinkCandidates(config, runner);
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

export function flakeAttrOf(config: AgentConfig): string {
  return config.flakeAttr ?? config.hostName;
}

/** The flake output that is the whole system for this platform. */
export function systemOutput(platform: Platform, attr: string): string {
  switch (platform) {
    case "nixos":
      return `nixosConfigurations.${attr}.config.system.build.toplevel`;
    case "darwin":
      return `darwinConfigurations.${attr}.system`;
    case "home-manager":
      return `homeConfigurations.${attr}.activationPackage`;
  }
}

/**
 * The store path the clone's configuration evaluates to. `nix eval --raw …outPath`
 * works on Nix 2.8 (Debian's), which lacks `nix build --print-out-paths`; nothing is built.
 */
export async function evaluateSystem(
  config: AgentConfig,
  runner: HostRunner,
  cloneDir: string,
  signal?: AbortSignal,
): Promise<Known<string>> {
  const installable = `${cloneDir}#${systemOutput(config.platform, flakeAttrOf(config))}.outPath`;
  const result = await runner.run([config.tools.nix, ...NIX_FLAKE_FLAGS, "eval", "--raw", installable], { cwd: cloneDir, signal });
  const value = result.stdout.trim();
  if (result.exitCode === 0 && value.startsWith("/")) return known(value);
  return unknown(describeFailure("nix eval", result));
}
