/**
 * NixOS: the system is `nixosConfigurations.<attr>.config.system.build.toplevel`,
 * `/run/current-system` points at the running one, `nixos-rebuild` switches and
 * rolls back, systemd says which units failed and `nixos-version` names nixpkgs.
 */
import type { AgentConfig } from "../../common/agent-config.ts";
import { plural } from "../../common/text.ts";
import { known, readCommandLine, type Known } from "../known.ts";
import { readRebootStatus } from "../reboot.ts";
import { describeFailure, SYSTEMD_RUN_PASSED_ENV, type HostRunner } from "../runner.ts";
import { EVALUATION_NICE, flakeAttrOf, followLink, nicedChild, readBootIdOf, runningSystemLinks, type EvaluationLimits, type HostPlatform } from "./platform.ts";

export function nixosPlatform(config: AgentConfig): HostPlatform {
  const attr = flakeAttrOf(config);
  const bootMenu = (system: string) =>
    config.tools.installBootMenu !== undefined ? [config.tools.installBootMenu, system] : [`${system}/bin/switch-to-configuration`, "boot"];
  return {
    name: "nixos",
    systemInstallable: (flakeDir) => `${flakeDir}#nixosConfigurations.${attr}.config.system.build.toplevel`,
    runningSystemLinks: () => runningSystemLinks(config, () => ["/run/current-system"]),
    bootFiles: (system) => [`${system}/kernel`, `${system}/initrd`],
    switchArgv: (flakeDir) => [config.tools.nixosRebuild, "switch", "--flake", `${flakeDir}#${attr}`],
    rollbackArgv: () => Promise.resolve([config.tools.nixosRebuild, "switch", "--rollback"]),
    activateArgv: (storePath) =>
      config.tools.activateSystem !== undefined
        ? [config.tools.activateSystem, storePath]
        : ["/bin/sh", "-c", NIXOS_ACTIVATE_SCRIPT, "nixfleet-activate", config.systemProfileLink, storePath],
    generationSource: () => Promise.resolve({ profile: config.systemProfileLink, labelFile: "nixos-version", bootedLink: config.bootedSystemLink }),
    bootMenuArgv: bootMenu,
    failedUnits: (runner, say) => failedSystemdUnits(config, runner, say),
    listFailedUnits: (runner, say) => listFailedSystemdUnits(config, runner, say),
    nixpkgsVersion: (runner, system) => readNixosVersion(runner, system),
    bootArgv: (flakeDir) => [config.tools.nixosRebuild, "boot", "--flake", `${flakeDir}#${attr}`],
    bootSystemArgv: (storePath) => ["/bin/sh", "-c", NIXOS_BOOT_SCRIPT, "nixfleet-boot", config.systemProfileLink, storePath, ...bootMenu(storePath)],
    rebootArgv: () => (config.tools.reboot !== undefined ? [config.tools.reboot] : [config.tools.systemctl, "reboot"]),
    bootId: (runner) => readBootIdOf(config, runner),
    bootedSystem: (runner) => followLink(runner, config.bootedSystemLink),
    rebootStatus: (runner) => readRebootStatus(runner, { booted: config.bootedSystemLink, next: config.systemProfileLink }),
    // Switches run in units of their own exactly when systemd-run is the detach tool (the module's
    // setting); elsewhere (a NixOS container without systemd, tests) the evaluation is a niced child.
    evaluationCommand: (argv, limits, runner) =>
      config.tools.detach === "systemd-run" ? evaluationUnit(config, argv, limits, runner) : nicedChild(argv),
  };
}

/**
 * The running system says its version in its `nixos-version` file (the label its generation shows,
 * without the code name the command adds): read without starting a process. A system without the
 * file (not a NixOS toplevel) is asked with the command.
 */
async function readNixosVersion(runner: HostRunner, system: string | null): Promise<Known<string>> {
  if (system !== null) {
    const bytes = await runner.readFile(`${system}/nixos-version`).catch(() => null);
    const line = bytes === null ? "" : (new TextDecoder().decode(bytes).split("\n")[0]?.trim() ?? "");
    if (line !== "") return known(line.slice(0, 100));
  }
  return readCommandLine(runner, ["nixos-version"], "nixos-version");
}

