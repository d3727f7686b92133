/**
 * A commit checked out where the host does not notice: fetched into a bare
 * cache of the repository under the state dir (`build/cache.git`, kept so the
 * next fetch is incremental) and checked out into a git worktree of that cache,
 * removed afterwards. The agent's own clone, the commit it reports and the
 * running system are never touched. Used by the `build` command and by the
 * desired-system evaluation (desired.ts), which share the one cache.
 */
import * as fs from "node:fs/promises";
import * as path from "node:path";
import type { AgentConfig } from "../common/agent-config.ts";
import { runGit } from "./git.ts";
import { describeFailure, type HostRunner, type RunResult } from "./runner.ts";

export interface WorktreeHost {
  config: AgentConfig;
  runner: HostRunner;
  say(line: string): void;
}

export function buildCacheDir(stateDir: string): string {
  return path.join(stateDir, "build", "cache.git");
}

/**
 * The build and the evaluation may use the cache at the same moment: their fetches and
 * worktree changes take turns, so two `git` runs never race for the cache's locks.
 */
const cacheTurns = new Map<string, Promise<unknown>>();

export function withCache<T>(cache: string, work: () => Promise<T>): Promise<T> {
  const previous = cacheTurns.get(cache) ?? Promise.resolve();
  const next = previous.then(work, work);
  const settled = next.catch(() => undefined);
  cacheTurns.set(cache, settled);
  void settled.then(() => {
    if (cacheTurns.get(cache) === settled) cacheTurns.delete(cache);
  });
  return next;
}

export function pathExists(runner: HostRunner, file: string): Promise<boolean> {
  return runner.realPath(file).then(
    () => true,
    () => false,
  );
}

/**
 * Makes the commit present in the cache. Asked for by its sha first (GitHub and
 * git's protocol v2 serve any reachable commit, including an update PR's head
 * that is on no branch of ours); a server that refuses that gets every branch
 * fetched instead. Returns why it failed, or null.
 */
export async function fetchCommit(
  host: WorktreeHost,
  cache: string,
  commit: string,
  git: (args: string[]) => Promise<RunResult>,
): Promise<string | null> {
  const url = host.config.repoUrl;
  if (!(await pathExists(host.runner, path.join(cache, "HEAD")))) {
    await fs.mkdir(path.dirname(cache), { recursive: true });
    const init = await git(["init", "--quiet", "--bare", cache]);
    if (init.exitCode !== 0) return describeFailure("git init", init);
  }
  const present = async () =>
    (await runGit(host.config, host.runner, ["-C", cache, "cat-file", "-e", `${commit}^{commit}`])).exitCode === 0;
  if (await present()) {
    host.say(`${commit} is already in the build cache`);
    return null;
  }
  const bySha = await git(["-C", cache, "fetch", "--no-tags", url, commit]);
  if (bySha.aborted) return "the fetch was stopped";
  if (bySha.exitCode === 0 && (await present())) return null;
  const byBranches = await git(["-C", cache, "fetch", "--no-tags", "--prune", url, "+refs/heads/*:refs/remotes/origin/*"]);
  if (byBranches.aborted) return "the fetch was stopped";
  if (byBranches.exitCode !== 0) return describeFailure("git fetch", byBranches);
  if (await present()) return null;
  return `commit ${commit} is not in ${url}: neither fetching it by its sha nor fetching every branch brought it`;
}

/** `git worktree add --detach` of the commit at `dir`. */
export async function addWorktree(
  git: (args: string[]) => Promise<RunResult>,
  cache: string,
  dir: string,
  commit: string,
): Promise<RunResult> {
  return git(["-C", cache, "worktree", "add", "--detach", "--force", dir, commit]);
}

/** Removes a worktree (if it is there) and the directory `work` that held it. */
export async function removeWorktree(host: WorktreeHost, cache: string, src: string, work: string): Promise<void> {
  if (await pathExists(host.runner, src)) {
    await runGit(host.config, host.runner, ["-C", cache, "worktree", "remove", "--force", src]);
  }
  await fs.rm(work, { recursive: true, force: true });
  await pruneWorktrees(host, cache);
}

/** Forgets worktrees whose directories are gone (a run the agent did not see to its end left them). */
export async function pruneWorktrees(host: WorktreeHost, cache: string): Promise<void> {
  if (await pathExists(host.runner, path.join(cache, "HEAD"))) await runGit(host.config, host.runner, ["-C", cache, "worktree", "prune"]);
}
