/**
 * One agent per platform (agent/platforms/), each switching twice and rolling
 * back through its own tool: what the runner is asked to start and run is
 * recorded, and each switch must land on the flake output of that platform
 * (the test fleet gives nixosConfigurations, darwinConfigurations and
 * homeConfigurations different store paths), or the agent's verification fails it.
 */
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import type { AgentConfigInput } from "../../common/agent-config.ts";
import type { HostRunner } from "../../agent/runner.ts";
import { nixSystem, type FleetRepo } from "../../tools/fleet-kit/fleet-repo.ts";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import { platformFor } from "../../agent/platforms/index.ts";
import { AGENT_BIN, createHarness, type Harness } from "./harness.ts";
import { isolatedAgentConfig } from "./isolated-host.ts";

interface Recorded {
  /** argv of every program the agent ran and waited for. */
  ran: string[][];
  /** argv of every detached job (switch, rollback) the agent started. */
  started: string[][];
}

let h: Harness | null = null;

afterEach(async () => {
  await h?.cleanup();
  expect(h?.plane.protocolErrors ?? []).toEqual([]);
  h = null;
});

/** A harness whose agent runs on `platform`, its host commands recorded. */
async function platformHarness(
  platform: AgentConfigInput["platform"],
  setup: (root: string) => Promise<{ config?: Partial<AgentConfigInput>; tools?: Partial<NonNullable<AgentConfigInput["tools"]>> }>,
): Promise<{ harness: Harness; recorded: Recorded }> {
  const recorded: Recorded = { ran: [], started: [] };
  const wrapRunner = (runner: HostRunner): HostRunner => ({
    ...runner,
    run: (argv, options) => {
      recorded.ran.push([...argv]);
      return runner.run(argv, options);
    },
    startDetachedJob: (spec) => {
      recorded.started.push([...spec.argv]);
      return runner.startDetachedJob(spec);
    },
  });
  // The host tools live beside the harness's own directory, created before it so their paths go in the config.
  const tools = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-platform-tools-"));
  const extra = await setup(tools);
  // No activateSystem stand-in: the safety net records the platform's own way back.
  const harness = await createHarness({ config: { platform, ...extra.config }, tools: { activateSystem: undefined, ...extra.tools }, wrapRunner });
  const cleanup = harness.cleanup;
  harness.cleanup = async () => {
    await cleanup();
    await fs.rm(tools, { recursive: true, force: true });
  };
  h = harness;
  await exposeDarwinAndHomeManagerOutputs(harness.fleet);
  return { harness, recorded };
}

/**
 * Adds nix-darwin and Home Manager outputs to the test fleet, built from the same
 * host files but with store paths of their own. A Home Manager generation's
 * `activate` points the profile at itself, as Home Manager's activation does.
 */
async function exposeDarwinAndHomeManagerOutputs(fleet: FleetRepo): Promise<void> {
  const flakeFile = path.join(fleet.work, "flake.nix");
  const flake = await fs.readFile(flakeFile, "utf8");
  const anchor = "      nixosConfigurations = ";
  expect(flake, "the test fleet's flake changed shape: adjust this test").toContain(anchor);
  const inherit = `      inherit (import ./platforms.nix { inherit hostNames; system = "${nixSystem()}"; }) darwinConfigurations homeConfigurations;\n`;
  await fleet.commit(
    { "flake.nix": flake.replace(anchor, inherit + anchor), "platforms.nix": PLATFORMS_NIX, "activate.sh": ACTIVATE_SH },
    "the systems as nix-darwin and Home Manager outputs too",
  );
}

const PLATFORMS_NIX = `{ hostNames, system }:
let
  hostFile = name: builtins.readFile (./hosts + "/\${name}.txt");
  forHosts = output: builtins.listToAttrs (map (name: { inherit name; value = output name; }) hostNames);
in {
  darwinConfigurations = forHosts (name: {
    system = builtins.derivation {
      name = "darwin-system-\${name}";
      inherit system;
      builder = "/bin/sh";
      content = hostFile name;
      args = [ "-c" "printf '%s' \\"$content\\" > $out" ];
    };
  });
  homeConfigurations = forHosts (name: {
    activationPackage = builtins.derivation {
      name = "home-manager-generation-\${name}";
      inherit system;
      builder = "/bin/sh";
      content = hostFile name;
      activate = builtins.readFile ./activate.sh;
      args = [ "-c" "/bin/mkdir $out && printf '%s' \\"$content\\" > $out/home && printf '%s' \\"$activate\\" > $out/activate && /bin/chmod +x $out/activate" ];
    };
  });
}
`;

