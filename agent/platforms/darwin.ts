/**
 * nix-darwin: the system is `darwinConfigurations.<attr>.system`,
 * `/run/current-system` points at the running one and `darwin-rebuild`
 * switches and rolls back.
 */
import type { AgentConfig } from "../../common/agent-config.ts";
import { unknown } from "../known.ts";
import { flakeAttrOf, followLink, nicedChild, readBootIdOf, runningSystemLinks, type HostPlatform } from "./platform.ts";

/** What darwin-rebuild does after building: set the profile, then the system's activation scripts. */
const DARWIN_ACTIVATE_SCRIPT = [
  'profile=$1; system=$2',
  'nixenv=$system/sw/bin/nix-env; [ -x "$nixenv" ] || nixenv=nix-env',
  '"$nixenv" -p "$profile" --set "$system" || exit $?',
  'if [ -x "$system/activate-user" ]; then "$system/activate-user" || exit $?; fi',
  'exec "$system/activate"',
].join("\n");

export function darwinPlatform(config: AgentConfig): HostPlatform {
  const attr = flakeAttrOf(config);
  return {
    name: "darwin",
    systemInstallable: (flakeDir) => `${flakeDir}#darwinConfigurations.${attr}.system`,
    runningSystemLinks: () => runningSystemLinks(config, () => ["/run/current-system"]),
    // macOS boots its own kernel: nothing goes to /boot.
    bootFiles: () => [],
    switchArgv: (flakeDir) => [config.tools.darwinRebuild, "switch", "--flake", `${flakeDir}#${attr}`],
    rollbackArgv: () => Promise.resolve([config.tools.darwinRebuild, "switch", "--rollback"]),
    activateArgv: (storePath) =>
      config.tools.activateSystem !== undefined
        ? [config.tools.activateSystem, storePath]
        : ["/bin/sh", "-c", DARWIN_ACTIVATE_SCRIPT, "nixfleet-activate", "/nix/var/nix/profiles/system", storePath],
    // nix-darwin's system profile; macOS boots no generation, so none is booted and there is no boot menu.
    generationSource: () => Promise.resolve({ profile: config.systemProfileLink, labelFile: "darwin-version", bootedLink: null }),
    bootMenuArgv: () => null,
    listFailedUnits: (_runner, say) => {
      say("launchd keeps no failed state to compare (nix-darwin): the failed-units check is skipped");
      return Promise.resolve(null);
    },
    // nix-darwin's services are launchd jobs, and launchd keeps no "failed" state to list the way
    // systemd does (a job that exits is restarted or stays unloaded): there is nothing to check.
    failedUnits: () => Promise.resolve(null),
    nixpkgsVersion: () => Promise.resolve(unknown(`the nixpkgs version is read with nixos-version, which exists only on NixOS (platform: darwin)`)),
    // darwin-rebuild has no `boot`: a nix-darwin system is activated when it is switched to.
    bootArgv: () => null,
    bootSystemArgv: () => null,
    rebootArgv: () => (config.tools.reboot !== undefined ? [config.tools.reboot] : ["shutdown", "-r", "now"]),
    bootId: (runner) => readBootIdOf(config, runner),
    // nix-darwin has no /run/booted-system: at boot its activation points /run/current-system at the system profile.
    bootedSystem: (runner) => followLink(runner, runningSystemLinks(config, () => ["/run/current-system"])[0] ?? "/run/current-system"),
    rebootStatus: () => Promise.resolve(unknown("not applicable: nix-darwin activates a new system without a reboot (macOS updates its own kernel)")),
    // launchd has no transient jobs with a memory cap: the evaluation is a niced child of the agent.
    evaluationCommand: (argv) => nicedChild(argv),
  };
}
