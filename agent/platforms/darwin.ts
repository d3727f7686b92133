/**
 * nix-darwin: the system is `darwinConfigurations.<attr>.system`,
 * `/run/current-system` points at the running one and `darwin-rebuild`
 * switches and rolls back.
 */
import type { AgentConfig } from "../../common/agent-config.ts";
import { unknown } from "../known.ts";
import { flakeAttrOf, nicedChild, runningSystemLinks, type HostPlatform } from "./platform.ts";

export function darwinPlatform(config: AgentConfig): HostPlatform {
  const attr = flakeAttrOf(config);
  return {
    name: "darwin",
    systemInstallable: (flakeDir) => `${flakeDir}#darwinConfigurations.${attr}.system`,
    runningSystemLinks: () => runningSystemLinks(config, () => ["/run/current-system"]),
    switchArgv: (flakeDir) => [config.tools.darwinRebuild, "switch", "--flake", `${flakeDir}#${attr}`],
    rollbackArgv: () => Promise.resolve([config.tools.darwinRebuild, "switch", "--rollback"]),
    // nix-darwin's services are launchd jobs, and launchd keeps no "failed" state to list the way
    // systemd does (a job that exits is restarted or stays unloaded): there is nothing to check.
    failedUnits: () => Promise.resolve(null),
    nixpkgsVersion: () => Promise.resolve(unknown(`the nixpkgs version is read with nixos-version, which exists only on NixOS (platform: darwin)`)),
    rebootStatus: () => Promise.resolve(unknown("not applicable: nix-darwin activates a new system without a reboot (macOS updates its own kernel)")),
    // launchd has no transient jobs with a memory cap: the evaluation is a niced child of the agent.
    evaluationCommand: (argv) => nicedChild(argv),
  };
}
