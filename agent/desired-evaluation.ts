/**
 * One evaluation of the host's configuration at a commit of main: in a
 * worktree of the build cache (commit-worktree.ts), outside the agent's process
 * as the platform runs it (a capped transient unit on NixOS, a niced child
 * elsewhere), bounded by a deadline and an output cap. Nothing is built: the
 * toplevel's store path comes from `nix eval`, and what a build would do from
 * `nix build --dry-run` of its derivation.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { z } from "zod";
import { flakeLockHash } from "../common/lock-diff.ts";
import { StorePath, type DesiredChanges } from "../common/protocol.ts";
import { errorLines, NIX_IGNORED_ERROR } from "../common/text.ts";
import { addWorktree, buildCacheDir, fetchCommit, pruneWorktrees, removeWorktree, withCache, type WorktreeHost } from "./commit-worktree.ts";
import { runGit } from "./git.ts";
import type { EvaluationKey } from "./job-store.ts";
import type { HostPlatform } from "./platforms/platform.ts";
import { describeFailure, type RunResult } from "./runner.ts";
import { NIX_FLAKE_FLAGS } from "./system.ts";

export interface EvaluationHost extends WorktreeHost {
  platform: HostPlatform;
  stateDir: string;
}

/** The commit's identity for the cache, or why it could not be had (a failed fetch). */
export type ResolvedCommit = { ok: true; key: EvaluationKey } | { ok: false; error: string };

/** What one evaluation found; `cacheable` is false for what another try may change (a deadline, the memory cap). */
export type EvaluationOutcome =
  | { kind: "evaluated"; outPath: string; changes: DesiredChanges | null }
  | { kind: "failed"; error: string; cacheable: boolean }
  | { kind: "stopped" };

/** The flake output evaluated, without the flake's directory: part of the cache key. */
export function evaluatedAttr(platform: HostPlatform): string {
  return platform.systemInstallable("");
}

/** Fetches the commit into the build cache and reads its tree and flake.lock hash. */
export async function resolveCommit(host: EvaluationHost, commit: string, signal: AbortSignal): Promise<ResolvedCommit> {
  const cache = buildCacheDir(host.stateDir);
  const git = (args: string[]) => runGit(host.config, host.runner, args, { signal });
  return withCache(cache, async () => {
    const fetched = await fetchCommit({ ...host, say: () => {} }, cache, commit, git);
    if (fetched !== null) return { ok: false, error: fetched };
    return keyAt(git, cache, commit, host.platform);
  });
}

/** The cache key of `rev` in the repository at `dir`. */
export async function keyAt(
  git: (args: string[]) => Promise<RunResult>,
  dir: string,
  rev: string,
  platform: HostPlatform,
): Promise<ResolvedCommit> {
  const tree = await git(["-C", dir, "rev-parse", "--verify", `${rev}^{tree}`]);
  if (tree.exitCode !== 0) return { ok: false, error: describeFailure("git rev-parse", tree) };
  const lock = await git(["-C", dir, "show", `${rev}:flake.lock`]);
  const lockHash = lock.exitCode === 0 ? await flakeLockHash(lock.stdout) : "none";
  return { ok: true, key: { tree: tree.stdout.trim(), lockHash, attr: evaluatedAttr(platform) } };
}

const Evaluated = z.object({ out: StorePath, drv: z.string().regex(/^\/nix\/store\/[^/]+\.drv$/) });

export interface EvaluationLimitsConfig {
  memoryMax: string | null;
  timeoutSeconds: number;
  outputLimitBytes: number;
}

/** Evaluates the commit in a worktree of its own, removed afterwards. */
export async function evaluateCommit(
  host: EvaluationHost,
  commit: string,
  limits: EvaluationLimitsConfig,
  shutdown: AbortSignal,
): Promise<EvaluationOutcome> {
  const cache = buildCacheDir(host.stateDir);
  const id = randomBytes(6).toString("hex");
  const workRoot = path.join(host.stateDir, "desired", "work");
  const work = path.join(workRoot, id);
  const src = path.join(work, "src");
  const git = (args: string[]) => runGit(host.config, host.runner, args, { signal: shutdown });
  // One deadline for the evaluation and its dry run together.
  const deadline = AbortSignal.timeout(limits.timeoutSeconds * 1000);
  const bounds = { ...limits, deadline };
  try {
    const added = await withCache(cache, async () => {
      // One evaluation at a time per agent: anything here is what a crash or a reboot left behind.
      await fs.rm(workRoot, { recursive: true, force: true });
      await pruneWorktrees(host, cache);
      return addWorktree(git, cache, src, commit);
    });
    if (shutdown.aborted) return { kind: "stopped" };
    if (added.exitCode !== 0) return { kind: "failed", error: describeFailure("git worktree add", added), cacheable: false };

    const installable = host.platform.systemInstallable(src);
    const evalArgv = [host.config.tools.nix, ...NIX_FLAKE_FLAGS, "eval", "--json", installable, "--apply", "d: { out = d.outPath; drv = d.drvPath; }"];
    const evaluated = await runBounded(host, `nixfleet-desired-${id}`, src, evalArgv, bounds, shutdown);
    if (evaluated.kind !== "ran") return evaluated;
    const parsed = parseEvaluated(evaluated.result.stdout);
    if (parsed === null) return { kind: "failed", error: `nix eval printed no store path: ${evaluated.result.stdout.slice(0, 300)}`, cacheable: false };
    const changes = await dryRun(host, `nixfleet-desired-${id}-dry-run`, src, parsed.drv, bounds, shutdown);
    if (shutdown.aborted) return { kind: "stopped" };
    return { kind: "evaluated", outPath: parsed.out, changes };
  } finally {
    await withCache(cache, () => removeWorktree(host, cache, src, work));
  }
}

