import { execFile, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { AgentConfig, type AgentConfigInput } from "../../common/agent-config.ts";
import { Report } from "../../common/protocol.ts";
import { NIXFLEET_VERSION } from "../../common/version.ts";
import { JobStore } from "../../agent/job-store.ts";
import { silentLogger } from "../../agent/logger.ts";
import { platformFor } from "../../agent/platforms/index.ts";
import { cloneStatus } from "../../agent/git.ts";
import { ReportCollector, reportFingerprint } from "../../agent/report.ts";
import { createNodeRunner } from "../../agent/runner.ts";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import { createHarness, type Harness } from "./harness.ts";
import { isolatedAgentConfig, toolLessRunner } from "./isolated-host.ts";

const exec = promisify(execFile);
const PinnedLock = z.object({ nodes: z.object({ pins: z.object({ locked: z.object({ lastModified: z.number() }) }) }) });

describe("report on a machine the agent knows nothing about", () => {
  let root: string;
  beforeEach(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-report-"));
  });
  afterEach(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  const collect = async (overrides: Partial<AgentConfigInput> = {}) => {
    const config = isolatedAgentConfig(root, {
      currentSystemLink: path.join(root, "no-current-system"),
      bootedSystemLink: path.join(root, "no-booted-system"),
      ...overrides,
    });
    const runner = toolLessRunner(root);
    const store = await JobStore.openReadOnly(config.stateDir, silentLogger);
    return new ReportCollector({ config, platform: platformFor(config), runner, store, cloneDir: store.cloneDir, agentStartedAt: Date.now() - 5_000 }).collect();
  };

  it("says why for every value it cannot read, instead of guessing or throwing", async () => {
    const report = await collect();
    expect(Report.safeParse(report).success).toBe(true);
    expect(report.agentVersion).toBe(NIXFLEET_VERSION);
    expect(report.nixVersion).toEqual({ value: null, reason: expect.stringContaining("no-nix-here: not found") });
    expect(report.nixpkgsVersion).toEqual({ value: null, reason: expect.stringContaining("nixos-version: not found") });
    expect(report.repo).toEqual({
      commit: { value: null, reason: "no clone yet: the agent clones the repository on its first pull" },
      branch: { value: null, reason: "no clone yet: the agent clones the repository on its first pull" },
      dirty: null,
    });
    expect(report.lock).toEqual({ hash: { value: null, reason: expect.stringContaining("no clone yet") }, lastModified: {} });
    expect(report.system).toEqual({
      current: { value: null, reason: `${path.join(root, "no-current-system")} does not exist` },
      builtFromCommit: null,
      reboot: { value: null, reason: `${path.join(root, "no-booted-system")} does not exist` },
    });
    expect(report.tests).toEqual({ configured: false, autoRunAfterSwitch: false, last: null });
    expect(report.agentUptimeSeconds).toBeGreaterThanOrEqual(5);
    expect(report.rollout).toEqual({ autoUpdate: true, priority: 100, canary: false });
  });

  it("does not pretend to know nixpkgs on darwin or Home Manager hosts", async () => {
    const report = await collect({ platform: "home-manager", currentSystemLink: undefined });
    expect(report.nixpkgsVersion.reason).toMatch(/only on NixOS \(platform: home-manager\)/);
    // Home Manager's running "system" is its profile under XDG_STATE_HOME.
    expect(report.system.current.reason).toContain(path.join(root, "home", ".local", "state", "nix", "profiles", "home-manager"));
  });

  it("reads the OS name from /etc/os-release", async () => {
    const report = await collect();
    const osRelease = await fs.readFile("/etc/os-release", "utf8").catch(() => null);
    const pretty = osRelease === null ? null : /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(osRelease)?.[1];
    if (pretty === null || pretty === undefined) expect(report.os.value).toBeNull();
    else expect(report.os).toEqual({ value: pretty });
  });

  it("reads NixOS's version from the running system's nixos-version file, without running nixos-version", async () => {
    const system = path.join(root, "system");
    await fs.mkdir(system);
    await fs.writeFile(path.join(system, "nixos-version"), "24.05.20240101.abcdef0\n");
    await fs.symlink(system, path.join(root, "current-system"));
    // Nothing is on the PATH: had the agent run nixos-version, the version would be "not found".
    const report = await collect({ currentSystemLink: path.join(root, "current-system") });
    expect(report.system.current).toEqual({ value: system });
    expect(report.nixpkgsVersion).toEqual({ value: "24.05.20240101.abcdef0" });
  });

  it("fingerprints a report without its uptimes", async () => {
    const report = await collect();
    const later = { ...report, uptimeSeconds: (report.uptimeSeconds ?? 0) + 100, agentUptimeSeconds: report.agentUptimeSeconds + 100 };
    expect(reportFingerprint(later)).toBe(reportFingerprint(report));
    expect(reportFingerprint({ ...report, hostname: "other" })).not.toBe(reportFingerprint(report));
  });
});

describeWithNix("report with real git and nix", () => {
  let h: Harness;
  beforeEach(async () => {
    h = await createHarness();
  });
  afterEach(async () => {
    await h.cleanup();
    expect(h.plane.protocolErrors).toEqual([]);
  });

  it("reports the clone, the flake.lock hash and ages, nix's version and the running system", async () => {
    await h.startAgent({ tests: { commands: [{ name: "ok", command: "true" }] }, rollout: { priority: 5, canary: true } });
    await h.run("pull-switch");
    const system = await h.shim.currentSystem();
    const report = await h.plane.waitFor(
      () => (h.plane.lastReport()?.system.current.value === system ? h.plane.lastReport() : undefined),
      "a report after the switch",
    );
    const lockText = await fs.readFile(path.join(h.fleet.work, "flake.lock"));
    const lock = PinnedLock.parse(JSON.parse(lockText.toString("utf8")));
    const nixVersion = (await exec("nix", ["--version"], { env: h.env })).stdout.trim().split(" ").at(-1);

    expect(report.repo).toEqual({ commit: { value: await h.fleet.head() }, branch: { value: "main" }, dirty: false });
    expect(report.lock.hash).toEqual({ value: createHash("sha256").update(lockText).digest("hex") });
    expect(report.lock.lastModified).toEqual({ pins: lock.nodes.pins.locked.lastModified });
    expect(report.nixVersion).toEqual({ value: nixVersion });
    expect(report.system.builtFromCommit).toBe(await h.fleet.head());
    expect(report.tests).toEqual({ configured: true, autoRunAfterSwitch: false, last: null });
    expect(report.rollout).toEqual({ autoUpdate: true, priority: 5, canary: true });
    expect(report.hostname).toBe(os.hostname());
    expect(report.uptimeSeconds).toBeGreaterThan(0);
  });

  it("reports a clone with local changes as dirty", async () => {
    await h.startAgent();
    await h.run("pull");
    await fs.writeFile(path.join(h.stateDir, "repo", "hosts", "web1.txt"), "edited on the host");
    const from = h.plane.polls.length;
    await h.run("refresh");
    const poll = await h.plane.waitForPoll((p) => p.request.report?.repo.dirty === true, "a dirty report", from);
    expect(poll.request.report?.repo.commit.value).toBe(await h.fleet.head());
  });
});

describe("the clone's commit, branch and local changes from one git status", () => {
  let root: string;
  let clone: string;
  beforeEach(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-clone-status-"));
    clone = path.join(root, "repo");
  });
  afterEach(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  // HOME of the test's own: no global git config of the machine's applies.
  const env = () => ({ ...process.env, HOME: root });
  const git = (...args: string[]) =>
    execFileSync("git", ["-C", clone, "-c", "user.name=t", "-c", "user.email=t@example.invalid", ...args], { env: env(), encoding: "utf8" }).trim();
  const status = () => cloneStatus(isolatedAgentConfig(root), createNodeRunner({ env: env() }), clone);
  const initialised = async () => {
    await fs.mkdir(clone);
    git("init", "--quiet", "--initial-branch=main");
  };
  const committed = async () => {
    await initialised();
    await fs.writeFile(path.join(clone, "flake.nix"), "{ }\n");
    git("add", "flake.nix");
    git("commit", "--quiet", "-m", "first");
    return git("rev-parse", "HEAD");
  };

  it("clean: the commit, the branch, not dirty", async () => {
    const head = await committed();
    expect(await status()).toEqual({ commit: { value: head }, branch: { value: "main" }, dirty: false });
  });

  it("dirty with a changed tracked file, and with an untracked one", async () => {
    const head = await committed();
    await fs.writeFile(path.join(clone, "flake.nix"), "{ edited = true; }\n");
    expect(await status()).toEqual({ commit: { value: head }, branch: { value: "main" }, dirty: true });
    git("checkout", "--quiet", "--", "flake.nix");
    await fs.writeFile(path.join(clone, "notes.txt"), "untracked\n");
    expect(await status()).toEqual({ commit: { value: head }, branch: { value: "main" }, dirty: true });
  });

  it("a detached HEAD: the commit, and the branch unknown with why", async () => {
    const head = await committed();
    git("checkout", "--quiet", "--detach");
    expect(await status()).toEqual({ commit: { value: head }, branch: { value: null, reason: "the clone is on a detached HEAD" }, dirty: false });
  });

  it("an unborn HEAD: the branch, and the commit unknown with why", async () => {
    await initialised();
    expect(await status()).toEqual({ commit: { value: null, reason: "the clone has no commit yet" }, branch: { value: "main" }, dirty: false });
  });

  it("no clone, or a .git git cannot read: unknown with why, dirtiness null", async () => {
    const noClone = "no clone yet: the agent clones the repository on its first pull";
    expect(await status()).toEqual({ commit: { value: null, reason: noClone }, branch: { value: null, reason: noClone }, dirty: null });
    await fs.mkdir(path.join(clone, ".git"), { recursive: true });
    const broken = await status();
    expect(broken.dirty).toBeNull();
    expect(broken.commit).toEqual({ value: null, reason: expect.stringMatching(/^git status .*not a git repository/s) });
    expect(broken.branch).toEqual(broken.commit);
  });
});

describeWithNix("nix's version in the report", () => {
  let root: string;
  beforeEach(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-nix-version-"));
  });
  afterEach(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  it("is read once per nix binary: a new binary behind the same PATH entry is asked again, counted by wrappers that record their runs", async () => {
    const realNix = execFileSync("sh", ["-c", "command -v nix"], { encoding: "utf8" }).trim();
    const runs = path.join(root, "runs.log");
    // Two installed nixes, each recording its own runs; bin/nix is the PATH's nix, a link as on NixOS.
    for (const name of ["nix-a", "nix-b"]) {
      await fs.mkdir(path.join(root, name));
      await fs.writeFile(path.join(root, name, "nix"), `#!/bin/sh\nprintf '%s %s\\n' ${name} "$*" >> '${runs}'\nexec '${realNix}' "$@"\n`, { mode: 0o755 });
    }
    await fs.mkdir(path.join(root, "bin"));
    const link = path.join(root, "bin", "nix");
    await fs.symlink(path.join(root, "nix-a", "nix"), link);
    const config = isolatedAgentConfig(root, { currentSystemLink: path.join(root, "no-current-system"), tools: { nix: "nix" } });
    const runner = createNodeRunner({ env: { ...process.env, HOME: root, PATH: path.join(root, "bin") } });
    const collector = new ReportCollector({ config, platform: platformFor(config), runner, store: null, cloneDir: path.join(root, "repo"), agentStartedAt: Date.now() });
    const recorded = async () => (await fs.readFile(runs, "utf8")).split("\n").filter((line) => line !== "");
    const version = (await exec(realNix, ["--version"])).stdout.trim().split(" ").at(-1);

    expect((await collector.collect()).nixVersion).toEqual({ value: version });
    expect((await collector.collect()).nixVersion).toEqual({ value: version });
    expect(await recorded()).toEqual(["nix-a --version"]);

    await fs.rm(link);
    await fs.symlink(path.join(root, "nix-b", "nix"), link);
    expect((await collector.collect()).nixVersion).toEqual({ value: version });
    expect((await collector.collect()).nixVersion).toEqual({ value: version });
    expect(await recorded()).toEqual(["nix-a --version", "nix-b --version"]);
  });
});
