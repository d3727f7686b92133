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

export async function currentBranch(config: AgentConfig, runner: HostRunner, cloneDir: string): Promise<Known<string>> {
  if (!(await hasClone(runner, cloneDir))) return unknown(NO_CLONE);
  const result = await runGit(config, runner, ["-C", cloneDir, "symbolic-ref", "--quiet", "--short", "HEAD"]);
  if (result.exitCode === 0 && result.stdout.trim() !== "") return known(result.stdout.trim().slice(0, 255));
  if (result.exitCode === 1 && result.spawnError === null) return unknown("the clone is on a detached HEAD");
  return unknown(describeFailure("git symbolic-ref HEAD", result));
}

/** Local changes in the clone (tracked or untracked), or null when git cannot say. */
export async function isDirty(config: AgentConfig, runner: HostRunner, cloneDir: string): Promise<boolean | null> {
  if (!(await hasClone(runner, cloneDir))) return null;
  const result = await runGit(config, runner, ["-C", cloneDir, "status", "--porcelain", "--untracked-files=normal"]);
  if (result.exitCode !== 0) return null;
  return result.stdout.trim() !== "";
}
