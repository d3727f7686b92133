/**
 * Collects the Report: the host's state as the agent sees it. Every value it
 * cannot read is `{ value: null, reason }` — never a guess and never a throw —
 * so `status` works on any machine, with or without a clone, git or nix.
 */
import { createHash } from "node:crypto";
import * as path from "node:path";
import type { AgentConfig } from "../common/agent-config.ts";
import { flakeLockHash, lockLastModified, parseFlakeLock } from "../common/lock-diff.ts";
import { PROTOCOL_VERSION, Report, type DesiredReport, type DiskSpace, type SafetyNetReport } from "../common/protocol.ts";
import { NIXFLEET_VERSION } from "../common/version.ts";
import { readDisk, type DiskReport } from "./disk-space.ts";
import { readHostGenerations } from "./generations.ts";
import { cloneStatus, hasClone, type CloneStatus } from "./git.ts";
import type { JobStore } from "./job-store.ts";
import { known, readCommandLine, unknown, type Known } from "./known.ts";
import type { HostPlatform } from "./platforms/platform.ts";
import { describeFailure, type HostRunner } from "./runner.ts";
import { nixSystemOf, readCurrentSystem } from "./system.ts";

export interface ReportCollectorOptions {
  config: AgentConfig;
  platform: HostPlatform;
  runner: HostRunner;
  /** The agent's state (built-from commits, last tests); null when there is none. */
  store: Pick<JobStore, "builtFromCommit" | "desiredSystem" | "lastTestRun"> | null;
  cloneDir: string;
  /** The safety net's state (safety-net/), when the agent has one. */
  safetyNet?: () => Promise<SafetyNetReport>;
  /** When this agent process started (ms since the epoch). */
  agentStartedAt: number;
  now?: () => number;
  /** The desired system at main's head (desired.ts); left out by `status`, which evaluates nothing. */
  desired?: () => DesiredReport;
}

/** What the report reads from the host (its files and processes), before the agent's own state joins it. */
export interface ReportProbe {
  current: Known<string>;
  facts: HostFacts;
  clone: CloneStatus;
  lock: Report["lock"];
  reboot: Report["system"]["reboot"];
  generations: Report["generations"];
  safetyNet: SafetyNetReport | undefined;
  disk: DiskReport | undefined;
  bootId: string | null;
}

interface HostFacts {
  os: Known<string>;
  nixpkgsVersion: Known<string>;
  nixVersion: Known<string>;
}

export class ReportCollector {
  readonly #options: ReportCollectorOptions;
  readonly #now: () => number;
  /** The os and nixpkgs versions only change with the running system, so they are read once per system. */
  #systemFacts: { system: string | null; facts: Pick<HostFacts, "os" | "nixpkgsVersion"> } | null = null;
  /** Nix's version only changes with the nix binary: read once per file the configured `nix` resolves to. */
  #nixVersion: { binary: string; version: Known<string> } | null = null;

