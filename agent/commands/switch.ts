/**
 * `switch`, `pull-switch` and `rollback`: run the platform's rebuild tool as a
 * detached job (see detached-jobs.ts), then check the running-system link.
 * Exit code 0 is not proof: a switch succeeded only when the link points at
 * what the clone builds; a rollback only when the link moved.
 */
import type { AgentConfig } from "../../common/agent-config.ts";
import type { CommandResult } from "../../common/protocol.ts";
import type { DetachedJobs, JobEnd } from "../detached-jobs.ts";
import { hasClone, headCommit } from "../git.ts";
import type { JobMeta } from "../job-store.ts";
import { testsConfigured } from "../report.ts";
import { describeFailure, type HostRunner } from "../runner.ts";
import { evaluateSystem, flakeAttrOf, readCurrentSystem, systemLinkCandidates } from "../system.ts";
import { cancelled, failed, succeeded, type CommandContext, type CommandEnd, type CommandOutcome, type HostContext } from "./context.ts";
import { runPull } from "./pull.ts";

/** The rebuild tool's argv for a switch to the clone's configuration. */
export function switchArgv(config: AgentConfig, cloneDir: string): string[] {
  const flake = `${cloneDir}#${flakeAttrOf(config)}`;
  switch (config.platform) {
    case "nixos":
      return [config.tools.nixosRebuild, "switch", "--flake", flake];
    case "darwin":
      return [config.tools.darwinRebuild, "switch", "--flake", flake];
    case "home-manager":
      return [config.tools.homeManager, "switch", "--flake", flake];
  }
}

/**
 * Home Manager has no rollback subcommand: its documented way back is to run
 * the previous generation's `activate`, which also points the profile at it.
 * The script finds the generation numbered just below the profile's current one.
 */
const HOME_MANAGER_ROLLBACK_SCRIPT = [
  'profile=$1; dir=$(dirname "$profile")',
  'current=$(readlink "$profile") || { echo "cannot read $profile" >&2; exit 1; }',
  'n=${current##*home-manager-}; n=${n%-link}',
  "prev=$(ls -1 \"$dir\" | sed -n 's/^home-manager-\\([0-9][0-9]*\\)-link$/\\1/p' | sort -n | awk -v n=\"$n\" '$1 < n' | tail -n 1)",
  '[ -n "$prev" ] || { echo "no Home Manager generation before $current" >&2; exit 1; }',
  'echo "activating $dir/home-manager-$prev-link"',
  'exec "$dir/home-manager-$prev-link/activate"',
].join("\n");

/** The rebuild tool's argv for going back to the previous generation. */
export async function rollbackArgv(config: AgentConfig, runner: HostRunner): Promise<string[]> {
  switch (config.platform) {
    case "nixos":
      return [config.tools.nixosRebuild, "switch", "--rollback"];
    case "darwin":
      return [config.tools.darwinRebuild, "switch", "--rollback"];
    case "home-manager": {
      const candidates = systemLinkCandidates(config, runner);
      let profile = candidates[0] ?? "home-manager-profile-not-found";
      for (const candidate of candidates) {
        if (await runner.realPath(candidate).then(() => true, () => false)) {
          profile = candidate;
          break;
        }
      }
      return ["/bin/sh", "-c", HOME_MANAGER_ROLLBACK_SCRIPT, "nixfleet-rollback", profile];
    }
  }
}

export async function runSwitch(ctx: CommandContext, pull?: JobMeta["pull"]): Promise<CommandEnd> {
  const { config, runner, store } = ctx;
  const pullResult: CommandResult = pull ?? {};
  if (!(await hasClone(runner, store.cloneDir))) {
    return failed("there is no clone of the repository yet: run pull (or pull-switch) first", pullResult);
  }
  const commit = await headCommit(config, runner, store.cloneDir);
  const before = await readCurrentSystem(config, runner);
  const argv = switchArgv(config, store.cloneDir);
  return runJob(ctx, { action: "switch", commit: commit.value, systemBefore: before.value, pull }, argv);
}

