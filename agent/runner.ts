/**
 * Everything the agent does to the host goes through `HostRunner`: spawning
 * git / nix / nixos-rebuild / tests, detached switch jobs, reading links and
 * files. Tests hand the agent the real implementation pointed at fixtures, so
 * the commands' logic is exercised against real programs.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { constants as fsConstants } from "node:fs";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import * as z from "zod";
import { launchctlBootoutArgv, launchctlBootstrapArgv, launchctlPrintArgv, launchdDomain, launchdJobRunning, launchdLabel, launchdPlist, launchdPlistPath } from "./launchd.ts";

export type ProcessStream = "stdout" | "stderr";

export interface RunOptions {
  cwd?: string;
  /** Variables set on top of the runner's environment. */
  env?: Record<string, string>;
  /** Aborting kills the command's whole process group (TERM, then KILL after a grace period). */
  signal?: AbortSignal;
  /** Called with output as it arrives, decoded as UTF-8. */
  onOutput?: (stream: ProcessStream, data: string) => void;
  /** Keep at most this many trailing characters of each stream in the result. */
  maxCapture?: number;
}

export interface RunResult {
  exitCode: number | null;
  /** The signal that ended the process, if one did. */
  signal: string | null;
  stdout: string;
  stderr: string;
  /** Set when the program could not be started at all (not found, not executable). */
  spawnError: string | null;
  /** The run was ended through `RunOptions.signal`. */
  aborted: boolean;
}

/** `systemd-run-user`: a unit of the user's systemd (Home Manager on Linux); `launchd`: a launchd job of its own (macOS, launchd.ts). */
export const DetachMode = z.enum(["systemd-run", "systemd-run-user", "launchd", "setsid", "none"]);
export type DetachMode = z.infer<typeof DetachMode>;

/** How to find a detached job again, also from a later agent process (persisted). */
export const JobHandle = z.discriminatedUnion("mode", [
  z.object({ mode: z.literal("systemd-run"), unit: z.string().min(1), user: z.boolean().optional() }),
  z.object({ mode: z.literal("launchd"), target: z.string().min(1) }),
  z.object({ mode: z.literal("process-group"), pgid: z.number().int().positive() }),
]);
export type JobHandle = z.infer<typeof JobHandle>;

export interface DetachedJobSpec {
  /** Used as the transient unit's name with systemd-run. */
  name: string;
  argv: readonly string[];
  cwd: string;
  /** stdout and stderr of the job are appended here. */
  logFile: string;
  /** The job's exit status is written here (atomically) when it ends. */
  exitFile: string;
  mode: DetachMode;
}

export type DetachedJobStart = { ok: true; handle: JobHandle } | { ok: false; error: string };

export interface DirectoryEntry {
  name: string;
  isFile: boolean;
  executable: boolean;
}

export interface FilesystemSpace {
  /** st_dev: two paths on one filesystem share it. */
  device: number;
  /** What a writer that is not root may still use (df's "Avail"). */
  freeBytes: number;
  totalBytes: number;
}

export interface HostRunner {
  /** Runs a program to completion. Never throws: failures are in the result. */
  run(argv: readonly string[], options?: RunOptions): Promise<RunResult>;
  /** Starts a job that outlives the agent (a switch that restarts the agent's own service). */
  startDetachedJob(spec: DetachedJobSpec): Promise<DetachedJobStart>;
  isJobAlive(handle: JobHandle): Promise<boolean>;
  /** Ends a detached job and everything it started; true when something was running. */
  stopJob(handle: JobHandle): Promise<boolean>;
  /** Follows every symlink (the running-system link points into /nix/store). */
  realPath(file: string): Promise<string>;
  readFile(file: string): Promise<Uint8Array>;
  listDirectory(dir: string): Promise<DirectoryEntry[]>;
  /** The size of a file in bytes, links followed. */
  fileSize(file: string): Promise<number>;
  /** The filesystem holding `file` (statfs, stat): its device, and its free and total bytes. Throws when `file` is missing. */
  filesystem(file: string): Promise<FilesystemSpace>;
  hostname(): string;
  /** Seconds since the host booted, or null where that cannot be read. */
  uptimeSeconds(): number | null;
  /** The operating system the agent runs on (`linux`, `darwin`, …). */
  hostOs(): string;
  /** A variable of the environment commands run with. */
  env(name: string): string | undefined;
}