  constructor(options: ReportCollectorOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  async collect(): Promise<Report> {
    return this.assemble(await this.probe());
  }

  /** Reads the host, all at once. */
  async probe(): Promise<ReportProbe> {
    const { config, platform, runner, cloneDir } = this.#options;
    const current = readCurrentSystem(platform, runner).catch((e: unknown) => unknown(`cannot read the running system: ${String(e)}`));
    const [currentSystem, facts, clone, lock, reboot, generations, safetyNet, disk, bootId] = await Promise.all([
      current,
      current.then((system) => this.#hostFacts(system.value)),
      cloneStatus(config, runner, cloneDir).catch((e: unknown): CloneStatus => ({ commit: unknown(String(e)), branch: unknown(String(e)), dirty: null })),
      readLock(runner, cloneDir),
      platform.rebootStatus(runner).catch((e: unknown) => unknown(`cannot tell whether a reboot is needed: ${String(e)}`)),
      readHostGenerations(platform, runner).catch((e: unknown) => unknown(`cannot read the generations: ${String(e)}`)),
      this.#options.safetyNet?.().catch(() => undefined),
      config.spaceCheck.enable ? readDisk(config, runner).catch(() => undefined) : undefined,
      platform.bootId(runner).catch(() => null),
    ]);
    return { current: currentSystem, facts, clone, lock, reboot, generations, safetyNet, disk, bootId };
  }

  /** The report from what `probe` read and the agent's own state as it is now (synchronous). */
  assemble(probe: ReportProbe): Report {
    const { config, platform, runner, store } = this.#options;
    const { current, facts, clone, safetyNet, disk } = probe;
    const desired = store?.desiredSystem(clone.commit.value) ?? null;
    const nixSystem = nixSystemOf(runner.hostOs(), process.arch);
    const report: Report = {
      protocol: PROTOCOL_VERSION,
      agentVersion: NIXFLEET_VERSION,
      platform: platform.name,
      ...(nixSystem === undefined ? {} : { nixSystem }),
      hostname: safe(() => runner.hostname(), "").slice(0, 253),
      os: facts.os,
      nixpkgsVersion: facts.nixpkgsVersion,
      nixVersion: facts.nixVersion,
      repo: clone,
      lock: probe.lock,
      system: {
        current,
        ...(desired !== null ? { desired: known(desired) } : {}),
        builtFromCommit: store?.builtFromCommit(current.value) ?? null,
        reboot: probe.reboot,
      },
      tests: {
        configured: testsConfigured(config),
        autoRunAfterSwitch: config.autoTestAfterSwitch,
        last: store?.lastTestRun() ?? null,
      },
      uptimeSeconds: safe(() => runner.uptimeSeconds(), null),
      agentUptimeSeconds: Math.max(0, Math.floor((this.#now() - this.#options.agentStartedAt) / 1000)),
      ...(this.#options.desired !== undefined ? { desired: this.#options.desired() } : {}),
      rollout: config.rollout,
      bootId: probe.bootId,
      activation: config.activation,
      ...(safetyNet !== undefined ? { safetyNet } : {}),
      ...(disk !== undefined ? { disk } : {}),
      generations: probe.generations,
    };
    // Our own output goes through the same schema the server applies: a bug here
    // shows in the agent's log rather than as a rejected poll.
    return Report.parse(report);
  }

  /** `assemble`, or undefined when the report does not pass the protocol's schema. */
  tryAssemble(probe: ReportProbe): Report | undefined {
    try {
      return this.assemble(probe);
    } catch {
      return undefined;
    }
  }

  async #hostFacts(system: string | null): Promise<HostFacts> {
    const [facts, nixVersion] = await Promise.all([this.#factsOfSystem(system), this.#nixVersionNow()]);
    return { ...facts, nixVersion };
  }

  async #factsOfSystem(system: string | null): Promise<Pick<HostFacts, "os" | "nixpkgsVersion">> {
    if (this.#systemFacts !== null && this.#systemFacts.system === system) return this.#systemFacts.facts;
    const { platform, runner } = this.#options;
    const [os, nixpkgsVersion] = await Promise.all([readOs(runner), platform.nixpkgsVersion(runner, system)]);
    this.#systemFacts = { system, facts: { os, nixpkgsVersion } };
    return { os, nixpkgsVersion };
  }

  async #nixVersionNow(): Promise<Known<string>> {
    const { config, runner } = this.#options;
    const binary = await resolveProgram(runner, config.tools.nix);
    if (binary !== null && this.#nixVersion?.binary === binary) return this.#nixVersion.version;
    const version = await readNixVersion(runner, config.tools.nix);
    // A failed run is asked again next time: it may have been the moment, not the binary.
    this.#nixVersion = binary !== null && version.value !== null ? { binary, version } : null;
    return version;
  }
}

export function testsConfigured(config: AgentConfig): boolean {
  return config.tests.commands.length > 0 || config.tests.directory !== undefined;
}

/**
 * A digest of what the report says, without the uptimes that change every
 * second: the agent resends the report only when this changes.
 */
export function reportFingerprint(report: Report): string {
  const { uptimeSeconds: _uptime, agentUptimeSeconds: _agentUptime, disk, ...stable } = report;
  // Free space moves with every log line: only a change of a hundredth of the filesystem is news.
  const roughly = (space: DiskSpace | null) => (space === null ? null : Math.round((space.freeBytes * 100) / Math.max(space.totalBytes, 1)));
  const roughDisk = disk === undefined ? null : { store: roughly(disk.store), boot: roughly(disk.boot) };
  return createHash("sha256").update(JSON.stringify({ ...stable, roughDisk })).digest("hex");
}

/** By the operating system, not the platform: Home Manager runs on Linux and macOS alike. */
async function readOs(runner: HostRunner): Promise<Known<string>> {
  if (runner.hostOs() === "darwin") {
    const result = await runner.run(["sw_vers"]);
    if (result.exitCode !== 0) return unknown(describeFailure("sw_vers", result));
    const field = (name: string) => new RegExp(`^${name}:\\s*(.+)$`, "m").exec(result.stdout)?.[1]?.trim();
    const name = field("ProductName");
    const version = field("ProductVersion");
    return name !== undefined && version !== undefined ? known(`${name} ${version}`) : unknown("sw_vers printed no ProductName/ProductVersion");
  }
  try {
    const text = new TextDecoder().decode(await runner.readFile("/etc/os-release"));
    const line = /^PRETTY_NAME=(.*)$/m.exec(text)?.[1];
    if (line === undefined) return unknown("/etc/os-release has no PRETTY_NAME");
    return known(unquote(line).slice(0, 200));
  } catch (error) {
    return unknown(`cannot read /etc/os-release: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
}

async function readNixVersion(runner: HostRunner, nix: string): Promise<Known<string>> {
  const line = await readCommandLine(runner, [nix, "--version"], "nix --version");
  if (line.value === null) return line;
  // "nix (Nix) 2.8.0" → "2.8.0"
  const version = /(\d+\.\d+[^\s]*)\s*$/.exec(line.value)?.[1];
  return known(version ?? line.value);
}

/**
 * The file `program` runs as (found on the commands' PATH, links followed), or null when there is
 * none: a new nix (a NixOS upgrade moves the link to another store path) is a new file.
 */
async function resolveProgram(runner: HostRunner, program: string): Promise<string | null> {
  const onPath = (runner.env("PATH") ?? "").split(path.delimiter).filter((dir) => dir !== "");
  const candidates = program.includes("/") ? [program] : onPath.map((dir) => path.join(dir, program));
  for (const candidate of candidates) {
    const resolved = await runner.realPath(candidate).catch(() => null);
    if (resolved !== null) return resolved;
  }
  return null;
}

async function readLock(runner: HostRunner, cloneDir: string): Promise<Report["lock"]> {
  if (!(await hasClone(runner, cloneDir))) {
    return { hash: unknown("no clone yet: the agent clones the repository on its first pull"), lastModified: {} };
  }
  const file = path.join(cloneDir, "flake.lock");
  let bytes: Uint8Array;
  try {
    bytes = await runner.readFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { hash: unknown(code === "ENOENT" ? "the clone has no flake.lock" : `cannot read ${file}: ${String(error)}`), lastModified: {} };
  }
  const hash = known(await flakeLockHash(bytes));
  try {
    return { hash, lastModified: lockLastModified(parseFlakeLock(new TextDecoder().decode(bytes))) };
  } catch {
    // The hash still says which lock it is; ages are only a hint.
    return { hash, lastModified: {} };
  }
}

function unquote(value: string): string {
  const trimmed = value.trim();
  if (trimmed.length >= 2 && (trimmed[0] === '"' || trimmed[0] === "'") && trimmed.at(-1) === trimmed[0]) {
    return trimmed.slice(1, -1).replace(/\\(.)/g, "$1");
  }
  return trimmed;
}

function safe<T>(read: () => T, fallback: T): T {
  try {
    return read();
  } catch {
    return fallback;
  }
}
