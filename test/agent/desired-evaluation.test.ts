// How each platform runs the desired-system evaluation, and how its output is read: pure parts, no host.
import * as os from "node:os";
import { describe, expect, it } from "vitest";
import { parseDryRun, nixError } from "../../agent/desired-evaluation.ts";
import { platformFor } from "../../agent/platforms/index.ts";
import type { EvaluationLimits } from "../../agent/platforms/platform.ts";
import { isolatedAgentConfig, toolLessRunner } from "./isolated-host.ts";

const root = os.tmpdir();
const limits: EvaluationLimits = { name: "nixfleet-desired-abc", cwd: "/var/lib/nixfleet-agent/desired/work/abc/src", memoryMax: "2G", timeoutSeconds: 1800 };
const argv = ["/nix/store/x-nix/bin/nix", "eval", "--json", "/w#nixosConfigurations.h1.config.system.build.toplevel"];

describe("where the evaluation runs", () => {
  it("NixOS with systemd-run: a transient unit with its memory cap, the lowest CPU and IO weights, nice 19 and a runtime limit, stopped by name", () => {
    const config = isolatedAgentConfig(root, { tools: { detach: "systemd-run", systemctl: "/run/current-system/sw/bin/systemctl" } });
    const runner = { ...toolLessRunner(root), env: (name: string) => ({ PATH: "/bin", NIX_REMOTE: "daemon" })[name] };
    const command = platformFor(config).evaluationCommand(argv, limits, runner);
    expect(command.argv).toEqual([
      "systemd-run",
      "--unit",
      "nixfleet-desired-abc",
      "--collect",
      "--wait",
      "--pipe",
      "--service-type=exec",
      "--nice=19",
      "--property=CPUWeight=1",
      "--property=IOWeight=1",
      "--property=MemoryMax=2G",
      "--property=RuntimeMaxSec=1800",
      `--working-directory=${limits.cwd}`,
      // Names only: systemd-run copies the values from its own environment, so none is on a command line.
      "--setenv=PATH",
      "--setenv=NIX_REMOTE",
      "--",
      ...argv,
    ]);
    expect(command.stopArgv).toEqual(["/run/current-system/sw/bin/systemctl", "stop", "nixfleet-desired-abc"]);
    expect(platformFor(config).evaluationCommand(argv, { ...limits, memoryMax: null }, runner).argv.some((a) => a.includes("MemoryMax"))).toBe(false);
  });

  it("a niced child of the agent on nix-darwin, Home Manager, and NixOS without systemd-run", () => {
    for (const [platform, detach] of [["darwin", "setsid"], ["home-manager", "setsid"], ["nixos", "setsid"]] as const) {
      const config = isolatedAgentConfig(root, { platform, tools: { detach } });
      expect(platformFor(config).evaluationCommand(argv, limits, toolLessRunner(root)), platform).toEqual({
        argv: ["nice", "-n", "19", ...argv],
        stopArgv: null,
      });
    }
  });
});

describe("reading nix's answers", () => {
  it.each([
    ["nothing to do", "", { toBuild: 0, toFetch: 0, downloadBytes: 0 }],
    ["one derivation", "this derivation will be built:\n  /nix/store/aaa-nixos-system-h1.drv\n", { toBuild: 1, toFetch: 0, downloadBytes: 0 }],
    [
      "several of each",
      "these 2 derivations will be built:\n  /nix/store/a.drv\n  /nix/store/b.drv\nthese 3 paths will be fetched (1.20 MiB download, 5.00 MiB unpacked):\n  /nix/store/c\n  /nix/store/d\n  /nix/store/e\n",
      { toBuild: 2, toFetch: 3, downloadBytes: 1_258_291 },
    ],
    ["one path to fetch", "this path will be fetched (0.01 MiB download, 0.02 MiB unpacked):\n  /nix/store/f\n", { toBuild: 0, toFetch: 1, downloadBytes: 10_486 }],
    ["warnings around the lists", "warning: Git tree is dirty\nthis derivation will be built:\n  /nix/store/a.drv\nwarning: later\n", { toBuild: 1, toFetch: 0, downloadBytes: 0 }],
    ["a fetch header without its sizes", "these 2 paths will be fetched:\n  /nix/store/c\n  /nix/store/d\n", { toBuild: 0, toFetch: 2, downloadBytes: null }],
  ])("counts a dry run's lists: %s", (_name, stderr, expected) => {
    expect(parseDryRun(stderr)).toEqual(expected);
  });

  // Nix 2.8.0's own words (nix build --dry-run into an empty store, a file:// cache as its substituter), captured on this machine.
  it.each([
    [
      "everything in the cache",
      "these 3 paths will be fetched (4.29 MiB download, 4.29 MiB unpacked):\n  /nix/store/cfbnjf2vxv12by7701dcsxr9r6aw5a8f-dry-top-7f3\n  /nix/store/k55yn736xif0rs9xqh8gilfwf111zsxm-dry-a-7f3\n  /nix/store/z1nziwjbdihm2rmhqsp4vl3dp121h7fi-dry-b-7f3\n",
      { toBuild: 0, toFetch: 3, downloadBytes: 4_498_391 },
    ],
    ["one path in the cache", "this path will be fetched (1.43 MiB download, 1.43 MiB unpacked):\n  /nix/store/z1nziwjbdihm2rmhqsp4vl3dp121h7fi-dry-b-7f3\n", { toBuild: 0, toFetch: 1, downloadBytes: 1_499_464 }],
    [
      "one derivation to build, its dependencies in the cache",
      "this derivation will be built:\n  /nix/store/n497ssxg6zynkfalqgszmxx5jrzcdc02-dry-built-7f3.drv\nthese 3 paths will be fetched (4.29 MiB download, 4.29 MiB unpacked):\n  /nix/store/cfbnjf2vxv12by7701dcsxr9r6aw5a8f-dry-top-7f3\n  /nix/store/k55yn736xif0rs9xqh8gilfwf111zsxm-dry-a-7f3\n  /nix/store/z1nziwjbdihm2rmhqsp4vl3dp121h7fi-dry-b-7f3\n",
      { toBuild: 1, toFetch: 3, downloadBytes: 4_498_391 },
    ],
    [
      "nothing in any cache",
      "these 3 derivations will be built:\n  /nix/store/nc8rn0lxshx7gfgzhmxfv9bjvhjc39jz-dry-a-7f3.drv\n  /nix/store/z90mlxj32cxyy5szn77x55risy1flq4h-dry-b-7f3.drv\n  /nix/store/wczwaz0n1k2y5zpa32j4gx9jrsa41n7h-dry-top-7f3.drv\n",
      { toBuild: 3, toFetch: 0, downloadBytes: 0 },
    ],
  ])("reads Nix 2.8's dry run, download size in bytes: %s", (_name, stderr, expected) => {
    expect(parseDryRun(stderr)).toEqual(expected);
  });

  it("takes nix's error line whole, past warnings and ignored errors, with the worktree's throwaway path put as '.'", () => {
    const work = "/var/lib/nixfleet-agent/desired/work/0a1b2c/src";
    const stderr = [
      `warning: Git tree '${work}' is dirty`,
      "error (ignored): error: SQLite database is busy",
      `\u001b[31;1merror:\u001b[0m flake 'git+file://${work}' does not provide attribute 'nixosConfigurations.h1.config.system.build.toplevel'`,
      "(use '--show-trace' to show detailed location information)",
    ].join("\n");
    expect(nixError(stderr, work)).toBe("flake '.' does not provide attribute 'nixosConfigurations.h1.config.system.build.toplevel'");
    expect(nixError("", work)).toBeNull();
  });
});
