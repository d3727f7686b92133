/**
 * `build`: build the host's configuration at a given commit and compare it
 * with the running system, changing nothing on the host.
 *
 * The commit is fetched into a bare cache of the repository under the state
 * dir (`build/cache.git`, kept so the next fetch is incremental) and checked
 * out into a git worktree of that cache (`build/work/<command>/src`), removed
 * afterwards. The agent's own clone, the commit it reports and the running
 * system are never touched. The build's out-link (`build/work/<command>/result`)
 * keeps the result alive only while the build and the diff run; it goes with
 * the worktree, so no GC root outlives the command.
 */
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { COMMAND_DEADLINE_SECONDS, type BuildResult, type OutputStream } from "../../common/protocol.ts";
import { compareClosures } from "../closure-compare.ts";
import { checkStoreSpace } from "../disk-space.ts";
import { addWorktree, buildCacheDir, fetchCommit, pruneWorktrees, removeWorktree, withCache } from "../commit-worktree.ts";
import { runGit } from "../git.ts";
import { describeFailure, type RunResult } from "../runner.ts";
import { NIX_FLAKE_FLAGS, readCurrentSystem } from "../system.ts";
import { cancelled, failed, succeeded, type CommandContext, type CommandOutcome } from "./context.ts";

/**
 * What a build streams to the control plane at most: nix can print megabytes in a
 * mass rebuild, and the control plane keeps only the first MiB of a command's
 * output anyway. The end of a failed build's output is in `errorTail`.
 */
export const BUILD_OUTPUT_LIMIT = 1024 * 1024;
const ERROR_TAIL_LINES = 40;
const ERROR_TAIL_CHARS = 4000;
/** `CommandEvent.finished.error`'s bound. */
const ERROR_MAX_CHARS = 4000;
/** The build's evaluation runs at a low priority, so the host's own work goes first. */
const NICE = ["nice", "-n", "10"] as const;

export async function runBuild(ctx: CommandContext): Promise<CommandOutcome> {
  const commit = ctx.delivery.commit;
  if (commit === null) return failed("a build needs a commit to build, and this one came without");

  const deadline = deadlineSignal(ctx.delivery.deadlineAt);
  const signal = AbortSignal.any([ctx.cancel, deadline]);
  const started = performance.now();
  const dirs = buildDirs(ctx.store.stateDir, ctx.delivery.id);
  const output = cappedOutput(BUILD_OUTPUT_LIMIT, ctx.output, ctx.say);
  // Said once the worktree is there: System matches a failed build to main by tree, not by commit.
  let tree: string | null = null;
  const base = (): BuildResult => ({
    commit,
    tree,
    storePath: null,
    durationMs: Math.round(performance.now() - started),
    comparedWith: null,
    closureDiff: null,
  });
  // A build fills the store as a switch does: refused up front when the store's filesystem is short (disk-space.ts).
  const storeShort = await checkStoreSpace(ctx.config, ctx.runner, ctx.say);
  if (storeShort !== null) return failed(storeShort, { build: base() });
  const stopped = (): CommandOutcome =>
    ctx.cancel.aborted
      ? cancelled({ build: base() })
      : failed(`the build passed its deadline (${ctx.delivery.deadlineAt}) and was killed`, { build: base() });

  try {
    const checkedOut = await checkOut(ctx, dirs, commit, signal, output);
    if (checkedOut === "stopped") return stopped();
    if ("failed" in checkedOut) return failed(checkedOut.failed, { build: base() });
    tree = checkedOut.tree;

    const built = await nixBuild(ctx, ctx.platform.systemInstallable(dirs.src), dirs.result, dirs.src, signal, output);
    if (built === "stopped") return stopped();
    if ("failed" in built) {
      if (built.errorTail === "") return failed(built.failed, { build: base() }, built.exitCode);
      const headline = `the build of ${commit} failed (${built.failed}):\n`;
      // The error is bounded from its start, so the tail is shortened here: its last lines are the ones that say why.
      const error = headline + built.errorTail.slice(-(ERROR_MAX_CHARS - headline.length));
      return failed(error, { build: { ...base(), errorTail: built.errorTail } }, built.exitCode);
    }
    const storePath = built.storePath;
    const durationMs = Math.round(performance.now() - started);
    ctx.say(`built ${storePath} in ${(durationMs / 1000).toFixed(1)} s`);

    const running = await readCurrentSystem(ctx.platform, ctx.runner);
    const compared = running.value === null ? running : await compareClosures(ctx, running.value, storePath, signal, output);
    if (signal.aborted) return stopped();
    const build: BuildResult = {
      commit,
      tree,
      storePath,
      durationMs,
      comparedWith: running.value,
      closureDiff: compared.value,
      ...(compared.value === null ? { closureDiffProblem: compared.reason.slice(0, 1000) } : {}),
    };
    if (compared.value !== null) {
      const diff = compared.value;
      ctx.say(
        `${diff.entries.length + diff.omitted} package(s) differ from the running system; closure size ${formatDelta(diff.totalSizeDelta)}`,
      );
    } else {
      ctx.say(`no closure diff: ${compared.reason}`);
    }
    return succeeded({ build });
  } finally {
    await withCache(dirs.cache, () => removeWorktree(ctx, dirs.cache, dirs.src, dirs.work));
  }
}

