/**
 * `pull`: bring the agent's own clone to exactly origin/<branch>, or to the
 * delivery's `commit` when it names one (the control plane's chosen commit,
 * not whatever the branch has moved on to since; it must be on the branch).
 * The clone belongs to the agent, so local changes are thrown away rather
 * than merged. Exit code 0 is not proof: afterwards HEAD must equal the
 * target and the tree must be clean.
 */
import * as fs from "node:fs/promises";
import { hasClone, headCommit, runGit } from "../git.ts";
import { describeFailure, type RunResult } from "../runner.ts";
import { cancelled, failed, succeeded, type CommandContext, type CommandOutcome } from "./context.ts";

export async function runPull(ctx: CommandContext): Promise<CommandOutcome> {
  const { config, runner, store } = ctx;
  const clone = store.cloneDir;
  const branch = config.branch;
  const remoteRef = `refs/remotes/origin/${branch}`;
  const exact = ctx.delivery.commit;
  const before = await headCommit(config, runner, clone);
  const commitBefore = before.value;

  // Each step: narrate, run with output streamed, stop at the first failure.
  const step = async (args: string[], what = `git ${args[0] === "-C" ? args[2] : args[0]}`): Promise<RunResult | CommandOutcome> => {
    ctx.say(`$ git ${args.join(" ")}`);
    const result = await runGit(config, runner, args, { signal: ctx.cancel, onOutput: ctx.output });
    if (result.aborted) return cancelled({ commitBefore, commitAfter: null });
    if (result.exitCode !== 0) return failed(describeFailure(what, result), { commitBefore, commitAfter: null }, result.exitCode);
    return result;
  };

  if (!(await hasClone(runner, clone))) {
    // Clone next to the final place and move it in only when it worked, so a
    // failed first pull leaves no half clone behind.
    const partial = `${clone}.partial`;
    await fs.rm(partial, { recursive: true, force: true });
    const cloned = await step(["clone", "--no-checkout", "--origin", "origin", config.repoUrl, partial], "git clone");
    if (!isRun(cloned)) {
      await fs.rm(partial, { recursive: true, force: true });
      return cloned;
    }
    await fs.rm(clone, { recursive: true, force: true });
    await fs.rename(partial, clone);
  } else {
    // The configured URL wins over whatever the clone had (the option may have changed).
    const seturl = await step(["-C", clone, "remote", "set-url", "origin", config.repoUrl]);
    if (!isRun(seturl)) return seturl;
  }

  const fetched = await step(["-C", clone, "fetch", "--prune", "--no-tags", "origin", `+refs/heads/${branch}:${remoteRef}`]);
  if (!isRun(fetched)) return fetched;
  if (exact !== null) {
    const notOnBranch = await checkOnBranch(ctx, clone, exact, remoteRef);
    if (notOnBranch !== null) return failed(notOnBranch, { commitBefore, commitAfter: null });
  }
  const target = exact ?? remoteRef;
  for (const args of [
    ["-C", clone, "checkout", "--force", "-B", branch, target],
    ["-C", clone, "reset", "--hard", target],
    ["-C", clone, "clean", "-ffdx"],
  ]) {
    const result = await step(args);
    if (!isRun(result)) return result;
  }

  // Verify instead of trusting the exit codes.
  const head = await headCommit(config, runner, clone);
  const remote = await runGit(config, runner, ["-C", clone, "rev-parse", "--verify", `${target}^{commit}`]);
  const targetSha = remote.stdout.trim();
  const targetName = exact ?? `origin/${branch}`;
  const status = await runGit(config, runner, ["-C", clone, "status", "--porcelain", "--untracked-files=normal"]);
  const result = { commitBefore, commitAfter: head.value };
  if (head.value === null) return failed(`after the pull the clone has no readable HEAD: ${head.reason}`, result);
  if (remote.exitCode !== 0 || head.value !== targetSha || (exact !== null && head.value !== exact)) {
    return failed(`after the pull HEAD is ${head.value} but ${targetName} is ${targetSha || "unreadable"}`, result);
  }
  if (status.exitCode !== 0 || status.stdout.trim() !== "") {
    return failed(`the clone still has local changes after the reset:\n${status.stdout.trim() || describeFailure("git status", status)}`, result);
  }
  ctx.say(commitBefore === head.value ? `already at ${head.value}` : `now at ${head.value} (was ${commitBefore ?? "no clone"})`);
  return succeeded(result);
}

/** Why the commit may not be pulled (not fetched, or not on the branch), or null when it is on origin/<branch>. */
async function checkOnBranch(ctx: CommandContext, clone: string, commit: string, remoteRef: string): Promise<string | null> {
  const { config, runner } = ctx;
  const branch = config.branch;
  const present = await runGit(config, runner, ["-C", clone, "cat-file", "-e", `${commit}^{commit}`]);
  if (present.exitCode !== 0) {
    return `commit ${commit} is not on origin/${branch}: it is not in the repository after fetching ${branch} (a commit of another branch, or one that was force-pushed away)`;
  }
  ctx.say(`$ git -C ${clone} merge-base --is-ancestor ${commit} ${remoteRef}`);
  const ancestor = await runGit(config, runner, ["-C", clone, "merge-base", "--is-ancestor", commit, remoteRef]);
  if (ancestor.exitCode === 0) return null;
  if (ancestor.exitCode === 1) return `commit ${commit} is not on origin/${branch}: it is not an ancestor of the branch's head`;
  return describeFailure("git merge-base", ancestor);
}

function isRun(value: RunResult | CommandOutcome): value is RunResult {
  return "stdout" in value;
}
