/**
 * `switch`, `pull-switch` and `rollback`: run the platform's rebuild tool as a
 * detached job (see detached-jobs.ts), then check the running-system link.
 * Exit code 0 is not proof: a switch succeeded only when the link points at
 * what the clone builds; a rollback only when the link moved. What the clone
 * builds is evaluated before the switch starts, so the check after it is one
 * readlink and the result (with the report that follows) goes out right away.
 */
import { StorePath, type CommandResult } from "../../common/protocol.ts";
import { activateByBoot, activationOf } from "../activation.ts";
import { keyAt } from "../desired-evaluation.ts";
import { checkBootSpace, checkStoreSpace } from "../disk-space.ts";
import type { DetachedJobs, JobEnd } from "../detached-jobs.ts";
import { hasClone, headCommit, isDirty, runGit } from "../git.ts";
import type { JobMeta } from "../job-store.ts";
import { known } from "../known.ts";
import { testsConfigured } from "../report.ts";
import { evaluateSystem, readCurrentSystem } from "../system.ts";
import { cancelled, failed, succeeded, type CommandContext, type CommandEnd, type CommandOutcome, type HostContext } from "./context.ts";
import { runPull } from "./pull.ts";
import { runTests } from "./test.ts";

export async function runSwitch(ctx: CommandContext, pull?: JobMeta["pull"]): Promise<CommandEnd> {
  const { config, platform, runner, store } = ctx;
  const pullResult: CommandResult = pull ?? {};
  if (!(await hasClone(runner, store.cloneDir))) {
    return failed("there is no clone of the repository yet: run pull (or pull-switch) first", pullResult);
  }
  const storeShort = await checkStoreSpace(config, runner, ctx.say);
  if (storeShort !== null) return failed(storeShort, pullResult);
  const commit = await headCommit(config, runner, store.cloneDir);
  const before = await readCurrentSystem(platform, runner);
  ctx.say("evaluating what the configuration builds…");
  const expected = await evaluateSystem(config.tools.nix, platform, runner, store.cloneDir, ctx.cancel);
  if (ctx.cancel.aborted) return cancelled(pullResult);
  // An evaluation that fails here fails the rebuild too, which says why in its own words; the check after it evaluates again.
  if (expected.value === null) ctx.say(`could not evaluate it before the switch: ${expected.reason.split("\n")[0]}`);
  else if (commit.value !== null) await rememberEvaluation(ctx, commit.value, expected.value, pull?.commitAfter === commit.value);
  const bootShort = await checkBootSpace({ ...ctx, cloneDir: store.cloneDir, system: expected.value, signal: ctx.cancel });
  if (ctx.cancel.aborted) return cancelled(pullResult);
  if (bootShort !== null) return failed(bootShort, pullResult);
  const mode = activationOf(ctx);
  if (mode !== "switch") {
    const booted = await activateByBoot(ctx, mode, { commit: commit.value, before: before.value, expected: expected.value, result: pullResult });
    if (booted !== "switch") return booted;
  }
  const argv = platform.switchArgv(store.cloneDir);
  return runJob(ctx, { action: "switch", commit: commit.value, systemBefore: before.value, systemExpected: expected.value, pull }, argv);
}

/**
 * The clone's configuration was just evaluated at its HEAD: that is the desired system of this tree
 * too, so the evaluation that follows the pull finds it in the cache instead of evaluating again.
 * Not when the clone has local changes: then it is not the tree's system.
 */
async function rememberEvaluation(ctx: CommandContext, commit: string, outPath: string, pulledMain: boolean): Promise<void> {
  const { config, runner, store, platform } = ctx;
  if (!StorePath.safeParse(outPath).success || (await isDirty(config, runner, store.cloneDir)) !== false) return;
  const resolved = await keyAt((args) => runGit(config, runner, args), store.cloneDir, commit, platform);
  if (!resolved.ok) return;
  const evaluatedAt = new Date().toISOString();
  const system = { commit, tree: resolved.key.tree, evaluatedAt, outPath, changes: null };
  await store.recordEvaluation(resolved.key, system);
  await ctx.evaluated(commit, system, pulledMain);
}

