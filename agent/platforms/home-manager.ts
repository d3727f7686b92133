/**
 * Home Manager: the "system" is `homeConfigurations.<attr>.activationPackage`,
 * which is exactly what the profile `$XDG_STATE_HOME/nix/profiles/home-manager`
 * (or the legacy `/nix/var/nix/profiles/per-user/$USER/home-manager`) points to
 * after `home-manager switch`.
 */
import * as path from "node:path";
import type { AgentConfig } from "../../common/agent-config.ts";
import { unknown } from "../known.ts";
import type { HostRunner } from "../runner.ts";
import { flakeAttrOf, nicedChild, readBootIdOf, runningSystemLinks, type HostPlatform } from "./platform.ts";

/**
 * Home Manager has no rollback subcommand: its documented way back is to run
 * the previous generation's `activate`, which also points the profile at it.
 * The script finds the generation numbered just below the profile's current one.
 */
const HOME_MANAGER_ROLLBACK_SCRIPT = [
  'profile=$1; dir=$(dirname "$profile")',
  'current=$(readlink "$profile") || { echo "cannot read $profile" >&2; exit 1; }',
  'n=${current##*home-manager-}; n=${n%-link}',
  "prev=$(ls -1 \"$dir\" | sed -n 's/^home-manager-\\([0-9][0-9]*\\)-link$/\\1/p' | sort -n | awk -v n=\"$n\" '$1 < n' | tail -n 1)",
  '[ -n "$prev" ] || { echo "no Home Manager generation before $current" >&2; exit 1; }',
  'echo "activating $dir/home-manager-$prev-link"',
  'exec "$dir/home-manager-$prev-link/activate"',
].join("\n");

export function homeManagerPlatform(config: AgentConfig): HostPlatform {
  const attr = flakeAttrOf(config);
  const links = (runner: HostRunner) => runningSystemLinks(config, () => profileLinks(runner));
  const existingProfile = async (runner: HostRunner): Promise<string | null> => {
    for (const candidate of profileLinks(runner)) {
      if (await runner.realPath(candidate).then(() => true, () => false)) return candidate;
    }
    return null;
  };
  return {
    name: "home-manager",
    systemInstallable: (flakeDir) => `${flakeDir}#homeConfigurations.${attr}.activationPackage`,
    runningSystemLinks: links,
    // a user environment has no kernel: nothing goes to /boot.
    bootFiles: () => [],
    switchArgv: (flakeDir) => [config.tools.homeManager, "switch", "--flake", `${flakeDir}#${attr}`],
    async rollbackArgv(runner) {
      const candidates = links(runner);
      let profile = candidates[0] ?? "home-manager-profile-not-found";
      for (const candidate of candidates) {
        if (await runner.realPath(candidate).then(() => true, () => false)) {
          profile = candidate;
          break;
        }
      }
      return ["/bin/sh", "-c", HOME_MANAGER_ROLLBACK_SCRIPT, "nixfleet-rollback", profile];
    },
    // A generation's `activate` points the Home Manager profile at itself, then links the files.
    activateArgv: (storePath) =>
      config.tools.activateSystem !== undefined ? [config.tools.activateSystem, storePath] : [`${storePath}/activate`],
    // Home Manager's own profile; its generations carry no version file and nothing boots them.
    generationSource: async (runner) => {
      const profile = await existingProfile(runner);
      return profile === null ? null : { profile, labelFile: null, bootedLink: null };
    },
    bootMenuArgv: () => null,
    listFailedUnits: (_runner, say) => {
      say("a user's services are not the agent's to judge (Home Manager): the failed-units check is skipped");
      return Promise.resolve(null);
    },
    // The agent checks the system's units on NixOS only; a user's services are not its to judge.
    failedUnits: () => Promise.resolve(null),
    nixpkgsVersion: () => Promise.resolve(unknown(`the nixpkgs version is read with nixos-version, which exists only on NixOS (platform: home-manager)`)),
    // A user's environment is only ever switched to, and the machine is not the user agent's to reboot.
    bootArgv: () => null,
    bootSystemArgv: () => null,
    rebootArgv: () => null,
    bootId: (runner) => readBootIdOf(config, runner),
    bootedSystem: () => Promise.resolve(unknown("not applicable: Home Manager does not boot")),
    rebootStatus: () => Promise.resolve(unknown("not applicable: Home Manager manages a user's environment, never the kernel")),
    // A user's agent cannot count on a user systemd instance (nor on launchd caps): a niced child of the agent.
    evaluationCommand: (argv) => nicedChild(argv),
  };
}

/** Where the profile may be: under XDG state, then the legacy per-user profile. */
function profileLinks(runner: HostRunner): string[] {
  const home = runner.env("HOME");
  const stateHome = runner.env("XDG_STATE_HOME") ?? (home !== undefined ? path.join(home, ".local", "state") : undefined);
  const user = runner.env("USER");
  return [
    ...(stateHome !== undefined ? [path.join(stateHome, "nix", "profiles", "home-manager")] : []),
    ...(user !== undefined ? [`/nix/var/nix/profiles/per-user/${user}/home-manager`] : []),
  ];
}