/**
 * A transient unit outside the agent's own (capped at 256M, while a NixOS evaluation takes 1–2 GiB),
 * with its own memory cap, the lowest CPU and IO weights, and a runtime limit systemd enforces even
 * if the agent is gone. `--wait --pipe` hand its output and exit status back to the agent; without
 * `--quiet`, systemd-run says when the unit ended on its memory cap or its deadline.
 */
export function evaluationUnit(
  config: AgentConfig,
  argv: readonly string[],
  limits: EvaluationLimits,
  runner: Pick<HostRunner, "env">,
): { argv: string[]; stopArgv: string[] } {
  // `--setenv=NAME` copies the value from systemd-run's environment, so values (NIX_CONFIG may hold
  // access tokens) never appear on a command line.
  const passed = SYSTEMD_RUN_PASSED_ENV.filter((name) => runner.env(name) !== undefined);
  return {
    argv: [
      "systemd-run",
      "--unit",
      limits.name,
      "--collect",
      "--wait",
      "--pipe",
      "--service-type=exec",
      `--nice=${EVALUATION_NICE}`,
      "--property=CPUWeight=1",
      "--property=IOWeight=1",
      ...(limits.memoryMax !== null ? [`--property=MemoryMax=${limits.memoryMax}`] : []),
      `--property=RuntimeMaxSec=${limits.timeoutSeconds}`,
      `--working-directory=${limits.cwd}`,
      ...passed.map((name) => `--setenv=${name}`),
      "--",
      ...argv,
    ],
    stopArgv: [config.tools.systemctl, "stop", limits.name],
  };
}

/**
 * What deploy-rs does to activate a profile: `nix-env --set`, then the system's own
 * switch-to-configuration. nix-env is taken from the system being activated, so a new generation
 * that lost or broke it cannot stop the way back.
 */
const NIXOS_ACTIVATE_SCRIPT = [
  'profile=$1; system=$2',
  'nixenv=$system/sw/bin/nix-env; [ -x "$nixenv" ] || nixenv=nix-env',
  'echo "setting $profile to $system"',
  '"$nixenv" -p "$profile" --set "$system" || exit $?',
  'exec "$system/bin/switch-to-configuration" switch',
].join("\n");

/** What `nixos-rebuild boot` does once the system is built: the profile set to it, then the boot menu written by the command that follows. */
const NIXOS_BOOT_SCRIPT = [
  'profile=$1; system=$2; shift 2',
  'nixenv=$system/sw/bin/nix-env; [ -x "$nixenv" ] || nixenv=nix-env',
  'echo "setting $profile to $system"',
  '"$nixenv" -p "$profile" --set "$system" || exit $?',
  'exec "$@"',
].join("\n");

/** A switch that left systemd units failed is not a good switch (`systemctl --failed`; see docs/rollouts.md "Gates"). */
async function failedSystemdUnits(config: AgentConfig, runner: HostRunner, say: (line: string) => void): Promise<string | null> {
  if (!config.checkFailedUnits) return null;
  const failedNames = await listFailedSystemdUnits(config, runner, say).catch((error: unknown) => String(error));
  if (typeof failedNames === "string") return `switch succeeded, but the failed systemd units could not be listed: ${failedNames}`;
  if (failedNames === null) return null;
  if (failedNames.length === 0) {
    say("no failed systemd units");
    return null;
  }
  return `switch succeeded, but ${plural(failedNames.length, "systemd unit")} failed: ${failedNames.slice(0, 10).join(", ")}`;
}

/** `systemctl --failed`'s unit names; null where systemd is not running; throws when systemctl fails. */
async function listFailedSystemdUnits(config: AgentConfig, runner: HostRunner, say: (line: string) => void): Promise<string[] | null> {
  try {
    await runner.listDirectory(config.systemdRuntimeDir);
  } catch {
    say(`systemd is not running here (no ${config.systemdRuntimeDir}): the failed-units check is skipped`);
    return null;
  }
  say("checking for failed systemd units…");
  const listed = await runner.run([config.tools.systemctl, "--failed", "--no-legend", "--plain", "--no-pager"]);
  if (listed.exitCode !== 0) throw new Error(describeFailure("systemctl --failed", listed));
  return listed.stdout
    .split("\n")
    .map((line) => line.trim().split(/\s+/)[0] ?? "")
    .filter((name) => name !== "");
}