export async function runPullSwitch(ctx: CommandContext): Promise<CommandEnd> {
  const pulled = await runPull(ctx);
  if (pulled.outcome !== "succeeded") return pulled;
  return runSwitch(ctx, { commitBefore: pulled.result.commitBefore ?? null, commitAfter: pulled.result.commitAfter ?? null });
}

export async function runRollback(ctx: CommandContext): Promise<CommandEnd> {
  const before = await readCurrentSystem(ctx.config, ctx.runner);
  const argv = await rollbackArgv(ctx.config, ctx.runner);
  return runJob(ctx, { action: "rollback", commit: null, systemBefore: before.value }, argv);
}

async function runJob(
  ctx: CommandContext,
  meta: Pick<JobMeta, "action" | "commit" | "systemBefore" | "pull">,
  argv: string[],
): Promise<CommandEnd> {
  ctx.say(`$ ${argv.join(" ")}`);
  await ctx.store.markRunning(ctx.delivery.id, true);
  const started = await ctx.jobs.start(
    { commandId: ctx.delivery.id, kind: ctx.delivery.kind, platform: ctx.config.platform, ...meta },
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
  const { config, runner, store } = ctx;
  if (end.kind === "left-running") return null;
  const after = await readCurrentSystem(config, runner);
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
    if (after.value === meta.systemBefore) {
      return failed(`rollback exited 0 but the running system is unchanged: still ${after.value}`, result, 0);
    }
    ctx.say(`running system is now ${after.value}`);
    return succeeded(result);
  }

  ctx.say("verifying the running system against the configuration…");
  const expected = await evaluateSystem(config, runner, store.cloneDir);
  if (expected.value === null) {
    return failed(`switch exited 0 but what the configuration builds could not be evaluated: ${expected.reason}`, result, 0);
  }
  if (meta.commit !== null) await store.recordDesired(meta.commit, expected.value);
  if (after.value !== expected.value) {
    const link = systemLinkCandidates(config, runner)[0] ?? "the running-system link";
    return failed(
      `switch exited 0 but ${link} points to ${after.value}, not to the system the configuration builds (${expected.value})`,
      result,
      0,
    );
  }
  if (meta.commit !== null) await store.recordBuilt(after.value, meta.commit);
  ctx.say(`running system is ${after.value}, built from ${meta.commit ?? "an unknown commit"}`);
  const units = await failedUnits(ctx);
  if (units !== null) return failed(units, result, 0);
  const outcome = succeeded(result);
  if (config.autoTestAfterSwitch && testsConfigured(config)) outcome.then = "run-tests";
  return outcome;
}

/**
 * NixOS: a switch that left systemd units failed is not a good switch (`systemctl --failed`; see docs/rollouts.md "Gates").
 * Returns why, or null when none failed or the check does not apply here.
 */
async function failedUnits(ctx: HostContext): Promise<string | null> {
  const { config, runner } = ctx;
  if (config.platform !== "nixos" || !config.checkFailedUnits) return null;
  try {
    await runner.listDirectory(config.systemdRuntimeDir);
  } catch {
    ctx.say(`systemd is not running here (no ${config.systemdRuntimeDir}): the failed-units check is skipped`);
    return null;
  }
  ctx.say("checking for failed systemd units…");
  const listed = await runner.run([config.tools.systemctl, "--failed", "--no-legend", "--plain", "--no-pager"]);
  if (listed.exitCode !== 0) return `switch succeeded, but the failed systemd units could not be listed: ${describeFailure("systemctl --failed", listed)}`;
  const failedNames = listed.stdout
    .split("\n")
    .map((line) => line.trim().split(/\s+/)[0] ?? "")
    .filter((name) => name !== "");
  if (failedNames.length === 0) {
    ctx.say("no failed systemd units");
    return null;
  }
  return `switch succeeded, but ${failedNames.length === 1 ? "1 systemd unit" : `${failedNames.length} systemd units`} failed: ${failedNames.slice(0, 10).join(", ")}`;
}
