/**
 * How the safety net's watchdog is started outside the agent's own service on each platform
 * (agent/launchd.ts, agent/runner.ts): a launchd job of its own on macOS (nix-darwin, Home Manager),
 * a unit of the user's systemd for Home Manager on Linux. launchd is not on this machine: the property
 * list is read back with Python's plistlib (Apple's format), and the job's wrapper runs under sh with a
 * `launchctl` stand-in that records how it is called.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { LAUNCHD_WRAPPER_SCRIPT, launchdDomain, launchdJobRunning, launchdLabel, launchdPlist, launchdPlistPath } from "../../agent/launchd.ts";
import { JobHandle, systemdRunArgv } from "../../agent/runner.ts";
import { eventually } from "../support/wait.ts";

const spec = {
  name: "nixfleet-watchdog-cmd_abc",
  argv: ["/nix/store/aaaa-nodejs-24/bin/node", "/nix/store/bbbb-nixfleet-agent/lib/agent.js", "watchdog", "/var/lib/nixfleet-agent/safety-net/cmd_abc"],
  cwd: "/var/lib/nixfleet-agent",
  logFile: "/var/lib/nixfleet-agent/safety-net/cmd_abc/watchdog.log",
  exitFile: "/var/lib/nixfleet-agent/safety-net/cmd_abc/watchdog.exit",
  mode: "launchd" as const,
};

const python = spawnSync("python3", ["-c", "import plistlib"], { stdio: "ignore" }).status === 0;
// Skipped with this warning where python3 is missing: the plist's other facts are still checked below.
if (!python) console.warn("SKIPPED: python3 (plistlib) is not installed — the launchd property list is not read back with Apple's format");

const Plist = z.strictObject({
  Label: z.string(),
  ProgramArguments: z.array(z.string()),
  WorkingDirectory: z.string(),
  RunAtLoad: z.boolean(),
  KeepAlive: z.boolean(),
  AbandonProcessGroup: z.boolean(),
  StandardOutPath: z.string(),
  StandardErrorPath: z.string(),
  Nice: z.number().optional(),
  EnvironmentVariables: z.record(z.string(), z.string()).optional(),
});

function readPlist(text: string): z.infer<typeof Plist> {
  const read = spawnSync("python3", ["-c", "import plistlib, sys, json; print(json.dumps(plistlib.loads(sys.stdin.buffer.read())))"], { input: text, encoding: "utf8" });
  expect(read.status, read.stderr).toBe(0);
  return Plist.parse(JSON.parse(read.stdout));
}

describe("the watchdog as a launchd job (nix-darwin, Home Manager on macOS)", () => {
  it("loads into the system domain as root and the user's GUI domain otherwise, under a label of its own", () => {
    expect(launchdDomain(0)).toBe("system");
    expect(launchdDomain(501)).toBe("gui/501");
    expect(launchdLabel(spec)).toBe("org.nixfleet.nixfleet-watchdog-cmd_abc");
    expect(launchdPlistPath(spec)).toBe("/var/lib/nixfleet-agent/safety-net/cmd_abc/nixfleet-watchdog-cmd_abc.plist");
  });

  it.skipIf(!python)("is a property list that runs the watchdog once, never restarts it, and passes the environment in the file, not on a command line", () => {
    const env = { PATH: "/run/current-system/sw/bin", HOME: "/var/root", NIX_CONFIG: "access-tokens = github.com=ghp_secret & more", SECRET: "not passed" };
    const plist = readPlist(launchdPlist(spec, "system", env, 10));
    expect(plist).toMatchObject({
      Label: "org.nixfleet.nixfleet-watchdog-cmd_abc",
      WorkingDirectory: "/var/lib/nixfleet-agent",
      RunAtLoad: true,
      KeepAlive: false,
      AbandonProcessGroup: true,
      StandardOutPath: spec.logFile,
      StandardErrorPath: spec.logFile,
      Nice: 10,
      EnvironmentVariables: { PATH: "/run/current-system/sw/bin", HOME: "/var/root", NIX_CONFIG: "access-tokens = github.com=ghp_secret & more" },
    });
    expect(plist.ProgramArguments).toEqual([
      "/bin/sh",
      "-c",
      LAUNCHD_WRAPPER_SCRIPT,
      "nixfleet-job",
      spec.logFile,
      spec.exitFile,
      "system/org.nixfleet.nixfleet-watchdog-cmd_abc",
      ...spec.argv,
    ]);
    expect(readPlist(launchdPlist(spec, "gui/501", {}, 0))).not.toHaveProperty("Nice");
  });

  it("tells a running job from a loaded one that ended, by launchctl print's state", () => {
    expect(launchdJobRunning({ exitCode: 0, stdout: "system/org.nixfleet.x = {\n\tactive count = 1\n\tstate = running\n}" })).toBe(true);
    expect(launchdJobRunning({ exitCode: 0, stdout: "system/org.nixfleet.x = {\n\tstate = not running\n}" })).toBe(false);
    expect(launchdJobRunning({ exitCode: 113, stdout: "" })).toBe(false);
  });

  it("keeps its handle across agent processes", () => {
    expect(JobHandle.parse({ mode: "launchd", target: "gui/501/org.nixfleet.nixfleet-watchdog-cmd_abc" })).toEqual({ mode: "launchd", target: "gui/501/org.nixfleet.nixfleet-watchdog-cmd_abc" });
    expect(JobHandle.parse({ mode: "systemd-run", unit: "nixfleet-watchdog-cmd_abc", user: true })).toMatchObject({ user: true });
  });

  describe("its wrapper, run by sh", () => {
    let dir: string;
    beforeEach(async () => {
      dir = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-launchd-"));
    });
    afterEach(async () => {
      await fs.rm(dir, { recursive: true, force: true });
    });

    it("logs the watchdog's output, publishes its exit status, then unloads its own job", async () => {
      const calls = path.join(dir, "launchctl-calls");
      const bin = path.join(dir, "bin");
      await fs.mkdir(bin);
      await fs.writeFile(path.join(bin, "launchctl"), `#!/bin/sh\necho "$*" >>"${calls}"\n`, { mode: 0o755 });
      const log = path.join(dir, "watchdog.log");
      const exit = path.join(dir, "watchdog.exit");
      const ran = spawnSync("/bin/sh", ["-c", LAUNCHD_WRAPPER_SCRIPT, "nixfleet-job", log, exit, "system/org.nixfleet.w", "/bin/sh", "-c", "echo rolled back; exit 3"], {
        env: { PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}` },
        encoding: "utf8",
      });
      expect(ran.status).toBe(0);
      expect(await fs.readFile(log, "utf8")).toBe("rolled back\n");
      expect(await fs.readFile(exit, "utf8")).toBe("3\n");
      // The bootout runs a second later in the background, once the status is out.
      await eventually("the wrapper booted its job out", () => fs.access(calls).then(() => true, () => false));
      expect(await fs.readFile(calls, "utf8")).toBe("bootout system/org.nixfleet.w\n");
    });
  });
});

describe("the watchdog as a unit of the user's systemd (Home Manager on Linux)", () => {
  it("asks the user's systemd for the unit, with the same wrapper and environment by name", () => {
    const user = systemdRunArgv({ ...spec, mode: "systemd-run-user" }, { PATH: "/home/alice/.nix-profile/bin" }, 0, true);
    expect(user.slice(0, 4)).toEqual(["systemd-run", "--user", "--unit", "nixfleet-watchdog-cmd_abc"]);
    expect(user).toContain("--setenv=PATH");
    expect(user.slice(user.indexOf("--") + 1)).toEqual(["/bin/sh", "-c", expect.stringContaining('"$@" >>"$log"'), "nixfleet-job", spec.logFile, spec.exitFile, ...spec.argv]);
    expect(systemdRunArgv({ ...spec, mode: "systemd-run" }, {}, 0)).not.toContain("--user");
  });
});