/**
 * Fetches the commit into the build cache and checks it out at `dirs.src` (after clearing what an
 * earlier run left): the checkout's git tree, "stopped", or why it failed.
 */
export async function checkOut(
  ctx: CommandContext,
  dirs: BuildDirs,
  commit: string,
  signal: AbortSignal,
  output: (stream: OutputStream, data: string) => void,
): Promise<{ tree: string | null } | { failed: string } | "stopped"> {
  const git = async (args: string[]): Promise<RunResult> => {
    ctx.say(`$ git ${args.join(" ")}`);
    return runGit(ctx.config, ctx.runner, args, { signal, onOutput: output });
  };
  const { fetched, added } = await withCache(dirs.cache, async () => {
    await removeLeftovers(ctx, dirs);
    const fetched = await fetchCommit(ctx, dirs.cache, commit, git);
    return { fetched, added: fetched === null && !signal.aborted ? await addWorktree(git, dirs.cache, dirs.src, commit) : null };
  });
  if (signal.aborted) return "stopped";
  if (fetched !== null) return { failed: fetched };
  if (added === null || added.aborted) return "stopped";
  if (added.exitCode !== 0) return { failed: describeFailure("git worktree add", added) };
  const treeOf = await runGit(ctx.config, ctx.runner, ["-C", dirs.src, "rev-parse", "--verify", "HEAD^{tree}"], { signal });
  return { tree: treeOf.exitCode === 0 && /^[0-9a-f]{40}$/.test(treeOf.stdout.trim()) ? treeOf.stdout.trim() : null };
}

/** `nix build` of one installable at a low priority, its result linked at `outLink`: the store path, "stopped", or how it failed. */
export async function nixBuild(
  ctx: CommandContext,
  installable: string,
  outLink: string,
  cwd: string,
  signal: AbortSignal,
  output: (stream: OutputStream, data: string) => void,
): Promise<{ storePath: string } | { failed: string; errorTail: string; exitCode: number | null } | "stopped"> {
  const argv = [ctx.config.tools.nix, ...NIX_FLAKE_FLAGS, "build", "--print-build-logs", "--out-link", outLink, installable];
  const niced = (await ctx.runner.run([...NICE, "true"])).exitCode === 0 ? [...NICE, ...argv] : argv;
  ctx.say(`$ ${niced.join(" ")}`);
  const built = await ctx.runner.run(niced, { cwd, signal, onOutput: output });
  if (built.aborted) return "stopped";
  if (built.exitCode !== 0) {
    const how = built.exitCode !== null ? `exited with code ${built.exitCode}` : `was killed by ${built.signal ?? "a signal"}`;
    return { failed: `nix build ${how}`, errorTail: lastLines(built.spawnError ?? (built.stderr || built.stdout)), exitCode: built.exitCode };
  }
  const storePath = await ctx.runner.realPath(outLink).catch(() => null);
  if (storePath === null || !storePath.startsWith("/")) return { failed: `nix build exited 0 but left no result at ${outLink}`, errorTail: "", exitCode: 0 };
  return { storePath };
}

export interface BuildDirs {
  /** Bare cache of the repository, kept between builds. */
  cache: string;
  /** Everything of one build, removed after it. */
  work: string;
  src: string;
  result: string;
}

export function buildDirs(stateDir: string, commandId: string): BuildDirs {
  const root = path.join(stateDir, "build");
  const work = path.join(root, "work", commandId);
  return { cache: buildCacheDir(stateDir), work, src: path.join(work, "src"), result: path.join(work, "result") };
}

/** A build the agent did not see to its end (it crashed, the host rebooted) left its worktree behind. */
async function removeLeftovers(ctx: CommandContext, dirs: BuildDirs): Promise<void> {
  await fs.rm(path.dirname(dirs.work), { recursive: true, force: true });
  await pruneWorktrees(ctx, dirs.cache);
}

/** Aborts at the command's deadline: the control plane declares it timed out then, so the build must not go on. */
export function deadlineSignal(deadlineAt: string): AbortSignal {
  const at = Date.parse(deadlineAt);
  const ms = Number.isFinite(at) ? at - Date.now() : COMMAND_DEADLINE_SECONDS.build * 1000;
  return AbortSignal.timeout(Math.max(0, ms));
}

/** Passes output on up to `limit` characters, then says once that the rest is left out. */
export function cappedOutput(
  limit: number,
  output: (stream: OutputStream, data: string) => void,
  say: (line: string) => void,
): (stream: OutputStream, data: string) => void {
  let sent = 0;
  let capped = false;
  return (stream, data) => {
    if (capped) return;
    const room = limit - sent;
    if (data.length <= room) {
      sent += data.length;
      output(stream, data);
      return;
    }
    if (room > 0) output(stream, data.slice(0, room));
    sent = limit;
    capped = true;
    say(`[build output beyond ${limit} characters left out; a failed build still reports its last lines]`);
  };
}

export function lastLines(text: string): string {
  return text.trimEnd().split("\n").slice(-ERROR_TAIL_LINES).join("\n").slice(-ERROR_TAIL_CHARS);
}

function formatDelta(bytes: number): string {
  return `${bytes >= 0 ? "+" : "-"}${(Math.abs(bytes) / 1024).toFixed(1)} KiB`;
}