export async function runPullSwitch(ctx: CommandContext): Promise<CommandEnd> {
  const pulled = await runPull(ctx);
  if (pulled.outcome !== "succeeded") return pulled;
  return runSwitch(ctx, { commitBefore: pulled.result.commitBefore ?? null, commitAfter: pulled.result.commitAfter ?? null });
}

export async function runRollback(ctx: CommandContext): Promise<CommandEnd> {
  const before = await readCurrentSystem(ctx.platform, ctx.runner);
  const argv = await ctx.platform.rollbackArgv(ctx.runner);
  return runJob(ctx, { action: "rollback", commit: null, systemBefore: before.value, systemExpected: null }, argv);
}

export async function runJob(
  ctx: CommandContext,
  meta: Pick<JobMeta, "action" | "commit" | "systemBefore" | "systemExpected" | "pull" | "manifest">,
  argv: string[],
): Promise<CommandEnd> {
  if (meta.action === "switch" && ctx.safetyNet !== undefined) {
    await ctx.safetyNet.arm({
      commandId: ctx.delivery.id,
      commit: meta.commit,
      previous: meta.systemBefore,
      next: meta.systemExpected,
      activationExitFile: ctx.store.jobFiles(ctx.delivery.id).exit,
      activationGiveUpAt: ctx.delivery.deadlineAt,
      say: ctx.say,
    });
  }
  ctx.say(`$ ${argv.join(" ")}`);
  await ctx.store.markRunning(ctx.delivery.id, true);
  const started = await ctx.jobs.start(
    { commandId: ctx.delivery.id, kind: ctx.delivery.kind, platform: ctx.platform.name, ...meta },
    argv,
    ctx.store.stateDir,
  );
  if (!started.ok) return failed(`could not start the ${meta.action} job: ${started.error}`, { ...meta.pull, systemBefore: meta.systemBefore });
  const end = await ctx.jobs.follow(started.meta, ctx);
  return (await finishJob(ctx, ctx.jobs, started.meta, end)) ?? { outcome: "left-running" };
}

/**
 * Turns a job's end into the command's outcome, verifying the system link.
 * Shared by the command that started the job and by a later agent process
 * that resumed it. Null when the job is still running (the agent is stopping).
 */
export async function finishJob(ctx: HostContext, jobs: DetachedJobs, meta: JobMeta, end: JobEnd): Promise<CommandOutcome | null> {
  const outcome = await settleJob(ctx, jobs, meta, end);
  // The manifest a substitute switch activated, or the one of the generation a rollback went back to
  // (commands/substitute.ts, rollback-to.ts), is the one the host runs now.
  if (outcome?.outcome === "succeeded" && meta.manifest !== undefined) await ctx.store.recordManifest(meta.manifest, meta.systemExpected);
  return outcome;
}

async function settleJob(ctx: HostContext, jobs: DetachedJobs, meta: JobMeta, end: JobEnd): Promise<CommandOutcome | null> {
  if (end.kind === "left-running") return null;
  const safetyNet = ctx.safetyNet;
  if (meta.action !== "switch" || safetyNet === undefined || !(await safetyNet.armed(meta.commandId))) {
    // The job has ended, so the host read now is the host after it: the report is read while the result
    // is verified, and the finished event goes out with it at once. (Armed, the confirmation carries it.)
    const reportProbe = ctx.probeReport?.();
    reportProbe?.catch(() => undefined);
    const judged = await judgeJob(ctx, jobs, meta, end, false);
    return reportProbe === undefined ? judged : { ...judged, reportProbe };
  }
  const judged = await judgeJob(ctx, jobs, meta, end, true);
  const settled = await safetyNet.settle(meta.commandId, judged, ctx.say, (signal) => healthTests(ctx, signal));
  // The health check ran the tests: the run after the switch would only repeat them.
  if (settled !== null && settled.then === "run-tests" && testsConfigured(ctx.config)) delete settled.then;
  return settled;
}