const ACTIVATE_SH = `#!/bin/sh
profiles=$XDG_STATE_HOME/nix/profiles
me=$(cd "$(dirname "$0")" && pwd -P)
for link in "$profiles"/home-manager-*-link; do
  if [ "$(readlink -f "$link")" = "$me" ]; then
    ln -sfn "$(basename "$link")" "$profiles/home-manager"
    echo "activated $(basename "$link")"
    exit 0
  fi
done
echo "no generation in $profiles is $me" >&2
exit 1
`;

/** What darwin-rebuild does that the agent relies on: generations of a system profile, a current-system link, --rollback. */
const DARWIN_REBUILD_STUB = (state: string) => `#!/bin/sh
set -eu
state=${JSON.stringify(state)}
mkdir -p "$state/profiles"
generations() { ls "$state/profiles" | sed -n 's/^system-\\([0-9][0-9]*\\)-link$/\\1/p' | sort -n; }
activate() { ln -sfn "$(readlink "$state/profiles/system-$1-link")" "$state/current-system"; echo "$1" >"$state/generation"; echo "activated generation $1"; }
case "$1 \${2:-}" in
  "switch --flake")
    dir=\${3%%#*}; attr=\${3#*#}; last=$(generations | tail -n 1); next=$((\${last:-0} + 1))
    nix build --out-link "$state/profiles/system-$next-link" "$dir#darwinConfigurations.$attr.system"
    activate "$next" ;;
  "switch --rollback")
    now=$(cat "$state/generation"); prev=$(generations | awk -v n="$now" '$1 < n' | tail -n 1)
    activate "$prev" ;;
  *) echo "darwin-rebuild stub: unexpected arguments: $*" >&2; exit 2 ;;
esac
`;

/** What \`home-manager switch --flake\` does that the agent relies on: a new generation of the profile, activated. */
const HOME_MANAGER_STUB = `#!/bin/sh
set -eu
[ "$1 \${2:-}" = "switch --flake" ] || { echo "home-manager stub: unexpected arguments: $*" >&2; exit 2; }
profiles=$XDG_STATE_HOME/nix/profiles
mkdir -p "$profiles"
dir=\${3%%#*}; attr=\${3#*#}
last=$(ls "$profiles" | sed -n 's/^home-manager-\\([0-9][0-9]*\\)-link$/\\1/p' | sort -n | tail -n 1)
next=$((\${last:-0} + 1))
nix build --out-link "$profiles/home-manager-$next-link" "$dir#homeConfigurations.$attr.activationPackage"
exec "$profiles/home-manager-$next-link/activate"
`;

/** A systemctl whose `--failed` lists `failedUnits`, and the runtime directory that says systemd runs here. */
async function fakeSystemd(root: string, failedUnits: string): Promise<{ systemctl: string; systemdRuntimeDir: string }> {
  const systemdRuntimeDir = path.join(root, "run-systemd-system");
  await fs.mkdir(systemdRuntimeDir);
  const systemctl = path.join(root, "systemctl");
  await fs.writeFile(systemctl, `#!/bin/sh\nprintf '%s' ${JSON.stringify(failedUnits)}\n`, { mode: 0o755 });
  return { systemctl, systemdRuntimeDir };
}

const FAILED_NGINX = "nginx.service loaded failed failed nginx\n";

/** Switches twice (two commits) and rolls back; returns the two systems. */
async function switchTwiceAndRollBack(harness: Harness): Promise<{ first: string; second: string }> {
  await harness.startAgent();
  const first = await harness.run("pull-switch");
  expect(first.finished, first.finished.error ?? "").toMatchObject({ outcome: "succeeded" });
  await harness.fleet.setHost("web1", "web1 generation 2");
  const second = await harness.run("pull-switch");
  expect(second.finished, second.finished.error ?? "").toMatchObject({ outcome: "succeeded" });
  const systems = { first: String(first.finished.result.systemAfter), second: String(second.finished.result.systemAfter) };
  expect(systems.second).not.toBe(systems.first);
  const rollback = await harness.run("rollback");
  expect(rollback.finished, rollback.finished.error ?? "").toMatchObject({ outcome: "succeeded" });
  expect(rollback.finished.result).toEqual({ systemBefore: systems.second, systemAfter: systems.first });
  return systems;
}

const programs = (recorded: Recorded) => recorded.ran.map((argv) => argv[0]);

