import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import { reportFingerprint } from "../../agent/report.ts";
import { createHarness, type Harness } from "./harness.ts";

let h: Harness;

describeWithNix("switch, pull-switch and rollback with real nix", () => {
  beforeEach(async () => {
    h = await createHarness();
  });

  afterEach(async () => {
    await h.cleanup();
    expect(h.plane.protocolErrors).toEqual([]);
  });

  it("switches to what the clone builds and verifies the running-system link", async () => {
    await h.startAgent();
    await h.run("pull");
    const { id, finished } = await h.run("switch");
    const built = await h.fleet.systemPath("web1");
    expect(finished).toMatchObject({ outcome: "succeeded", exitCode: 0, error: null });
    expect(finished.result).toEqual({ systemBefore: null, systemAfter: built });
    expect(await h.shim.currentSystem()).toBe(built);
    // The system's first line is the host's file; the rest are the packages it depends on (fleet-repo.ts).
    expect((await fs.readFile(built, "utf8")).split("\n")[0]).toBe("web1 generation 1");
    expect(h.plane.output(id)).toContain("activated generation 1");
    expect(h.plane.events(id)[0]?.type).toBe("started");

    const head = await h.fleet.head();
    const afterSwitch = {
      current: { value: built },
      desired: { value: built },
      builtFromCommit: head,
      reboot: { value: null, reason: `${h.shim.bootedSystemLink} does not exist` },
    };
    // The report that travels with the end was read while the result was verified: the host after the switch, with
    // what the verification recorded (the built-from commit).
    expect(finished.report?.report.system).toEqual(afterSwitch);
    expect(finished.report?.report.repo).toEqual({ commit: { value: head }, branch: { value: "main" }, dirty: false });
    // Sent with the end, that report is not sent again: the next poll (a held one ends within 2 s) does not repeat it.
    const afterEnd = await h.plane.waitForPoll((poll) => poll.at > Date.parse(finished.at), "a poll after the end");
    expect(afterEnd.request.report === undefined ? null : reportFingerprint(afterEnd.request.report)).not.toBe(reportFingerprint(finished.report!.report));
    const report = await h.plane.waitFor(
      () => (h.plane.lastReport()?.system.current.value === built ? h.plane.lastReport() : undefined),
      "a report with the new system",
    );
    expect(report.system).toEqual(afterSwitch);
  });

  it("evaluates what the clone builds once per switch, before it activates, and checks the link against that", async () => {
    await h.cleanup();
    // The running system at each `nix eval` the agent runs: an evaluation after the activation would see the new one.
    const runningAtEvaluation: Array<string | null> = [];
    h = await createHarness({
      wrapRunner: (runner) => ({
        ...runner,
        run: async (argv, options) => {
          if (argv.includes("eval")) runningAtEvaluation.push(await h.shim.currentSystem());
          return runner.run(argv, options);
        },
      }),
    });
    await h.startAgent();
    await h.run("pull");
    await h.run("switch");
    const first = await h.fleet.systemPath("web1");
    expect(runningAtEvaluation).toEqual([null]);

    await h.fleet.setHost("web1", "web1 generation 2");
    await h.run("pull");
    const { finished } = await h.run("switch");
    const second = await h.fleet.systemPath("web1");
    expect(second).not.toBe(first);
    expect(finished).toMatchObject({ outcome: "succeeded", error: null });
    expect(finished.result).toEqual({ systemBefore: first, systemAfter: second });
    expect(runningAtEvaluation).toEqual([null, first]);
    const report = await h.plane.waitFor(
      () => (h.plane.lastReport()?.system.current.value === second ? h.plane.lastReport() : undefined),
      "a report with the second system",
    );
    expect(report.system).toMatchObject({ current: { value: second }, desired: { value: second } });
  });

  it("sends a switch's result as soon as its job ends, not at the agent's next look at the job", async () => {
    await h.cleanup();
    const lookEveryMs = 120_000;
    h = await createHarness({ jobPollIntervalMs: lookEveryMs });
    await h.startAgent();
    await h.run("pull");
    const { finished } = await h.run("switch", { timeoutMs: lookEveryMs / 2 });
    expect(finished.outcome).toBe("succeeded");
    const activatedAt = (await fs.lstat(h.shim.currentSystemLink)).mtimeMs;
    expect(Date.parse(finished.at) - activatedAt).toBeLessThan(lookEveryMs / 4);
  });

  it("fails a switch whose build fails, with nix's error, and leaves the running system alone", async () => {
    await h.startAgent();
    await h.run("pull");
    await h.run("switch");
    const before = await h.shim.currentSystem();
    await h.fleet.setHost("web1", "fail: a broken configuration");
    await h.run("pull");

    const { id, finished } = await h.run("switch");
    expect(finished.outcome).toBe("failed");
    expect(finished.exitCode).toBe(1);
    expect(finished.error).toContain("switch exited with code 1");
    expect(finished.error).toContain("building the system of web1 failed on purpose");
    expect(h.plane.output(id)).toContain("failed on purpose: fail: a broken configuration");
    expect(finished.result).toEqual({ systemBefore: before, systemAfter: before });
    expect(await h.shim.currentSystem()).toBe(before);
  });

  it("fails a switch that exits 0 without changing the running system", async () => {
    await h.startAgent();
    await h.run("pull");
    await h.run("switch");
    const before = await h.shim.currentSystem();
    await h.fleet.setHost("web1", "web1 generation 2");
    await h.run("pull");
    await h.shim.setMode("no-flip");

    const { finished } = await h.run("switch");
    const wanted = await h.fleet.systemPath("web1");
    expect(finished.outcome).toBe("failed");
    expect(finished.exitCode).toBe(0);
    expect(finished.error).toBe(
      `switch exited 0 but ${h.shim.currentSystemLink} points to ${before}, not to the system the configuration builds (${wanted})`,
    );
    expect(finished.result).toEqual({ systemBefore: before, systemAfter: before });
  });

  it("fails a switch before any pull, saying what to do", async () => {
    await h.startAgent();
    const { finished } = await h.run("switch");
    expect(finished.outcome).toBe("failed");
    expect(finished.error).toBe("there is no clone of the repository yet: run pull (or pull-switch) first");
  });

  it("pull-switch pulls the new commit and switches to it", async () => {
    await h.startAgent();
    const { finished: first } = await h.run("pull-switch");
    const firstSystem = await h.shim.currentSystem();
    expect(first.outcome).toBe("succeeded");
    expect(first.result).toMatchObject({ commitBefore: null, commitAfter: await h.fleet.head(), systemBefore: null });

    const before = await h.fleet.head();
    const after = await h.fleet.setHost("web1", "web1 generation 2");
    const { finished } = await h.run("pull-switch");
    const built = await h.fleet.systemPath("web1");
    expect(finished.outcome).toBe("succeeded");
    expect(finished.result).toEqual({ commitBefore: before, commitAfter: after, systemBefore: firstSystem, systemAfter: built });
    expect(built).not.toBe(firstSystem);
    expect(await h.shim.currentSystem()).toBe(built);
  });

  it("pull-switch to an exact older commit lands on exactly that commit although origin moved on", async () => {
    await h.startAgent();
    await h.run("pull-switch");
    const wanted = await h.fleet.setHost("web1", "web1 generation 2");
    const wantedSystem = await h.fleet.systemPath("web1");
    const newer = await h.fleet.setHost("web1", "web1 generation 3");
    expect(await h.fleet.head()).toBe(newer);

    const { finished } = await h.run("pull-switch", { commit: wanted });
    expect(finished.outcome).toBe("succeeded");
    expect(finished.result).toMatchObject({ commitAfter: wanted, systemAfter: wantedSystem });
    expect(await h.shim.currentSystem()).toBe(wantedSystem);
    // A periodic report collected between the link's move and the switch's record may say the new system without
    // its commit; the report after the switch says both.
    const report = await h.plane.waitFor(() => {
      const last = h.plane.lastReport();
      return last?.system.current.value === wantedSystem && last.system.builtFromCommit !== null ? last : undefined;
    }, "a report of the exact commit");
    expect(report.repo.commit).toEqual({ value: wanted });
    expect(report.system.builtFromCommit).toBe(wanted);
  });

  it("pull-switch to a commit that is not on the branch fails before switching", async () => {
    await h.startAgent();
    await h.run("pull-switch");
    const { finished } = await h.run("pull-switch", { commit: "0123456789abcdef0123456789abcdef01234567" });
    expect(finished.outcome).toBe("failed");
    expect(finished.error).toMatch(/^commit 0123456789abcdef0123456789abcdef01234567 is not on origin\/main/);
    expect(finished.result.systemAfter).toBeUndefined();
    expect(await h.shim.generations()).toEqual([1]);
  });

  it("pull-switch stops at a failed pull without switching", async () => {
    await h.startAgent();
    await h.run("pull-switch");
    await fs.rename(h.fleet.origin, `${h.fleet.origin}.gone`);
    const { finished } = await h.run("pull-switch");
    expect(finished.outcome).toBe("failed");
    expect(finished.error).toMatch(/^git fetch exited with code 128/);
    expect(finished.result.systemAfter).toBeUndefined();
    expect(await h.shim.generations()).toEqual([1]);
  });

  it("rollback goes back to the previous generation and the report says which commit built it", async () => {
    await h.startAgent();
    await h.run("pull-switch");
    const firstCommit = await h.fleet.head();
    const firstSystem = await h.shim.currentSystem();
    await h.fleet.setHost("web1", "web1 generation 2");
    await h.run("pull-switch");
    const secondSystem = await h.shim.currentSystem();

    const { finished } = await h.run("rollback");
    expect(finished.outcome).toBe("succeeded");
    expect(finished.result).toEqual({ systemBefore: secondSystem, systemAfter: firstSystem });
    expect(await h.shim.currentSystem()).toBe(firstSystem);
    const report = await h.plane.waitFor(
      () => (h.plane.lastReport()?.system.current.value === firstSystem ? h.plane.lastReport() : undefined),
      "a report after the rollback",
    );
    expect(report.system.builtFromCommit).toBe(firstCommit);
  });

  it("fails a rollback when there is no earlier generation", async () => {
    await h.startAgent();
    await h.run("pull-switch");
    const { finished } = await h.run("rollback");
    expect(finished.outcome).toBe("failed");
    expect(finished.error).toContain("no generation before generation 1 to roll back to");
  });

  it("fails a rollback that exits 0 without changing the running system", async () => {
    await h.startAgent();
    await h.run("pull-switch");
    await h.fleet.setHost("web1", "web1 generation 2");
    await h.run("pull-switch");
    await h.shim.setMode("no-flip");
    const { finished } = await h.run("rollback");
    expect(finished.outcome).toBe("failed");
    expect(finished.error).toMatch(/^rollback exited 0 but the running system is unchanged/);
  });

  it("runs the tests after a successful switch when autoTestAfterSwitch is on, and reports them", async () => {
    await h.startAgent({ autoTestAfterSwitch: true, tests: { commands: [{ name: "system-file", command: `test -s "$(readlink -f ${h.shim.currentSystemLink})"` }] } });
    const { finished } = await h.run("pull-switch");
    expect(finished.outcome).toBe("succeeded");
    expect(finished.result.tests).toBeUndefined();
    const system = await h.shim.currentSystem();
    const report = await h.plane.waitFor(() => {
      const last = h.plane.lastReport()?.tests.last;
      return last?.system === system ? h.plane.lastReport() : undefined;
    }, "a report with the automatic test run");
    expect(report.tests).toMatchObject({ configured: true, autoRunAfterSwitch: true });
    expect(report.tests.last?.results).toEqual([expect.objectContaining({ name: "system-file", passed: true, exitCode: 0 })]);
  });

  it("on NixOS, fails a switch that leaves systemd units failed, naming them; passes when none failed", async () => {
    await h.cleanup();
    const fake = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-systemd-"));
    const runtimeDir = path.join(fake, "run-systemd-system");
    await fs.mkdir(runtimeDir);
    const systemctl = path.join(fake, "systemctl");
    const failedList = path.join(fake, "failed");
    // Prints what `systemctl --failed --no-legend --plain` prints: one unit a line.
    await fs.writeFile(systemctl, `#!/bin/sh\ncat ${JSON.stringify(failedList)}\n`, { mode: 0o755 });
    await fs.writeFile(failedList, "nginx.service loaded failed failed nginx\npostgresql.service loaded failed failed PostgreSQL\n");
    h = await createHarness({ config: { systemdRuntimeDir: runtimeDir }, tools: { systemctl } });
    await h.startAgent();
    await h.run("pull");
    const first = await h.run("switch");
    expect(first.finished).toMatchObject({ outcome: "failed", exitCode: 0 });
    expect(first.finished.error).toBe("switch succeeded, but 2 systemd units failed: nginx.service, postgresql.service");

    await fs.writeFile(failedList, "");
    await h.fleet.setHost("web1", "web1 generation 2");
    await h.run("pull");
    const second = await h.run("switch");
    expect(second.finished).toMatchObject({ outcome: "succeeded" });
    // The second switch has a system to go back to: the safety net judges the units, those failed since the switch.
    expect(h.plane.output(second.id)).toContain("safety net: no unit failed since the switch");
    await fs.rm(fake, { recursive: true, force: true });
  });

  it("skips the failed-units check where systemd is not running", async () => {
    await h.startAgent();
    await h.run("pull");
    const { id, finished } = await h.run("switch");
    expect(finished).toMatchObject({ outcome: "succeeded" });
    expect(h.plane.output(id)).toContain("the failed-units check is skipped");
  });
});
