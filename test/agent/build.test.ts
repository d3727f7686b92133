import { execFile } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, expect, it } from "vitest";
import { BuildResult } from "../../common/protocol.ts";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import { createHarness, processGone, type Harness } from "./harness.ts";

const exec = promisify(execFile);
const KiB = 1024;
let h: Harness;

const clone = () => path.join(h.stateDir, "repo");
const git = async (dir: string, ...args: string[]) => (await exec("git", ["-C", dir, ...args], { env: h.env })).stdout.trim();
const buildOf = (result: unknown) => BuildResult.parse((result as { build?: unknown }).build);

/** The host as it runs before each build: cloned, switched, reported. */
async function runningHost(): Promise<{ commit: string; system: string }> {
  await h.startAgent();
  await h.run("pull-switch");
  const commit = await h.fleet.head();
  const system = await h.shim.currentSystem();
  if (system === null) throw new Error("the switch left no running system");
  return { commit, system };
}

/** Everything the build must leave alone. */
async function hostState() {
  return {
    head: await git(clone(), "rev-parse", "HEAD"),
    status: await git(clone(), "status", "--porcelain"),
    worktrees: await git(clone(), "worktree", "list", "--porcelain"),
    remoteHead: await git(clone(), "rev-parse", "refs/remotes/origin/main"),
    system: await h.shim.currentSystem(),
    generations: await h.shim.generations(),
  };
}

