/** Small questions the agent asks git about its own clone. */
import * as path from "node:path";
import type { AgentConfig } from "../common/agent-config.ts";
import { describeFailure, type HostRunner, type RunOptions, type RunResult } from "./runner.ts";
import { known, unknown, type Known } from "./known.ts";

/**
 * Never prompt: the agent has no terminal, a prompt would hang the pull forever. No optional locks:
 * the report's `git status` would otherwise take the clone's index.lock to refresh the index, and a
 * person's `git commit` in the clone at that moment fails with "index.lock: File exists".
 */
const GIT_ENV = { GIT_TERMINAL_PROMPT: "0", GIT_ASKPASS: "", SSH_ASKPASS: "", GCM_INTERACTIVE: "never", GIT_OPTIONAL_LOCKS: "0" };

export function runGit(config: AgentConfig, runner: HostRunner, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return runner.run([config.tools.git, ...args], { ...options, env: { ...GIT_ENV, ...options.env } });
}

export async function hasClone(runner: HostRunner, cloneDir: string): Promise<boolean> {
  return runner
    .realPath(path.join(cloneDir, ".git"))
    .then(() => true)
    .catch(() => false);
}

const NO_CLONE = "no clone yet: the agent clones the repository on its first pull";

export async function headCommit(config: AgentConfig, runner: HostRunner, cloneDir: string): Promise<Known<string>> {
  if (!(await hasClone(runner, cloneDir))) return unknown(NO_CLONE);
  const result = await runGit(config, runner, ["-C", cloneDir, "rev-parse", "--verify", "HEAD^{commit}"]);
  const sha = result.stdout.trim();
  if (result.exitCode === 0 && /^[0-9a-f]{40}$/.test(sha)) return known(sha);
  return unknown(describeFailure("git rev-parse HEAD", result));
}

/** The git tree of the clone's HEAD: a manifest made for another commit of the same tree names the same systems. */
export async function headTree(config: AgentConfig, runner: HostRunner, cloneDir: string): Promise<Known<string>> {
  const result = await runGit(config, runner, ["-C", cloneDir, "rev-parse", "--verify", "HEAD^{tree}"]);
  const sha = result.stdout.trim();
  if (result.exitCode === 0 && /^[0-9a-f]{40}$/.test(sha)) return known(sha);
  return unknown(describeFailure("git rev-parse HEAD^{tree}", result));
}

/** What the report says about the clone: its commit, its branch and whether it has local changes. */
export interface CloneStatus {
  commit: Known<string>;
  branch: Known<string>;
  /** Local changes (tracked or untracked), or null when git cannot say. */
  dirty: boolean | null;
}

/**
 * The clone's commit, branch and local changes from one `git status` (porcelain v2 with its branch
 * headers) instead of a process for each. Ahead/behind counts are not wanted: not computing them
 * keeps a clone far behind its upstream as quick as one that is not.
 */
export async function cloneStatus(config: AgentConfig, runner: HostRunner, cloneDir: string): Promise<CloneStatus> {
  if (!(await hasClone(runner, cloneDir))) return { commit: unknown(NO_CLONE), branch: unknown(NO_CLONE), dirty: null };
  const result = await runGit(config, runner, ["-C", cloneDir, "status", "--porcelain=v2", "--branch", "--no-ahead-behind", "--untracked-files=normal"]);
  if (result.exitCode !== 0) {
    const why = unknown(describeFailure("git status", result));
    return { commit: why, branch: why, dirty: null };
  }
  return parseCloneStatus(result.stdout);
}

/** `git status --porcelain=v2 --branch` → the clone's status (see git-status(1), "Porcelain Format Version 2"). */
export function parseCloneStatus(stdout: string): CloneStatus {
  const lines = stdout.split("\n").filter((line) => line !== "");
  const header = (name: string) => lines.find((line) => line.startsWith(`# branch.${name} `))?.slice(`# branch.${name} `.length);
  const oid = header("oid");
  const head = header("head");
  return {
    commit:
      oid !== undefined && /^[0-9a-f]{40}$/.test(oid)
        ? known(oid)
        : unknown(oid === "(initial)" ? "the clone has no commit yet" : "git status named no commit"),
    branch:
      head === undefined
        ? unknown("git status named no branch")
        : head === "(detached)"
          ? unknown("the clone is on a detached HEAD")
          : known(head.slice(0, 255)),
    dirty: lines.some((line) => !line.startsWith("# ")),
  };
}

/** Local changes in the clone (tracked or untracked), or null when git cannot say. */
export async function isDirty(config: AgentConfig, runner: HostRunner, cloneDir: string): Promise<boolean | null> {
  return (await cloneStatus(config, runner, cloneDir)).dirty;
}
