import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createNodeRunner, JOB_WRAPPER_SCRIPT, systemdRunArgv } from "../../agent/runner.ts";
import { processGone } from "./harness.ts";

let root: string;
beforeEach(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-runner-"));
});
afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const runner = () => createNodeRunner({ extraPath: [], killGraceMs: 1_000 });

async function until(probe: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("node runner", () => {
  it("streams output and returns the exit code", async () => {
    const seen: string[] = [];
    const result = await runner().run(["/bin/sh", "-c", "echo out; echo err >&2; exit 7"], { onOutput: (stream, data) => seen.push(`${stream}:${data}`) });
    expect(result).toMatchObject({ exitCode: 7, stdout: "out\n", stderr: "err\n", spawnError: null, aborted: false });
    expect(seen.sort()).toEqual(["stderr:err\n", "stdout:out\n"]);
  });

  it("reports a missing program instead of throwing", async () => {
    const result = await runner().run(["definitely-not-a-program-nixfleet"]);
    expect(result.spawnError).toBe("definitely-not-a-program-nixfleet: not found (is it installed and on PATH?)");
    expect(result.exitCode).toBeNull();
  });

  it("prepends extraPath to PATH", async () => {
    await fs.writeFile(path.join(root, "hello-nixfleet"), "#!/bin/sh\necho hi from extraPath\n", { mode: 0o755 });
    const result = await createNodeRunner({ extraPath: [root] }).run(["hello-nixfleet"]);
    expect(result.stdout).toBe("hi from extraPath\n");
  });

  it("aborting kills the whole process group, background children included", async () => {
    const pids = path.join(root, "pids");
    const controller = new AbortController();
    const running = runner().run(["/bin/sh", "-c", `sleep 300 & echo $! >> ${pids}; echo $$ >> ${pids}; sleep 300`], { signal: controller.signal });
    await until(async () => (await fs.readFile(pids, "utf8").catch(() => "")).split("\n").filter(Boolean).length === 2, "the pids");
    controller.abort();
    const result = await running;
    expect(result.aborted).toBe(true);
    for (const pid of (await fs.readFile(pids, "utf8")).split("\n").filter(Boolean).map(Number)) {
      await until(() => processGone(pid), `process ${pid} to end`);
    }
  });

  it("a detached job logs its output, writes its exit status, and can be found alive, then gone", async () => {
    const r = runner();
    const log = path.join(root, "job", "output.log");
    const exit = path.join(root, "job", "exit");
    const gate = path.join(root, "gate");
    const started = await r.startDetachedJob({
      name: "nixfleet-job-test",
      argv: ["/bin/sh", "-c", `echo starting; while [ ! -e ${gate} ]; do sleep 0.02; done; echo failing >&2; exit 4`],
      cwd: root,
      logFile: log,
      exitFile: exit,
      mode: "setsid",
    });
    if (!started.ok) throw new Error(started.error);
    expect(started.handle.mode).toBe("process-group");
    expect(await r.isJobAlive(started.handle)).toBe(true);
    await fs.writeFile(gate, "");
    await until(() => fs.access(exit).then(() => true, () => false), "the exit file");
    expect(await fs.readFile(exit, "utf8")).toBe("4\n");
    expect(await fs.readFile(log, "utf8")).toBe("starting\nfailing\n");
    await until(async () => !(await r.isJobAlive(started.handle)), "the job to be gone");
    expect(await r.stopJob(started.handle)).toBe(false);
  });

  it("stopping a detached job kills its group and leaves no exit status", async () => {
    const r = runner();
    const exit = path.join(root, "exit");
    const started = await r.startDetachedJob({
      name: "nixfleet-job-stop",
      argv: ["/bin/sh", "-c", "sleep 300 & sleep 300"],
      cwd: root,
      logFile: path.join(root, "log"),
      exitFile: exit,
      mode: "none",
    });
    if (!started.ok) throw new Error(started.error);
    expect(await r.stopJob(started.handle)).toBe(true);
    expect(await r.isJobAlive(started.handle)).toBe(false);
    await expect(fs.access(exit)).rejects.toThrow();
  });

  it("builds a systemd-run call that passes the environment by name (never a value on the command line) and the job wrapper", () => {
    const argv = systemdRunArgv(
      { name: "nixfleet-job-cmd_abc", argv: ["nixos-rebuild", "switch", "--flake", "/s/repo#web1"], cwd: "/s", logFile: "/s/jobs/x/output.log", exitFile: "/s/jobs/x/exit", mode: "systemd-run" },
      { PATH: "/run/current-system/sw/bin", NIX_PATH: "nixpkgs=/x", NIX_CONFIG: "access-tokens = github.com=ghp_secret", SECRET: "not passed" },
    );
    expect(argv.join(" ")).not.toContain("ghp_secret");
    expect(argv).toEqual([
      "systemd-run",
      "--unit",
      "nixfleet-job-cmd_abc",
      "--collect",
      "--quiet",
      "--service-type=exec",
      "--working-directory=/s",
      "--setenv=PATH",
      "--setenv=NIX_PATH",
      "--setenv=NIX_CONFIG",
      "--",
      "/bin/sh",
      "-c",
      JOB_WRAPPER_SCRIPT,
      "nixfleet-job",
      "/s/jobs/x/output.log",
      "/s/jobs/x/exit",
      "nixos-rebuild",
      "switch",
      "--flake",
      "/s/repo#web1",
    ]);
  });

  it("gives a systemd-run job the agent's own nice value, which a unit started by PID 1 would not inherit", () => {
    const spec = { name: "nixfleet-job-cmd_abc", argv: ["nixos-rebuild", "switch"], cwd: "/s", logFile: "/s/log", exitFile: "/s/exit", mode: "systemd-run" as const };
    const argv = systemdRunArgv(spec, {}, 10);
    expect(argv).toContain("--nice=10");
    expect(argv.indexOf("--nice=10")).toBeLessThan(argv.indexOf("--"));
    expect(systemdRunArgv(spec, {}, 0).some((arg) => arg.startsWith("--nice"))).toBe(false);
  });
});