/** The safety net's watchdog, started before the second switch (the first had no previous system). */
const WATCHDOG = [process.execPath, AGENT_BIN, "watchdog", expect.stringMatching(/\/safety-net\/cmd_[^/]+$/)];

/** How the second switch's record says to go back: the platform's activation of the first system. */
async function recordedWayBack(harness: Harness): Promise<unknown> {
  const dirs = await fs.readdir(path.join(harness.stateDir, "safety-net"));
  expect(dirs).toHaveLength(1);
  const record = JSON.parse(await fs.readFile(path.join(harness.stateDir, "safety-net", dirs[0]!, "record.json"), "utf8")) as { rollbackArgv: unknown };
  return record.rollbackArgv;
}

describeWithNix("the agent on each platform", () => {
  it("NixOS: switches with nixos-rebuild switch --flake <clone>#<host> to the toplevel, checks systemd for failed units, rolls back with --rollback, and reads nixos-version", async () => {
    const { harness, recorded } = await platformHarness("nixos", async (root) => {
      const systemd = await fakeSystemd(root, "");
      return { config: { systemdRuntimeDir: systemd.systemdRuntimeDir }, tools: { systemctl: systemd.systemctl } };
    });
    const { first } = await switchTwiceAndRollBack(harness);
    const clone = path.join(harness.stateDir, "repo");
    const rebuild = harness.shim.nixosRebuild;
    expect(recorded.started).toEqual([
      [rebuild, "switch", "--flake", `${clone}#web1`],
      WATCHDOG,
      [rebuild, "switch", "--flake", `${clone}#web1`],
      [rebuild, "switch", "--rollback"],
    ]);
    expect(first).toMatch(/-nixos-system-web1$/);
    // nix-env --set of the system profile, then the first system's own switch-to-configuration.
    expect(await recordedWayBack(harness)).toEqual([
      "/bin/sh",
      "-c",
      expect.stringMatching(/--set "\$system"[\s\S]*exec "\$system\/bin\/switch-to-configuration" switch/),
      "nixfleet-activate",
      "/nix/var/nix/profiles/system",
      first,
    ]);
    const systemctl = String(harness.config.tools?.systemctl);
    // The first switch's check; the second's (armed) before and after the activation.
    expect(recorded.ran.filter((argv) => argv[0] === systemctl)).toEqual([
      [systemctl, "--failed", "--no-legend", "--plain", "--no-pager"],
      [systemctl, "--failed", "--no-legend", "--plain", "--no-pager"],
      [systemctl, "--failed", "--no-legend", "--plain", "--no-pager"],
    ]);
    expect(recorded.ran).toContainEqual(["nixos-version"]);
    expect(await harness.shim.currentSystem()).toBe(first);
  });

  it("nix-darwin: switches with darwin-rebuild switch --flake <clone>#<host> to darwinConfigurations.<host>.system, rolls back with --rollback, and asks neither systemd nor nixos-version", async () => {
    let state = "";
    const { harness, recorded } = await platformHarness("darwin", async (root) => {
      state = path.join(root, "darwin-state");
      const darwinRebuild = path.join(root, "darwin-rebuild");
      await fs.writeFile(darwinRebuild, DARWIN_REBUILD_STUB(state), { mode: 0o755 });
      const systemd = await fakeSystemd(root, FAILED_NGINX);
      return {
        config: { currentSystemLink: path.join(state, "current-system"), systemdRuntimeDir: systemd.systemdRuntimeDir },
        tools: { darwinRebuild, systemctl: systemd.systemctl },
      };
    });
    const { first } = await switchTwiceAndRollBack(harness);
    const clone = path.join(harness.stateDir, "repo");
    const darwinRebuild = String(harness.config.tools?.darwinRebuild);
    expect(recorded.started).toEqual([
      [darwinRebuild, "switch", "--flake", `${clone}#web1`],
      WATCHDOG,
      [darwinRebuild, "switch", "--flake", `${clone}#web1`],
      [darwinRebuild, "switch", "--rollback"],
    ]);
    expect(first).toMatch(/-darwin-system-web1$/);
    expect(await recordedWayBack(harness)).toEqual([
      "/bin/sh",
      "-c",
      expect.stringMatching(/--set "\$system"[\s\S]*exec "\$system\/activate"/),
      "nixfleet-activate",
      "/nix/var/nix/profiles/system",
      first,
    ]);
    expect(await fs.realpath(path.join(state, "current-system"))).toBe(first);
    expect(programs(recorded)).not.toContain(harness.config.tools?.systemctl);
    expect(programs(recorded)).not.toContain("nixos-version");
    const report = await harness.plane.waitFor(() => harness.plane.lastReport(), "a report");
    expect(report.platform).toBe("darwin");
    expect(report.nixpkgsVersion.reason).toMatch(/only on NixOS \(platform: darwin\)/);
  });

  it("Home Manager: switches with home-manager switch --flake <clone>#<host> to the activationPackage in the XDG profile, rolls back by activating the generation before, and asks neither systemd nor nixos-version", async () => {
    const { harness, recorded } = await platformHarness("home-manager", async (root) => {
      const homeManager = path.join(root, "home-manager");
      await fs.writeFile(homeManager, HOME_MANAGER_STUB, { mode: 0o755 });
      const systemd = await fakeSystemd(root, FAILED_NGINX);
      // No currentSystemLink: the platform finds the profile itself.
      return { config: { currentSystemLink: undefined, systemdRuntimeDir: systemd.systemdRuntimeDir }, tools: { homeManager, systemctl: systemd.systemctl } };
    });
    const { first } = await switchTwiceAndRollBack(harness);
    const clone = path.join(harness.stateDir, "repo");
    const homeManager = String(harness.config.tools?.homeManager);
    const profile = path.join(String(harness.env.XDG_STATE_HOME), "nix", "profiles", "home-manager");
    expect(recorded.started).toEqual([
      [homeManager, "switch", "--flake", `${clone}#web1`],
      WATCHDOG,
      [homeManager, "switch", "--flake", `${clone}#web1`],
      ["/bin/sh", "-c", expect.stringContaining("activate"), "nixfleet-rollback", profile],
    ]);
    expect(first).toMatch(/-home-manager-generation-web1$/);
    // A Home Manager generation's activate points the profile at itself.
    expect(await recordedWayBack(harness)).toEqual([`${first}/activate`]);
    expect(await fs.readlink(profile)).toBe("home-manager-1-link");
    expect(await fs.realpath(profile)).toBe(first);
    expect(programs(recorded)).not.toContain(harness.config.tools?.systemctl);
    expect(programs(recorded)).not.toContain("nixos-version");
    const report = await harness.plane.waitFor(() => harness.plane.lastReport(), "a report");
    expect(report.platform).toBe("home-manager");
  });
});