export interface NodeRunnerOptions {
  /** The environment for every command; defaults to the agent's own. */
  env?: NodeJS.ProcessEnv;
  /** Directories prepended to PATH (config.extraPath). */
  extraPath?: readonly string[];
  /** Between TERM and KILL when stopping a process group. */
  killGraceMs?: number;
}

/**
 * The job wrapper: run the command with its output in the log, then publish
 * the exit status with a rename so a reader never sees a half-written file.
 */
export const JOB_WRAPPER_SCRIPT = [
  'log=$1; exitf=$2; shift 2',
  '"$@" >>"$log" 2>&1 </dev/null',
  "code=$?",
  'printf "%s\\n" "$code" >"$exitf.tmp" && mv -f "$exitf.tmp" "$exitf"',
].join("\n");

/** Variables a systemd-run job gets from the agent (systemd does not pass the caller's environment). */
export const SYSTEMD_RUN_PASSED_ENV = ["PATH", "HOME", "USER", "LANG", "LOCALE_ARCHIVE", "NIX_PATH", "NIX_CONFIG", "NIX_REMOTE", "TZDIR"];

/**
 * The systemd-run argv for a detached job; pure so it can be checked without systemd.
 * `--setenv=NAME` without a value makes systemd-run copy the value from its own
 * environment: values (NIX_CONFIG often holds access-tokens) never appear on a
 * command line, which any user can read in /proc. `nice` is the agent's own: a
 * child would inherit it, but a systemd-run unit is started by PID 1, so it is
 * passed on explicitly.
 */
export function systemdRunArgv(spec: DetachedJobSpec, env: NodeJS.ProcessEnv, nice = 0, user = false): string[] {
  const setenv = SYSTEMD_RUN_PASSED_ENV.flatMap((name) => (env[name] === undefined ? [] : [`--setenv=${name}`]));
  return [
    "systemd-run",
    ...(user ? ["--user"] : []),
    "--unit",
    spec.name,
    "--collect",
    "--quiet",
    "--service-type=exec",
    ...(nice !== 0 ? [`--nice=${nice}`] : []),
    `--working-directory=${spec.cwd}`,
    ...setenv,
    "--",
    "/bin/sh",
    "-c",
    JOB_WRAPPER_SCRIPT,
    "nixfleet-job",
    spec.logFile,
    spec.exitFile,
    ...spec.argv,
  ];
}

const systemctl = (handle: { user?: boolean | undefined }): string[] => (handle.user === true ? ["systemctl", "--user"] : ["systemctl"]);

const ALIVE_UNIT_STATES = new Set(["active", "activating", "deactivating", "reloading", "refreshing"]);

