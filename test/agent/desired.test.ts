import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterEach, expect, it } from "vitest";
import type { AgentConfigInput } from "../../common/agent-config.ts";
import type { DesiredReport, Report } from "../../common/protocol.ts";
import { nixSystem } from "../../tools/fleet-kit/fleet-repo.ts";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import { installNixRecorder, type NixRecorder } from "../support/nix-recorder.ts";
import { eventually } from "../support/wait.ts";
import { createHarness, processGone, type Harness } from "./harness.ts";

const exec = promisify(execFile);
let h: Harness;
let wrapperDir: string;
/** The `nix` first on the agent's PATH: one line per real run by the agent (or by what it runs), its niceness then its arguments. */
let recorder: NixRecorder;

/** The runs that evaluate or build (the report's one `nix --version` per running system is neither). */
async function nixWork(): Promise<string[]> {
  return (await recorder.runs()).filter((line) => !line.endsWith(" --version")).slice(fleetRuns);
}

/** Queues a pull-switch and waits for the report the agent sends right after the activation (with the switch's end), with what runs now. */
async function pullSwitchReported() {
  const id = h.plane.queue("pull-switch");
  const report = (await h.plane.waitForFinished(id)).report?.report;
  const activated = await h.shim.currentSystem();
  expect(activated).not.toBeNull();
  return { id, report, activated };
}

/** The runs that made the fleet repository (its `nix flake lock`), before the agent ran. */
let fleetRuns = 0;

async function start(desired: Partial<NonNullable<AgentConfigInput["desired"]>> = {}, holdCapSeconds?: number, nixConfig?: string, random?: () => number): Promise<void> {
  wrapperDir = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-nix-wrapper-"));
  recorder = await installNixRecorder(wrapperDir, { niceness: true });
  h = await createHarness({ holdCapSeconds, nixConfig, random, pathFirst: [recorder.binDir], config: { desired: { evaluate: "local", maxDelaySeconds: 0, ...desired } } });
  fleetRuns = (await recorder.runs()).filter((line) => !line.endsWith(" --version")).length;
  await h.startAgent();
}

const clone = () => path.join(h.stateDir, "repo");
const git = async (dir: string, ...args: string[]) => (await exec("git", ["-C", dir, ...args], { env: h.env })).stdout.trim();
const treeOf = (commit: string) => git(h.fleet.work, "rev-parse", `${commit}^{tree}`);

/** Everything the evaluation must leave alone. */
async function hostState() {
  return {
    head: await git(clone(), "rev-parse", "HEAD"),
    status: await git(clone(), "status", "--porcelain"),
    worktrees: await git(clone(), "worktree", "list", "--porcelain"),
    system: await h.shim.currentSystem(),
    generations: await h.shim.generations(),
  };
}

/** Waits for a report whose desired section satisfies `probe`. */
function reportWith(probe: (desired: DesiredReport) => boolean, what: string, timeoutMs?: number): Promise<Report> {
  return h.plane.waitFor(
    () => {
      const report = h.plane.lastReport();
      return report?.desired !== undefined && probe(report.desired) ? report : undefined;
    },
    what,
    timeoutMs,
  );
}

/**
 * A system no test built before: the store is the machine's, shared by every run, and `changes`
 * counts what is missing from it.
 */
const newGeneration = () => `web1 generation ${randomUUID()}`;

const latestAt = (commit: string) => (desired: DesiredReport) => desired.latest?.commit === commit && desired.evaluating === null;

afterEach(async () => {
  await h.cleanup();
  await fs.rm(wrapperDir, { recursive: true, force: true });
  expect(h.plane.protocolErrors).toEqual([]);
});