/** The host's configured tests as part of the safety net's health check; why they fail, or null. */
async function healthTests(ctx: HostContext, signal: AbortSignal): Promise<string | null> {
  const ran = await runTests({ ...ctx, output: () => {} }, signal);
  if (ran.kind === "none") return null;
  if (ran.cancelled) return "the health tests were stopped";
  await ctx.store.recordTestRun(ran.run);
  const failing = ran.run.results.filter((result) => !result.passed).map((result) => result.name);
  if (failing.length === 0) {
    ctx.say(`safety net: ${ran.run.results.length} health tests passed`);
    return null;
  }
  return `${failing.length} of ${ran.run.results.length} health tests failed: ${failing.join(", ")}`;
}

async function judgeJob(ctx: HostContext, jobs: DetachedJobs, meta: JobMeta, end: Exclude<JobEnd, { kind: "left-running" }>, armed: boolean): Promise<CommandOutcome> {
  const { config, platform, runner, store } = ctx;
  const after = await readCurrentSystem(platform, runner);
  const result: CommandResult = { ...meta.pull, systemBefore: meta.systemBefore, systemAfter: after.value };
  const tool = meta.action === "switch" ? "switch" : "rollback";

  if (end.kind === "cancelled") return cancelled(result);
  if (end.kind === "vanished") {
    return failed(`the ${tool} job ended without an exit status (killed from outside, or the host rebooted)`, result);
  }
  if (end.exitCode !== 0) {
    const tail = await jobs.lastLines(meta.commandId, 30);
    return failed(`${tool} exited with code ${end.exitCode}${tail ? `:\n${tail}` : ""}`, result, end.exitCode);
  }
  if (after.value === null) return failed(`${tool} exited 0 but the running system cannot be read: ${after.reason}`, result, 0);

  if (meta.action === "rollback") {
    // A rollback to a chosen generation expects its system (commands/rollback-to.ts).
    if (meta.systemExpected !== null && after.value !== meta.systemExpected) {
      return failed(`rollback exited 0 but the running system is ${after.value}, not the target ${meta.systemExpected}`, result, 0);
    }
    if (after.value === meta.systemBefore) {
      return failed(`rollback exited 0 but the running system is unchanged: still ${after.value}`, result, 0);
    }
    ctx.say(`running system is now ${after.value}`);
    return succeeded(result);
  }

  ctx.say("verifying the running system against the configuration…");
  const expected = meta.systemExpected !== null ? known(meta.systemExpected) : await evaluateSystem(config.tools.nix, platform, runner, store.cloneDir);
  if (expected.value === null) {
    return failed(`switch exited 0 but what the configuration builds could not be evaluated: ${expected.reason}`, result, 0);
  }
  if (meta.commit !== null) await store.recordDesired(meta.commit, expected.value);
  if (after.value !== expected.value) {
    const link = platform.runningSystemLinks(runner)[0] ?? "the running-system link";
    return failed(
      `switch exited 0 but ${link} points to ${after.value}, not to the system the configuration builds (${expected.value})`,
      result,
      0,
    );
  }
  if (meta.commit !== null) await store.recordBuilt(after.value, meta.commit);
  ctx.say(`running system is ${after.value}, built from ${meta.commit ?? "an unknown commit"}`);
  // Armed, the safety net judges the units: only those failed since the switch count.
  const units = armed ? null : await platform.failedUnits(runner, ctx.say);
  if (units !== null) return failed(units, result, 0);
  const outcome = succeeded(result);
  if (config.autoTestAfterSwitch && testsConfigured(config)) outcome.then = "run-tests";
  return outcome;
}