/** The real runner on node:child_process. */
export function createNodeRunner(options: NodeRunnerOptions = {}): HostRunner {
  const baseEnv = options.env ?? process.env;
  const extraPath = options.extraPath ?? [];
  // Where systemd put the agent's token (LoadCredential): the commands the agent runs (tests, rebuilds) never see it.
  const { CREDENTIALS_DIRECTORY: _credentials, ...inherited } = baseEnv;
  const env: NodeJS.ProcessEnv = {
    ...inherited,
    PATH: [...extraPath, baseEnv.PATH ?? "/usr/bin:/bin"].filter((p) => p !== "").join(path.delimiter),
  };
  const killGraceMs = options.killGraceMs ?? 5_000;

  const run = (argv: readonly string[], runOptions: RunOptions = {}): Promise<RunResult> =>
    runProcess(argv, runOptions, { ...env, ...runOptions.env }, killGraceMs);

  return {
    run,

    async startDetachedJob(spec) {
      await fs.mkdir(path.dirname(spec.logFile), { recursive: true });
      await fs.appendFile(spec.logFile, "");
      if (spec.mode === "systemd-run" || spec.mode === "systemd-run-user") {
        const user = spec.mode === "systemd-run-user";
        const result = await run(systemdRunArgv(spec, env, os.getPriority(), user));
        if (result.exitCode === 0) return { ok: true, handle: { mode: "systemd-run", unit: spec.name, ...(user ? { user } : {}) } };
        return { ok: false, error: describeFailure("systemd-run", result) };
      }
      if (spec.mode === "launchd") {
        const domain = launchdDomain(process.getuid?.() ?? 0);
        const plist = launchdPlistPath(spec);
        await fs.writeFile(plist, launchdPlist(spec, domain, env, os.getPriority()), { mode: 0o600 });
        const result = await run(launchctlBootstrapArgv(domain, plist));
        if (result.exitCode === 0) return { ok: true, handle: { mode: "launchd", target: `${domain}/${launchdLabel(spec)}` } };
        return { ok: false, error: describeFailure("launchctl bootstrap", result) };
      }
      // `setsid` and `none`: a new session and process group (what setsid(1) does,
      // but through node so it also works on macOS, which has no setsid binary).
      const started = await spawnDetached(
        ["/bin/sh", "-c", JOB_WRAPPER_SCRIPT, "nixfleet-job", spec.logFile, spec.exitFile, ...spec.argv],
        spec.cwd,
        env,
      );
      if ("error" in started) return { ok: false, error: started.error };
      return { ok: true, handle: { mode: "process-group", pgid: started.pid } };
    },

    async isJobAlive(handle) {
      if (handle.mode === "process-group") return groupAlive(handle.pgid);
      if (handle.mode === "launchd") return launchdJobRunning(await run(launchctlPrintArgv(handle.target)));
      const result = await run([...systemctl(handle), "show", "--property=ActiveState", "--value", handle.unit]);
      return ALIVE_UNIT_STATES.has(result.stdout.trim());
    },

    async stopJob(handle) {
      if (handle.mode === "launchd") {
        if (!launchdJobRunning(await run(launchctlPrintArgv(handle.target)))) return false;
        await run(launchctlBootoutArgv(handle.target));
        return true;
      }
      if (handle.mode === "systemd-run") {
        const result = await run([...systemctl(handle), "show", "--property=ActiveState", "--value", handle.unit]);
        if (!ALIVE_UNIT_STATES.has(result.stdout.trim())) return false;
        await run([...systemctl(handle), "stop", handle.unit]);
        return true;
      }
      if (!(await groupAlive(handle.pgid))) return false;
      signalGroup(handle.pgid, "SIGTERM");
      const deadline = Date.now() + killGraceMs;
      while ((await groupAlive(handle.pgid)) && Date.now() < deadline) await delay(50);
      if (await groupAlive(handle.pgid)) signalGroup(handle.pgid, "SIGKILL");
      return true;
    },

    realPath: (file) => fs.realpath(file),
    readFile: async (file) => new Uint8Array(await fs.readFile(file)),

    async listDirectory(dir) {
      const entries = await fs.readdir(dir, { withFileTypes: true });
      return Promise.all(
        entries.map(async (entry) => {
          const full = path.join(dir, entry.name);
          // Follow symlinks: a test directory built by Nix is full of links into the store.
          const stat = await fs.stat(full).catch(() => null);
          const executable = await fs
            .access(full, fsConstants.X_OK)
            .then(() => true)
            .catch(() => false);
          return { name: entry.name, isFile: stat?.isFile() ?? false, executable };
        }),
      );
    },

    fileSize: async (file) => (await fs.stat(file)).size,
    async filesystem(file) {
      const [stat, space] = await Promise.all([fs.stat(file), fs.statfs(file)]);
      return { device: stat.dev, freeBytes: space.bavail * space.bsize, totalBytes: space.blocks * space.bsize };
    },
    hostname: () => os.hostname(),
    uptimeSeconds: () => {
      const seconds = os.uptime();
      return Number.isFinite(seconds) && seconds >= 0 ? Math.floor(seconds) : null;
    },
    hostOs: () => process.platform,
    env: (name) => env[name],
  };
}

