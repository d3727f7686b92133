/**
 * `gc`: delete the profile's old generations, rewrite the boot menu so it lists none of them, then
 * collect the store's garbage (docs/hosts.md "Generations and garbage collection"). A dry run says
 * what would go (`nix-store --gc --print-dead`) and deletes nothing. Everything runs at the lowest
 * CPU and IO priority and is killed at the command's deadline.
 */
import * as path from "node:path";
import { COMMAND_DEADLINE_SECONDS, type GcPolicy, type GcResult } from "../../common/protocol.ts";
import { plural } from "../../common/text.ts";
import { planGc, readGenerations, safetyNetSystems, type GcPlan } from "../generations.ts";
import { describeFailure, type RunResult } from "../runner.ts";
import { cancelled, failed, succeeded, type CommandContext, type CommandOutcome } from "./context.ts";

/** What a host keeps when neither its own options nor the command say (the fleet settings' defaults). */
export const GC_DEFAULTS: GcPolicy = { keepGenerations: 5, keepDays: 14 };

/** Lowest CPU priority, idle IO class: the host's own work goes first. */
const NICE = ["nice", "-n", "19"] as const;
const IONICE = ["ionice", "-c", "3"] as const;

/** The host's own module options win; then the fleet's defaults the command carries; then GC_DEFAULTS. */
export function gcPolicy(own: { keepGenerations: number | null; keepDays: number | null }, fleet: GcPolicy | null): GcPolicy {
  return {
    keepGenerations: own.keepGenerations ?? fleet?.keepGenerations ?? GC_DEFAULTS.keepGenerations,
    keepDays: own.keepDays ?? fleet?.keepDays ?? GC_DEFAULTS.keepDays,
  };
}

/** "3 store paths deleted, 12.40 MiB freed" (nix-store --gc, nix-collect-garbage) → the numbers. */
export function parseGcSummary(output: string): { storePaths: number; bytesFreed: number } | null {
  const match = /(\d+) store paths? deleted, ([\d.]+) (B|KiB|MiB|GiB|TiB) freed/.exec(output);
  if (match === null) return null;
  const scale = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 }[match[3] as "B"];
  return { storePaths: Number(match[1]), bytesFreed: Math.round(Number(match[2]) * scale) };
}