describeWithNix("the desired system at main's head", () => {
  it("reports what the new head builds when main moves, leaving the clone and the running system alone", async () => {
    await start();
    const { finished } = await h.run("pull-switch");
    expect(finished.outcome).toBe("succeeded");
    const first = await h.fleet.head();
    const running = await h.shim.currentSystem();
    // The switch evaluated the clone before activating it; the pull's head is that tree, so no second evaluation.
    // That made it main's desired system before the activation: the report after it says the host runs it.
    const afterSwitch = await h.plane.waitFor(() => {
      const report = h.plane.lastReport();
      return report?.desired !== undefined && latestAt(first)(report.desired) && report.system.current.value === running ? report : undefined;
    }, "the report after the pull-switch");
    expect(afterSwitch.desired?.latest).toMatchObject({ commit: first, tree: await treeOf(first), outPath: running });
    expect(afterSwitch.system.current.value).toBe(running);
    expect((await nixWork()).filter((line) => line.includes(" eval "))).toHaveLength(1);

    const before = await hostState();
    const next = await h.fleet.setHost("web1", newGeneration());
    const expected = await h.fleet.systemPath("web1");
    h.plane.moveMain(next);
    const report = await reportWith(latestAt(next), "the desired system at the new head");
    expect(report.desired).toEqual({
      source: "local",
      evaluating: null,
      latest: {
        commit: next,
        tree: await treeOf(next),
        evaluatedAt: expect.any(String),
        outPath: expected,
        // Only the system itself is new: its packages are already in the store.
        changes: { toBuild: 1, toFetch: 0, downloadBytes: 0 },
      },
    });
    expect(await hostState()).toEqual(before);
    expect(report.repo.commit.value).toBe(first);
    // At the lowest priority (the agent itself runs at 0 here): the evaluation and the dry run of what it found.
    const evaluation = (await nixWork()).slice(-2);
    expect(evaluation).toEqual([
      expect.stringMatching(/^19 .* eval --json \S+#nixosConfigurations\.web1\.config\.system\.build\.toplevel --apply /),
      expect.stringMatching(/^19 .* build --dry-run \/nix\/store\/\S+-nixos-system-web1\.drv$/),
    ]);
    expect(report.system.current.value).toBe(running);
    // The evaluation's worktree is gone; only the build cache stays.
    expect(await fs.readdir(path.join(h.stateDir, "desired", "work"))).toEqual([]);
    expect((await git(path.join(h.stateDir, "build", "cache.git"), "worktree", "list")).split("\n")).toHaveLength(1);
  });

  it("reports how much a switch would download when main's system is in a binary cache: nothing to build, its paths to fetch and Nix's download size", async () => {
    // Main's system is built in a store of its own and copied to a file:// cache, the host's one substituter.
    const elsewhere = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-desired-cache-"));
    const cache = path.join(elsewhere, "cache");
    try {
      await start({}, undefined, `substituters = file://${cache}\nrequire-sigs = false\n`);
      // Only paths no store on this machine has: a new system and a new 300 KiB package, the fleet's shared packages left out.
      const head = await h.fleet.commit({ "packages/hello.txt": null, "packages/greeter.txt": null, "packages/payload.txt": `${randomUUID().slice(0, 8)} 300\n`, "hosts/web1.txt": newGeneration() }, "a new payload");
      const builderEnv = { ...h.env, NIX_CONFIG: `${h.env.NIX_CONFIG}extra-sandbox-paths = /bin /usr /lib /lib64\n` };
      const store = path.join(elsewhere, "builder-store");
      await exec("nix", ["build", "--store", store, "--no-link", `${h.fleet.work}#nixosConfigurations.web1.config.system.build.toplevel`], { cwd: h.fleet.work, env: builderEnv });
      const outPath = await h.fleet.systemPath("web1");
      await exec("nix", ["copy", "--from", store, "--to", `file://${cache}?compression=none`, outPath], { env: builderEnv });
      const narinfos = (await fs.readdir(cache)).filter((name) => name.endsWith(".narinfo"));
      expect(narinfos).toHaveLength(2);
      const fileSizes = await Promise.all(narinfos.map(async (name) => Number(/^FileSize: (\d+)$/m.exec(await fs.readFile(path.join(cache, name), "utf8"))?.[1])));
      const fileBytes = fileSizes.reduce((a, b) => a + b, 0);
      expect(fileBytes).toBeGreaterThanOrEqual(300 * 1024);
      // Nix says the sum in MiB to two decimals.
      const MIB = 1024 * 1024;
      const downloadBytes = Math.round(Number((fileBytes / MIB).toFixed(2)) * MIB);

      h.plane.moveMain(head);
      const report = await reportWith(latestAt(head), "the desired system in the cache");
      expect(report.desired?.latest).toMatchObject({ commit: head, outPath, changes: { toBuild: 0, toFetch: 2, downloadBytes } });
      // A dry run: nothing was fetched.
      await expect(fs.stat(outPath)).rejects.toThrow();
    } finally {
      await fs.rm(elsewhere, { recursive: true, force: true });
    }
  });

  it("reports the system a switch just activated at once, without evaluating again, and main's desired system from the same evaluation", async () => {
    // The control plane holds a poll for a minute: only a report sent at once arrives within the wait below.
    await start({}, 60);
    const first = await h.plane.waitForPoll((poll) => poll.request.report !== undefined, "the first report");
    expect(first.request.report?.system.current.value).toBeNull();
    const { id, report, activated } = await pullSwitchReported();
    expect(report?.system.current.value).toBe(activated);
    // The end's report knows it is realised already: no second report after the end has to say so.
    expect(report?.desired?.latest).toMatchObject({ outPath: activated, changes: { toBuild: 0, toFetch: 0, downloadBytes: 0 } });
    expect((await h.plane.waitForFinished(id)).outcome).toBe("succeeded");
    const head = await h.fleet.head();
    const realised = (desired: DesiredReport) => latestAt(head)(desired) && desired.latest !== null && "changes" in desired.latest && desired.latest.changes?.toBuild === 0;
    const desired = await reportWith(realised, "main's desired system, realised", 20_000);
    // The switch realised it: nothing is left to build or fetch (the evaluation before it ran no dry run).
    expect(desired.desired?.latest).toMatchObject({ outPath: activated, changes: { toBuild: 0, toFetch: 0 } });
    // One evaluation, before the activation; the check after it and main's desired system reuse it.
    expect((await nixWork()).filter((line) => line.includes(" eval "))).toEqual([
      expect.stringContaining(`#nixosConfigurations.web1.config.system.build.toplevel.outPath`),
    ]);
  });

  it("knows main's desired system from a switch of main's head while its own evaluation waits out its delay: the report after the activation says so, and nix evaluates once", async () => {
    // Main's own evaluation waits most of an hour: only the switch can make main's system known within this test.
    await start({ maxDelaySeconds: 3600 }, 60, undefined, () => 0.99);
    await h.plane.waitForPoll((poll) => poll.request.report !== undefined, "the first report");
    const head = await h.fleet.head();
    h.plane.moveMain(head);
    await reportWith((desired) => desired.evaluating === head, "main's evaluation waiting out its delay");
    const { id, report, activated } = await pullSwitchReported();
    // A rollout's gate judges this report: System green needs main's desired system, which is what now runs.
    expect(report?.desired).toMatchObject({ evaluating: null, latest: { commit: head, tree: await treeOf(head), outPath: activated } });
    expect((await h.plane.waitForFinished(id)).outcome).toBe("succeeded");
    expect((await nixWork()).filter((line) => line.includes(" eval "))).toHaveLength(1);
  });

  it("reports the closure diff against the running system once main's system is in the store (a build's, or its own), made once per system", async () => {
    await start();
    expect((await h.run("pull-switch")).finished.outcome).toBe("succeeded");
    const running = await h.shim.currentSystem();
    const diffRuns = async () => (await nixWork()).filter((line) => line.includes(" store diff-closures "));

    // Main moves to a system not built here: counts, no diff. A build of it then realises it, and its diff is taken as it is.
    // A greeter version no run built before either (the store outlives the runs): the system and the package to build.
    const greeter = `2.1.${Date.now()}`;
    const unbuiltHead = await h.fleet.commit({ "packages/greeter.txt": `${greeter} 4\n`, "hosts/web1.txt": newGeneration() }, `greeter ${greeter}`);
    h.plane.moveMain(unbuiltHead);
    const unbuilt = await reportWith(latestAt(unbuiltHead), "the desired system before its build");
    expect(unbuilt.desired?.latest).toMatchObject({ changes: { toBuild: 2, toFetch: 0 } });
    expect(unbuilt.desired?.latest).not.toHaveProperty("closureDiff");
    const { finished } = await h.run("build", { commit: unbuiltHead });
    const build = finished.result?.build;
    expect(build?.closureDiff?.entries).toEqual([{ name: "greeter", old: ["2.0"], new: [greeter], sizeDelta: 0 }]);
    const built = await reportWith((desired) => desired.latest !== null && "closureDiff" in desired.latest, "the desired system after the build");
    expect(built.desired?.latest).toEqual({ ...unbuilt.desired?.latest, changes: { toBuild: 0, toFetch: 0, downloadBytes: 0 }, closureDiff: { ...build?.closureDiff, comparedWith: running } });
    expect(await diffRuns()).toHaveLength(1);

    // Main's next system is built here before main moves (as after a fleet build of the PR that became it): the agent compares it itself.
    const builtHead = await h.fleet.commit({ "packages/hello.txt": "1.1 40\n", "hosts/web1.txt": newGeneration() }, "hello 1.1");
    await exec("nix", ["build", "--no-link", `${h.fleet.work}#nixosConfigurations.web1.config.system.build.toplevel`], { cwd: h.fleet.work, env: h.env });
    const outPath = await h.fleet.systemPath("web1");
    h.plane.moveMain(builtHead);
    const report = await reportWith(latestAt(builtHead), "the desired system with its closure diff");
    const latest = report.desired?.latest;
    expect(latest).toMatchObject({
      outPath,
      changes: { toBuild: 0, toFetch: 0 },
      closureDiff: {
        comparedWith: running,
        entries: [
          { name: "greeter", old: ["2.0"], new: [greeter], sizeDelta: 0 },
          { name: "hello", old: ["1.0"], new: ["1.1"], sizeDelta: 28 * 1024 },
        ],
        omitted: 0,
      },
    });
    expect(latest && "closureDiff" in latest ? latest.closureDiff?.totalSizeDelta : null).toBeGreaterThanOrEqual(28 * 1024);
    expect(report.system.current.value).toBe(running);
    expect((await diffRuns()).slice(1)).toEqual([expect.stringContaining(` store diff-closures ${running} ${outPath}`)]);

    // Another commit with the same tree, and a restart: the diff comes from the evaluation's cache.
    const runs = await nixWork();
    const same = await h.fleet.commit({}, "an empty commit");
    h.plane.moveMain(same);
    expect((await reportWith(latestAt(same), "the desired system at the empty commit")).desired?.latest).toEqual({ ...latest, commit: same });
    await h.stopAgent();
    const restartPoll = h.plane.polls.length;
    await h.startAgent();
    const afterRestart = await h.plane.waitForPoll((poll) => poll.request.report !== undefined, "the report after the restart", restartPoll);
    expect(afterRestart.request.report?.desired?.latest).toEqual({ ...latest, commit: same });
    expect(await nixWork()).toEqual(runs);
  });

  it("reports nix's error when main does not evaluate for this host", async () => {
    await start();
    const broken = await h.fleet.commit({ "hosts/web1.txt": null }, "web1 leaves the fleet");
    h.plane.moveMain(broken);
    const report = await reportWith(latestAt(broken), "the failed evaluation");
    const [system, attr] = [nixSystem(), "nixosConfigurations.web1.config.system.build.toplevel"];
    const latest = report.desired?.latest;
    expect(latest && "error" in latest ? latest.error : null).toBe(
      `flake '.' does not provide attribute 'packages.${system}.${attr}', 'legacyPackages.${system}.${attr}' or '${attr}'`,
    );
    expect(latest?.tree).toBe(await treeOf(broken));

    // nix's verdict on a tree holds for every commit with that tree: it is not asked again.
    const runs = await nixWork();
    const again = await h.fleet.commit({}, "an empty commit on the broken tree");
    h.plane.moveMain(again);
    const second = await reportWith(latestAt(again), "the cached failure");
    expect(second.desired?.latest).toEqual({ ...latest, commit: again });
    expect(await nixWork()).toEqual(runs);

    // A head the origin does not have is not main failing to build: the last answer stands.
    h.plane.moveMain("0123456789abcdef0123456789abcdef01234567");
    await h.plane.waitFor(() => h.logs.some((line) => line.includes("cannot fetch main's head")), "the failed fetch");
    h.plane.wantReport = true;
    const from = h.plane.polls.length;
    const after = await h.plane.waitForPoll((poll) => poll.request.report !== undefined, "a report after the failed fetch", from);
    expect(after.request.report?.desired).toEqual(second.desired);
  });

  it("evaluates a tree once: another commit with the same tree, another report and a restart run no nix", async () => {
    await start();
    const next = await h.fleet.setHost("web1", newGeneration());
    h.plane.moveMain(next);
    const first = await reportWith(latestAt(next), "the first evaluation");
    const runs = await nixWork();
    expect(runs.filter((line) => line.includes(" eval "))).toHaveLength(1);

    // An empty commit: a new head, the same tree.
    const same = await h.fleet.commit({}, "an empty commit");
    expect(await treeOf(same)).toBe(await treeOf(next));
    h.plane.moveMain(same);
    const second = await reportWith(latestAt(same), "the desired system at the empty commit");
    expect(second.desired?.latest).toEqual({ ...first.desired?.latest, commit: same });
    const pollsBefore = h.plane.polls.length;
    h.plane.wantReport = true;
    await h.plane.waitForPoll((poll) => poll.request.report !== undefined, "another report", pollsBefore);
    expect(await nixWork()).toEqual(runs);

    // A new process on the same state: it reports the evaluation it kept and evaluates no known tree.
    await h.stopAgent();
    const restartPoll = h.plane.polls.length;
    await h.startAgent();
    const firstReport = await h.plane.waitForPoll((poll) => poll.request.report !== undefined, "the report after the restart", restartPoll);
    expect(firstReport.request.report?.desired?.latest).toEqual(second.desired?.latest);
    const third = await h.fleet.commit({}, "another empty commit");
    h.plane.moveMain(third);
    await reportWith(latestAt(third), "the desired system at the commit after the restart");
    expect(await nixWork()).toEqual(runs);
  });

  it('evaluates nothing with evaluate = "ci"', async () => {
    await start({ evaluate: "ci" });
    const next = await h.fleet.setHost("web1", newGeneration());
    h.plane.moveMain(next);
    const answered = h.plane.polls.length;
    // The poll after the answer that named the new head: the agent has seen it by then.
    await h.plane.waitForPoll(() => true, "the poll after main moved", answered + 1);
    h.plane.wantReport = true;
    const report = (await h.plane.waitForPoll((poll) => poll.request.report !== undefined, "a report", answered + 1)).request.report;
    expect(report?.desired).toEqual({ source: "ci", latest: null, evaluating: null });
    expect(await nixWork()).toEqual([]);
    await expect(fs.access(path.join(h.stateDir, "build", "cache.git"))).rejects.toThrow();
  });

  it("kills an evaluation that prints more than its output cap and reports why", async () => {
    await start({ outputLimitBytes: 1024 });
    // `builtins.trace` prints to stderr while it evaluates: 16 KiB of it, then the system as before.
    const chatty = (await fs.readFile(path.join(h.fleet.work, "flake.nix"), "utf8")).replace(
      "value.config.system.build.toplevel = toplevel name;",
      'value.config.system.build.toplevel = builtins.trace (builtins.concatStringsSep "" (builtins.genList (_: "chatter ") 2048)) (toplevel name);',
    );
    expect(chatty).toContain("builtins.trace");
    const noisy = await h.fleet.commit({ "flake.nix": chatty }, "an evaluation that talks too much");
    h.plane.moveMain(noisy);
    const report = await reportWith(latestAt(noisy), "the evaluation's end");
    const latest = report.desired?.latest;
    expect(latest && "error" in latest ? latest.error : null).toBe("the evaluation printed more than 1024 bytes and was killed");
  });

  it("kills an evaluation that runs past its deadline and reports why", async () => {
    await start({ timeoutSeconds: 2 });
    const pidFile = path.join(h.root, "runaway.pid");
    // Import from a derivation whose builder never ends: the evaluation waits for it.
    const runaway = `{
  inputs.pins = { url = "git+file://${h.fleet.pins}"; flake = false; };
  outputs = { self, pins }: {
    nixosConfigurations.web1.config.system.build.toplevel = import (builtins.derivation {
      name = "runaway";
      system = "${nixSystem()}";
      builder = "/bin/sh";
      args = [ "-c" "echo $$ > ${pidFile}; exec /bin/sleep 600" ];
    });
  };
}
`;
    const stuck = await h.fleet.commit({ "flake.nix": runaway }, "an evaluation that never ends");
    h.plane.moveMain(stuck);
    const evaluating = await reportWith((desired) => desired.evaluating === stuck, "the evaluation in progress");
    expect(evaluating.desired?.latest).toBeNull();
    const pid = Number(await eventually("the runaway builder's pid", () => fs.readFile(pidFile, "utf8").then((text) => text.trim())));
    const report = await reportWith(latestAt(stuck), "the evaluation's end");
    const latest = report.desired?.latest;
    expect(latest && "error" in latest ? latest.error : null).toBe("the evaluation passed its deadline (2 s) and was killed");
    // Killed with the evaluation, not left sleeping for ten minutes.
    await eventually("the runaway builder's end", () => processGone(pid));
  });
});