describe("a store path as the boot default (substitute mode's boot)", () => {
  it("NixOS sets the system profile to it with the system's own nix-env, then writes the boot menu with its switch-to-configuration boot, and stops when the profile cannot be set; nix-darwin and Home Manager have none", async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-boot-system-"));
    try {
      const log = path.join(root, "ran.log");
      // A toplevel whose nix-env and switch-to-configuration only say they ran, in order.
      const system = path.join(root, "system");
      const recorder = (name: string, exitCode = 0) => `#!/bin/sh\necho "${name} $*" >> ${JSON.stringify(log)}\nexit ${exitCode}\n`;
      await fs.mkdir(path.join(system, "sw", "bin"), { recursive: true });
      await fs.mkdir(path.join(system, "bin"));
      await fs.writeFile(path.join(system, "sw", "bin", "nix-env"), recorder("nix-env"), { mode: 0o755 });
      await fs.writeFile(path.join(system, "bin", "switch-to-configuration"), recorder("switch-to-configuration"), { mode: 0o755 });
      const profile = path.join(root, "profiles", "system");
      const argv = platformFor(isolatedAgentConfig(root, { systemProfileLink: profile })).bootSystemArgv(system);
      expect(argv?.slice(3)).toEqual(["nixfleet-boot", profile, system, `${system}/bin/switch-to-configuration`, "boot"]);
      await promisify(execFile)(argv![0]!, argv!.slice(1));
      expect((await fs.readFile(log, "utf8")).split("\n")).toEqual([`nix-env -p ${profile} --set ${system}`, "switch-to-configuration boot", ""]);

      await fs.rm(log);
      await fs.writeFile(path.join(system, "sw", "bin", "nix-env"), recorder("nix-env", 3), { mode: 0o755 });
      await expect(promisify(execFile)(argv![0]!, argv!.slice(1))).rejects.toMatchObject({ code: 3 });
      expect(await fs.readFile(log, "utf8")).toBe(`nix-env -p ${profile} --set ${system}\n`);

      for (const platform of ["darwin", "home-manager"] as const) {
        expect(platformFor(isolatedAgentConfig(root, { platform })).bootSystemArgv(system), platform).toBeNull();
      }
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
  });
});
