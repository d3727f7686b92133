import { execFile } from "node:child_process";
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
import { ReportCollector, reportFingerprint } from "../../agent/report.ts";
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
