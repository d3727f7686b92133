/**
 * What differs between NixOS, nix-darwin and Home Manager, behind one
 * interface: one module per platform (nixos.ts, darwin.ts, home-manager.ts),
 * picked from the agent's config by `platformFor` (index.ts). Everything they
 * do to the host goes through the `HostRunner` they are handed, so tests
 * swap the host as they do for the rest of the agent.
 */
import type { AgentConfig } from "../../common/agent-config.ts";
import type { Platform, RebootStatus } from "../../common/protocol.ts";
import { known, unknown, type Known } from "../known.ts";
import type { HostRunner } from "../runner.ts";

export interface HostPlatform {
  readonly name: Platform;
  /** `<flakeDir>#<output>`: the flake output that is this host's whole system. */
  systemInstallable(flakeDir: string): string;
  /** The links that may point at the running system, most specific first. */
  runningSystemLinks(runner: HostRunner): string[];
  /** The files of `system` its boot loader copies to /boot (NixOS: kernel and initrd); none where nothing boots from /boot. */
  bootFiles(system: string): string[];
  /** Switches the host to the configuration in `flakeDir`. */
  switchArgv(flakeDir: string): string[];
  /** Goes back to the generation before the running one. */
  rollbackArgv(runner: HostRunner): Promise<string[]>;
  /**
   * After a verified switch: why the host's services are not healthy, or null
   * when none failed or there is nothing to check here. `say` narrates the check.
   */
  failedUnits(runner: HostRunner, say: (line: string) => void): Promise<string | null>;
  /**
   * Points the platform's profile at `storePath` and activates it: the safety net's way back to the
   * recorded previous system (never "one generation back"). Run by the watchdog, so it must not need
   * the new generation's files.
   */
  activateArgv(storePath: string): string[];
  /** Where the platform's generations are (agent/generations.ts reads them), or null when no profile is found. */
  generationSource(runner: HostRunner): Promise<GenerationSource | null>;
  /**
   * Rewrites the boot menu from the profile's generations, with `system` (the profile's current
   * generation) doing it; null where there is no boot menu (nix-darwin, Home Manager).
   */
  bootMenuArgv(system: string): string[] | null;
  /** The names of the units that are failed now, or null (said through `say`) where there is nothing to list. */
  listFailedUnits(runner: HostRunner, say: (line: string) => void): Promise<string[] | null>;
  /** The nixpkgs version the running system (`system`, its store path when known) was built from. */
  nixpkgsVersion(runner: HostRunner, system: string | null): Promise<Known<string>>;
  /** Makes the configuration in `flakeDir` the boot default without activating it; null where a system is only ever switched to. */
  bootArgv(flakeDir: string): string[] | null;
  /**
   * Makes `storePath`, already in the store, the boot default without activating it: the profile is set
   * to it and the boot menu written (substitute mode's `boot`); null where a system is only ever switched to.
   */
  bootSystemArgv(storePath: string): string[] | null;
  /** Reboots the machine; null where the agent does not own the machine (Home Manager). */
  rebootArgv(): string[] | null;
  /** This boot's id, which changes at every boot; null when it cannot be read. */
  bootId(runner: HostRunner): Promise<string | null>;
  /** The system the host booted (a reboot's verification compares it with the intended one). */
  bootedSystem(runner: HostRunner): Promise<Known<string>>;
  /** Whether the system that boots next needs a reboot to be wholly in use, or why that does not apply here. */
  rebootStatus(runner: HostRunner): Promise<Known<RebootStatus>>;
  /**
   * How the desired-system evaluation runs outside the agent's own process and memory limit, at a
   * low priority: `argv` runs the evaluation, `stopArgv` (when not null) ends it where killing `argv`
   * does not (a systemd unit goes on without the client that started it).
   */
  evaluationCommand(argv: readonly string[], limits: EvaluationLimits, runner: HostRunner): { argv: string[]; stopArgv: string[] | null };
}

export interface GenerationSource {
  /** The profile link (`…/system`): its generations are the `<name>-<N>-link` beside it. */
  profile: string;
  /** The file in a generation's store path whose first line labels it (`nixos-version`), or null. */
  labelFile: string | null;
  /** The link to the booted system, where there is one (NixOS `/run/booted-system`). */
  bootedLink: string | null;
}

export interface EvaluationLimits {
  /** A name for the run (a transient unit's name). */
  name: string;
  cwd: string;
  /** systemd's MemoryMax, where the platform can cap memory. */
  memoryMax: string | null;
  timeoutSeconds: number;
}

/** The lowest CPU priority: the evaluation is background work the host's services must not feel. */
export const EVALUATION_NICE = 19;

/** A child process of the agent at the lowest priority: where there is no unit of its own to put it in. */
export function nicedChild(argv: readonly string[]): { argv: string[]; stopArgv: null } {
  return { argv: ["nice", "-n", String(EVALUATION_NICE), ...argv], stopArgv: null };
}

export function flakeAttrOf(config: AgentConfig): string {
  return config.flakeAttr ?? config.hostName;
}

/** Linux's boot id (`config.bootIdFile`), or macOS's `kern.bootsessionuuid`, by the operating system the agent runs on. */
export async function readBootIdOf(config: AgentConfig, runner: HostRunner): Promise<string | null> {
  if (runner.hostOs() === "darwin") {
    const result = await runner.run(["sysctl", "-n", "kern.bootsessionuuid"]);
    const id = result.stdout.trim();
    return result.exitCode === 0 && id !== "" ? id.slice(0, 100) : null;
  }
  const bytes = await runner.readFile(config.bootIdFile).catch(() => null);
  const id = bytes === null ? "" : new TextDecoder().decode(bytes).trim();
  return id === "" ? null : id.slice(0, 100);
}

/** Where a link leads, or why it cannot be followed. */
export async function followLink(runner: HostRunner, link: string): Promise<Known<string>> {
  try {
    return known(await runner.realPath(link));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return unknown(code === "ENOENT" ? `${link} does not exist` : `cannot read ${link}: ${String(error)}`);
  }
}

/** The config's `currentSystemLink` names the one link to read, on every platform (tests, unusual hosts). */
export function runningSystemLinks(config: AgentConfig, platformLinks: () => string[]): string[] {
  return config.currentSystemLink !== undefined ? [config.currentSystemLink] : platformLinks();
}