async function waitForFile(file: string): Promise<string> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const text = await fs.readFile(file, "utf8").catch(() => null);
    if (text !== null && text.trim() !== "") return text.trim();
    if (Date.now() > deadline) throw new Error(`${file} never appeared`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function waitGone(pid: number): Promise<boolean> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (await processGone(pid)) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

describeWithNix("build a commit without touching the host", () => {
  beforeEach(async () => {
    h = await createHarness();
  });

  afterEach(async () => {
    await h.cleanup();
    expect(h.plane.protocolErrors).toEqual([]);
  });

  it("builds the commit in its own worktree and reports the store path and the closure diff against the running system", async () => {
    const running = await runningHost();
    const before = await hostState();
    // The agent reports after the switch has finished: wait for that report, not the one before the switch.
    const reportBefore = await h.plane.waitFor(
      () => (h.plane.lastReport()?.system.current.value === running.system ? h.plane.lastReport() : undefined),
      "the report of the running system",
    );

    const target = await h.fleet.commit({ "packages/hello.txt": "1.1 40\n", "packages/extra.txt": "3.0 20\n" }, "hello 1.1, extra 3.0");
    const expected = await h.fleet.systemPath("web1");
    const { id, finished } = await h.run("build", { commit: target, timeoutMs: 60_000 });
    // Ask for a report now, so the one checked below is collected after the build.
    h.plane.wantReport = true;
    const pollsAtFinish = h.plane.polls.length;

    expect(finished).toMatchObject({ outcome: "succeeded", exitCode: 0, error: null });
    const build = buildOf(finished.result);
    expect(build).toMatchObject({ commit: target, tree: await git(h.fleet.work, "rev-parse", `${target}^{tree}`), storePath: expected, comparedWith: running.system });
    expect(build.durationMs).toBeGreaterThan(0);
    const entries = Object.fromEntries(build.closureDiff!.entries.map((entry) => [entry.name, entry]));
    expect(Object.keys(entries).sort()).toEqual(["extra", "hello"]);
    expect(entries.hello).toEqual({ name: "hello", old: ["1.0"], new: ["1.1"], sizeDelta: 28 * KiB });
    expect(entries.extra).toMatchObject({ old: [], new: ["3.0"] });
    // The total comes from the closure sizes (nix path-info -S), not from the rounded lines.
    const closureSize = async (p: string) =>
      (JSON.parse((await exec("nix", ["path-info", "-S", "--json", p], { env: h.env })).stdout) as Array<{ closureSize: number }>)[0]!.closureSize;
    expect(build.closureDiff!.totalSizeDelta).toBe((await closureSize(expected)) - (await closureSize(running.system)));
    expect(build.closureDiff!.totalSizeDelta).toBeGreaterThan(48 * KiB);
    expect(h.plane.output(id)).toContain("store diff-closures");

    // The clone, its reported commit and the running system are as they were.
    expect(await hostState()).toEqual(before);
    const report = (await h.plane.waitForPoll((poll) => poll.request.report !== undefined, "the report after the build", pollsAtFinish)).request.report;
    expect(report?.repo.commit).toEqual({ value: running.commit });
    expect(report?.system).toEqual(reportBefore?.system);
    expect(report?.lock).toEqual(reportBefore?.lock);
    // The worktree and the out-link (the build's temporary GC root) are gone; only the fetch cache stays.
    expect(await fs.readdir(path.join(h.stateDir, "build", "work")).catch(() => [])).toEqual([]);
    const worktrees = await git(path.join(h.stateDir, "build", "cache.git"), "worktree", "list");
    expect(worktrees.split("\n")).toHaveLength(1);
  });

  it("builds on a host that runs no system yet, and says why there is no closure diff", async () => {
    await h.startAgent();
    const head = await h.fleet.head();
    const { finished } = await h.run("build", { commit: head });
    expect(finished.outcome).toBe("succeeded");
    const build = buildOf(finished.result);
    expect(build).toMatchObject({ commit: head, storePath: await h.fleet.systemPath("web1"), comparedWith: null, closureDiff: null });
    expect(build.closureDiffProblem).toBe(`${h.shim.currentSystemLink} does not exist`);
    // Not even a clone: the build needs none.
    await expect(fs.access(clone())).rejects.toThrow();
  });

  it("builds a commit that is on no branch the agent follows (an update PR's head)", async () => {
    await runningHost();
    // Pushed to its own branch only, as the update workflow does before the PR is merged.
    await git(h.fleet.work, "checkout", "--quiet", "-b", "update-flake-lock");
    await fs.writeFile(path.join(h.fleet.work, "packages", "greeter.txt"), "2.1 4\n");
    await git(h.fleet.work, "commit", "--quiet", "-am", "greeter 2.1");
    await git(h.fleet.work, "push", "--quiet", "origin", "HEAD:refs/heads/update-flake-lock");
    const prHead = await git(h.fleet.work, "rev-parse", "HEAD");
    expect(await h.fleet.head()).not.toBe(prHead);

    const { finished } = await h.run("build", { commit: prHead });
    expect(finished.outcome).toBe("succeeded");
    const build = buildOf(finished.result);
    expect(build.closureDiff?.entries).toEqual([{ name: "greeter", old: ["2.0"], new: ["2.1"], sizeDelta: 0 }]);
  });

  it("fails a build that does not build, with nix's last lines, and leaves the host alone", async () => {
    await runningHost();
    const before = await hostState();
    const broken = await h.fleet.setHost("web1", "fail: a broken configuration");

    const { id, finished } = await h.run("build", { commit: broken });
    expect(finished.outcome).toBe("failed");
    expect(finished.exitCode).toBe(1);
    expect(finished.error).toContain(`the build of ${broken} failed`);
    const build = buildOf(finished.result);
    // The tree is said of a failed build too: System matches it to main by tree.
    expect(build).toMatchObject({ commit: broken, tree: await git(h.fleet.work, "rev-parse", `${broken}^{tree}`), storePath: null, closureDiff: null });
    expect(build.errorTail).toContain("building the system of web1 failed on purpose: fail: a broken configuration");
    expect(h.plane.output(id)).toContain("failed on purpose");
    expect(await hostState()).toEqual(before);
    expect(await fs.readdir(path.join(h.stateDir, "build", "work")).catch(() => [])).toEqual([]);
  });

  it("keeps the end of a long build error, where nix says what failed", async () => {
    await h.startAgent();
    const broken = await h.fleet.setHost("web1", `fail: ${"a very long complaint ".repeat(300)}`);
    const { finished } = await h.run("build", { commit: broken });
    const build = buildOf(finished.result);
    expect(finished.error!.length).toBeLessThanOrEqual(4000);
    expect(finished.error).toMatch(new RegExp(`^the build of ${broken} failed \\(nix build exited with code 1\\):\n`));
    expect(build.errorTail).toMatch(/builder for '.*nixos-system-web1\.drv' failed with exit code 1/);
    expect(finished.error!.endsWith(build.errorTail!.slice(-500))).toBe(true);
  });

  it("fails clearly without a commit or with a commit the repository does not have", async () => {
    await h.startAgent();
    const { finished: none } = await h.run("build");
    expect(none).toMatchObject({ outcome: "failed", error: "a build needs a commit to build, and this one came without" });
    const missing = "0123456789abcdef0123456789abcdef01234567";
    const { finished: unknown } = await h.run("build", { commit: missing });
    expect(unknown.outcome).toBe("failed");
    expect(unknown.error).toContain(`commit ${missing} is not in ${h.fleet.origin}`);
  });

  it("a stop kills the running build (nix and its builder); the build ends cancelled and the host is untouched", async () => {
    await runningHost();
    const before = await hostState();
    const gate = path.join(h.root, "gate");
    const slow = await h.fleet.setHost("web1", `wait:${gate}`);
    const target = h.plane.queue("build", { commit: slow });
    const builderPid = Number(await waitForFile(`${gate}.pid`));

    const { finished: stop } = await h.run("stop", { target });
    expect(stop.result).toEqual({ stopped: true });
    const finished = await h.plane.waitForFinished(target);
    expect(finished).toMatchObject({ outcome: "cancelled", error: "stopped by a stop command" });
    expect(buildOf(finished.result)).toMatchObject({ commit: slow, storePath: null });
    expect(await waitGone(builderPid), `builder ${builderPid} is gone`).toBe(true);
    expect(await hostState()).toEqual(before);
    expect(await fs.readdir(path.join(h.stateDir, "build", "work")).catch(() => [])).toEqual([]);
  });

  it("kills a build that passes its deadline", async () => {
    await runningHost();
    const gate = path.join(h.root, "gate");
    const slow = await h.fleet.setHost("web1", `wait:${gate}`);
    // Long enough for the fetch and the evaluation on a busy machine; the builder then waits forever.
    const id = h.plane.queue("build", { commit: slow, deadlineSeconds: 8 });
    const builderPid = Number(await waitForFile(`${gate}.pid`));
    const finished = await h.plane.waitForFinished(id);
    expect(finished.outcome).toBe("failed");
    expect(finished.error).toMatch(/^the build passed its deadline/);
    expect(await waitGone(builderPid)).toBe(true);
  });

  it("a switch queued during a build waits for it, and a build queued during a switch waits for the switch", async () => {
    await runningHost();
    const gate = path.join(h.root, "gate");
    const slow = await h.fleet.setHost("web1", `wait:${gate}`);
    const build = h.plane.queue("build", { commit: slow });
    await waitForFile(`${gate}.pid`);
    const switchId = h.plane.queue("switch");
    await h.plane.waitForPoll((poll) => poll.request.activeCommands.includes(switchId), "the switch to be held");
    expect(h.plane.events(switchId)).toEqual([]);
    await fs.writeFile(gate, "");
    expect((await h.plane.waitForFinished(build, 60_000)).outcome).toBe("succeeded");
    // The switch of the clone's (unchanged) commit starts only now.
    expect((await h.plane.waitForFinished(switchId, 60_000)).outcome).toBe("succeeded");

    await h.shim.setMode("gate");
    const gatedSwitch = h.plane.queue("switch");
    await h.plane.waitFor(() => h.plane.output(gatedSwitch).includes("waiting for"), "the switch to wait at the shim's gate");
    const second = h.plane.queue("build", { commit: slow });
    await h.plane.waitForPoll((poll) => poll.request.activeCommands.includes(second), "the build to be held");
    expect(h.plane.events(second)).toEqual([]);
    await h.shim.release();
    expect((await h.plane.waitForFinished(gatedSwitch, 60_000)).outcome).toBe("succeeded");
    expect((await h.plane.waitForFinished(second, 60_000)).outcome).toBe("succeeded");
    const started = (id: string) => h.plane.events(id).find((event) => event.type === "started");
    expect(Date.parse((started(second) as { at: string }).at)).toBeGreaterThanOrEqual(
      Date.parse((h.plane.finished(gatedSwitch) as { at: string }).at),
    );
  });
});