type BoundedRun = { kind: "ran"; result: RunResult } | Exclude<EvaluationOutcome, { kind: "evaluated" }>;
type Bounds = EvaluationLimitsConfig & { deadline: AbortSignal };

/**
 * Runs one nix command the platform's way, killed at the deadline or once its output passes the
 * cap. A nix that exits non-zero is a failed evaluation with nix's own first error line.
 */
async function runBounded(
  host: EvaluationHost,
  name: string,
  cwd: string,
  argv: string[],
  limits: Bounds,
  shutdown: AbortSignal,
): Promise<BoundedRun> {
  const { memoryMax, timeoutSeconds, deadline } = limits;
  const { argv: wrapped, stopArgv } = host.platform.evaluationCommand(argv, { name, cwd, memoryMax, timeoutSeconds }, host.runner);
  const overflow = new AbortController();
  let printed = 0;
  const result = await host.runner.run(wrapped, {
    cwd,
    signal: AbortSignal.any([shutdown, deadline, overflow.signal]),
    maxCapture: 64 * 1024,
    onOutput: (_stream, data) => {
      printed += Buffer.byteLength(data);
      if (printed > limits.outputLimitBytes) overflow.abort();
    },
  });
  if (result.aborted && stopArgv !== null) await host.runner.run(stopArgv);
  if (shutdown.aborted) return { kind: "stopped" };
  if (result.aborted && overflow.signal.aborted) {
    return { kind: "failed", error: `the evaluation printed more than ${limits.outputLimitBytes} bytes and was killed`, cacheable: false };
  }
  // systemd enforces the deadline itself too (RuntimeMaxSec) and says so on systemd-run's stderr.
  if ((result.aborted && deadline.aborted) || /Finished with result: timeout/.test(result.stderr)) {
    return { kind: "failed", error: `the evaluation passed its deadline (${limits.timeoutSeconds} s) and was killed`, cacheable: false };
  }
  if (/Finished with result: oom-kill/.test(result.stderr)) {
    return { kind: "failed", error: `the evaluation ran out of memory (MemoryMax=${limits.memoryMax ?? "none"}) and was killed`, cacheable: false };
  }
  if (result.exitCode === 0) return { kind: "ran", result };
  if (result.spawnError !== null || result.exitCode === null) return { kind: "failed", error: describeFailure("nix eval", result), cacheable: false };
  return { kind: "failed", error: nixError(result.stderr || result.stdout, cwd) ?? describeFailure("nix eval", result), cacheable: true };
}

/**
 * Nix's first `error:` line (whole: the attribute it names is the point), with the worktree's
 * throwaway path put as `.`, so the same failure reads the same from one evaluation to the next.
 */
export function nixError(text: string, worktree: string): string | null {
  const lines = errorLines(text.replaceAll(`git+file://${worktree}`, ".").replaceAll(worktree, "."));
  const line = lines.find((l) => /^error\b/i.test(l) && !NIX_IGNORED_ERROR.test(l)) ?? lines[0];
  return line === undefined ? null : line.replace(/^error:\s*/i, "").slice(0, 2000);
}

function parseEvaluated(stdout: string): z.infer<typeof Evaluated> | null {
  try {
    const parsed = Evaluated.safeParse(JSON.parse(stdout));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** What building the system would take here; null when the dry run says nothing usable. */
async function dryRun(
  host: EvaluationHost,
  name: string,
  cwd: string,
  drv: string,
  limits: Bounds,
  shutdown: AbortSignal,
): Promise<DesiredChanges | null> {
  const argv = [host.config.tools.nix, ...NIX_FLAKE_FLAGS, "build", "--dry-run", drv];
  const ran = await runBounded(host, name, cwd, argv, limits, shutdown);
  if (ran.kind !== "ran") {
    host.say(`no dry run of ${drv}: ${ran.kind === "failed" ? ran.error : "stopped"}`);
    return null;
  }
  host.say(`dry run of ${drv}: ${ran.result.stderr.trim() || "nothing to build or fetch"}`);
  return parseDryRun(ran.result.stderr);
}

const MIB = 1024 * 1024;

/**
 * Counts the paths `nix build --dry-run` lists: "this derivation will be built:" / "these 3
 * derivations will be built:" and "this path will be fetched (…):" / "these 2 paths will be
 * fetched (4.29 MiB download, 4.29 MiB unpacked):", each followed by its paths indented, and takes
 * the download size from the second header. Nothing listed: nothing to do.
 */
export function parseDryRun(stderr: string): DesiredChanges {
  let section: "toBuild" | "toFetch" | null = null;
  const changes = { toBuild: 0, toFetch: 0, downloadBytes: 0 as number | null };
  for (const line of stderr.split("\n")) {
    if (/^th(is|ese)\b.* will be built:/.test(line)) section = "toBuild";
    else if (/^th(is|ese)\b.* will be fetched/.test(line)) {
      section = "toFetch";
      const download = /\(([\d.]+) MiB download\b/.exec(line);
      // A header in a form this does not read: the size is unknown rather than 0.
      changes.downloadBytes = download ? Math.round(Number(download[1]) * MIB) : null;
    } else if (section !== null && /^\s+\/nix\/store\//.test(line)) changes[section]++;
    else section = null;
  }
  return changes;
}