export async function runGc(ctx: CommandContext): Promise<CommandOutcome> {
  const { config, platform, runner, delivery } = ctx;
  const policy = gcPolicy(config.gc, delivery.gc);
  const dryRun = delivery.dryRun;
  const signal = AbortSignal.any([ctx.cancel, deadlineSignal(delivery.deadlineAt)]);
  const source = await platform.generationSource(runner);
  if (source === null) return failed(`no ${platform.name} profile found: there are no generations to delete`);
  const generations = await readGenerations(source);
  if (generations.value === null) return failed(generations.reason);
  const plan = planGc(generations.value, policy, await safetyNetSystems(ctx.store.stateDir), Date.now());
  narratePlan(ctx, plan, policy, dryRun);
  const hasBootMenu = platform.bootMenuArgv(source.profile) !== null;
  const result = (fields: Partial<GcResult> = {}): { gc: GcResult } => ({
    gc: {
      dryRun,
      ...policy,
      deletedGenerations: plan.remove.map((g) => g.number),
      keptGenerations: plan.keep.map((k) => k.generation.number),
      storePaths: null,
      bytesFreed: null,
      bootMenu: hasBootMenu ? "unchanged" : "not-applicable",
      ...fields,
    },
  });
  const stopped = (): CommandOutcome =>
    ctx.cancel.aborted ? cancelled(result()) : failed(`the gc passed its deadline (${delivery.deadlineAt}) and was killed`, result());
  const lowPriority = await lowPriorityPrefix(ctx);
  const run = async (argv: string[]): Promise<RunResult> => {
    const niced = [...lowPriority, ...argv];
    ctx.say(`$ ${niced.join(" ")}`);
    return runner.run(niced, { signal, onOutput: ctx.output });
  };

  if (dryRun) {
    const dead = await run([nixTool(config.tools.nix, "nix-store"), "--gc", "--print-dead"]);
    if (dead.aborted) return stopped();
    if (dead.exitCode !== 0) return failed(describeFailure("nix-store --gc --print-dead", dead), result(), dead.exitCode);
    const paths = dead.stdout.split("\n").filter((line) => line.startsWith("/")).length;
    ctx.say(`dry run: ${plural(paths, "store path")} dead now; nothing deleted`);
    return succeeded(result({ storePaths: paths }));
  }

  let bootMenu: GcResult["bootMenu"] = result().gc.bootMenu;
  if (plan.remove.length > 0) {
    const deleted = await run([nixTool(config.tools.nix, "nix-env"), "--profile", source.profile, "--delete-generations", ...plan.remove.map((g) => String(g.number))]);
    if (deleted.aborted) return stopped();
    if (deleted.exitCode !== 0) return failed(describeFailure("nix-env --delete-generations", deleted), result({ deletedGenerations: [] }), deleted.exitCode);
    const current = generations.value.find((g) => g.current);
    const menuArgv = current !== undefined ? platform.bootMenuArgv(current.storePath) : null;
    if (menuArgv !== null) {
      // Without this the boot menu still lists the deleted generations, whose systems the collection removes.
      const menu = await run(menuArgv);
      if (menu.aborted) return stopped();
      if (menu.exitCode !== 0) return failed(`the generations were deleted, but the boot menu was not rewritten: ${describeFailure(menuArgv.join(" "), menu)}`, result(), menu.exitCode);
      bootMenu = "rewritten";
    }
  }
  const collected = await run([nixTool(config.tools.nix, "nix-store"), "--gc"]);
  if (collected.aborted) return stopped();
  if (collected.exitCode !== 0) return failed(describeFailure("nix-store --gc", collected), result({ bootMenu }), collected.exitCode);
  const summary = parseGcSummary(`${collected.stdout}\n${collected.stderr}`);
  ctx.say(summary !== null ? `freed ${summary.bytesFreed} bytes in ${plural(summary.storePaths, "store path")}` : "nix-store --gc said nothing about what it freed");
  return succeeded(result({ bootMenu, storePaths: summary?.storePaths ?? null, bytesFreed: summary?.bytesFreed ?? null }));
}

function narratePlan(ctx: CommandContext, plan: GcPlan, policy: GcPolicy, dryRun: boolean): void {
  ctx.say(`keeping the newest ${plural(policy.keepGenerations, "generation")}, those younger than ${plural(policy.keepDays, "day")}, the current, the booted and the safety net's`);
  for (const { generation, reasons } of plan.keep) ctx.say(`keep generation ${generation.number} (${reasons.join(", ")})`);
  const verb = dryRun ? "would delete" : "delete";
  if (plan.remove.length === 0) ctx.say("no generation to delete");
  else ctx.say(`${verb} ${plural(plan.remove.length, "generation")}: ${plan.remove.map((g) => g.number).join(", ")}`);
}

/** nix-env and nix-store live beside the configured nix. */
function nixTool(nix: string, tool: string): string {
  return nix.includes("/") ? path.join(path.dirname(nix), tool) : tool;
}

async function lowPriorityPrefix(ctx: CommandContext): Promise<string[]> {
  const withIonice = [...NICE, ...IONICE];
  if ((await ctx.runner.run([...withIonice, "true"])).exitCode === 0) return withIonice;
  if ((await ctx.runner.run([...NICE, "true"])).exitCode === 0) return [...NICE];
  return [];
}

/** Aborts at the command's deadline: the control plane declares it timed out then. */
function deadlineSignal(deadlineAt: string): AbortSignal {
  const at = Date.parse(deadlineAt);
  const ms = Number.isFinite(at) ? at - Date.now() : COMMAND_DEADLINE_SECONDS.gc * 1000;
  return AbortSignal.timeout(Math.max(0, ms));
}