function runProcess(
  argv: readonly string[],
  options: RunOptions,
  env: NodeJS.ProcessEnv,
  killGraceMs: number,
): Promise<RunResult> {
  const maxCapture = options.maxCapture ?? 256 * 1024;
  return new Promise((resolve) => {
    const [program, ...args] = argv;
    if (program === undefined) {
      resolve({ exitCode: null, signal: null, stdout: "", stderr: "", spawnError: "empty command", aborted: false });
      return;
    }
    let stdout = "";
    let stderr = "";
    let exitCode: number | null = null;
    let exitSignal: string | null = null;
    let spawnError: string | null = null;
    let aborted = false;
    let settled = false;
    let killTimer: NodeJS.Timeout | undefined;
    let closeTimer: NodeJS.Timeout | undefined;

    let child: ChildProcess;
    try {
      // detached: the command leads its own process group, so stopping it
      // reaches everything it started (`process.kill(-pid)`).
      child = spawn(program, args, { cwd: options.cwd, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    } catch (error) {
      resolve({ exitCode: null, signal: null, stdout: "", stderr: "", spawnError: describeSpawnError(program, error), aborted: false });
      return;
    }

    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(killTimer);
      clearTimeout(closeTimer);
      options.signal?.removeEventListener("abort", onAbort);
      resolve({ exitCode, signal: exitSignal, stdout, stderr, spawnError, aborted });
    };

    const onAbort = () => {
      if (child.pid === undefined || settled) return;
      aborted = true;
      signalGroup(child.pid, "SIGTERM");
      killTimer = setTimeout(() => {
        if (child.pid !== undefined) signalGroup(child.pid, "SIGKILL");
      }, killGraceMs);
      killTimer.unref();
    };

    const capture = (stream: ProcessStream) => (data: string) => {
      if (stream === "stdout") stdout = (stdout + data).slice(-maxCapture);
      else stderr = (stderr + data).slice(-maxCapture);
      options.onOutput?.(stream, data);
    };
    child.stdout?.setEncoding("utf8").on("data", capture("stdout"));
    child.stderr?.setEncoding("utf8").on("data", capture("stderr"));

    child.on("error", (error) => {
      if (child.pid === undefined) {
        spawnError = describeSpawnError(program, error);
        finish();
      }
    });
    child.on("exit", (code, signal) => {
      exitCode = code;
      exitSignal = signal;
      // Whatever the command left running in its group ends with it; otherwise
      // a forgotten background process would hold the pipes (and us) open.
      if (child.pid !== undefined) signalGroup(child.pid, "SIGTERM");
      closeTimer = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        finish();
      }, 2_000);
      closeTimer.unref();
    });
    child.on("close", finish);

    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function spawnDetached(argv: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<{ pid: number } | { error: string }> {
  return new Promise((resolve) => {
    const [program, ...args] = argv as [string, ...string[]];
    let child: ChildProcess;
    try {
      child = spawn(program, args, { cwd, env, detached: true, stdio: "ignore" });
    } catch (error) {
      resolve({ error: describeSpawnError(program, error) });
      return;
    }
    child.once("error", (error) => resolve({ error: describeSpawnError(program, error) }));
    child.once("spawn", () => {
      child.unref();
      resolve({ pid: child.pid as number });
    });
  });
}

/** Whether any process of the group still runs. */
async function groupAlive(pgid: number): Promise<boolean> {
  try {
    process.kill(-pgid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
  // kill(0) also succeeds for a group of zombies, which is all that is left
  // under an init that does not reap orphans (as in some containers).
  return process.platform === "linux" ? hasLivingMember(pgid) : true;
}

async function hasLivingMember(pgid: number): Promise<boolean> {
  let entries: string[];
  try {
    entries = await fs.readdir("/proc");
  } catch {
    return true;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await fs.readFile(`/proc/${entry}/stat`, "utf8").catch(() => null);
    if (stat === null) continue;
    // "pid (comm) state ppid pgrp …"; comm may contain spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(fields[2]) === pgid && fields[0] !== "Z" && fields[0] !== "X") return true;
  }
  return false;
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is already gone, which is what we wanted.
  }
}

function describeSpawnError(program: string, error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ENOENT") return `${program}: not found (is it installed and on PATH?)`;
  if (code === "EACCES") return `${program}: permission denied (not executable?)`;
  return `${program}: could not start: ${error instanceof Error ? error.message : String(error)}`;
}

/** One line saying why a run failed: its own error text when it printed one. */
export function describeFailure(what: string, result: RunResult): string {
  if (result.spawnError !== null) return result.spawnError;
  const text = (result.stderr.trim() || result.stdout.trim()).slice(-2000);
  const how = result.exitCode !== null ? `exited with code ${result.exitCode}` : `was killed by ${result.signal ?? "a signal"}`;
  return text === "" ? `${what} ${how}` : `${what} ${how}: ${text}`;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
