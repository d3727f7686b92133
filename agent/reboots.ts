/**
 * Reboots the agent starts (the `reboot` command, and a `boot-then-reboot-if-needed` switch whose
 * kernel, initrd or modules changed) and their verification (docs/hosts.md "Activation modes and
 * reboots"). Before rebooting, the agent durably records the command, the intended store path and the
 * boot id, then tells the control plane (a `rebooting` event) and reboots only once it acknowledged:
 * from then on the command has the reboot's verification deadline there. The agent that starts after
 * the reboot finds the record and ends the command: succeeded when the boot id is new and the booted
 * system is the intended one, failed otherwise. A host that never comes back is the control plane's to
 * end (`lost`, at that deadline).
 *
 *   <stateDir>/reboots/<command id>.json   one pending reboot, written before the reboot runs
 */
import * as fs from "node:fs/promises";
import * as path from "node:path";
import * as z from "zod";
import { COMMAND_DEADLINE_SECONDS, CommandResult } from "../common/protocol.ts";
import { roughDuration } from "../common/text.ts";
import { cancelled, failed, succeeded, type CommandContext, type CommandEnd, type CommandOutcome, type HostContext } from "./commands/context.ts";
import { describeFailure } from "./runner.ts";
import { writeDurably } from "./safety-net/record.ts";
import { readCurrentSystem } from "./system.ts";

export const PendingReboot = z.object({
  version: z.literal(1),
  commandId: z.string().min(1),
  /** The system the host must boot: a switch's new system, or the system profile's target for a plain reboot. */
  intended: z.string().min(1),
  bootIdBefore: z.string().min(1),
  /** What the host had booted before: a host that comes back on it fell back to its old generation. */
  bootedBefore: z.string().nullable(),
  at: z.string(),
  /** What the command had found out before the reboot (a switch's pull, the system before). */
  result: CommandResult,
});
export type PendingReboot = z.infer<typeof PendingReboot>;

const rebootsDir = (stateDir: string): string => path.join(stateDir, "reboots");
const recordFile = (stateDir: string, commandId: string): string => path.join(rebootsDir(stateDir), `${commandId}.json`);

/** The `reboot` command: boots the system profile's target. */
export async function runRebootCommand(ctx: CommandContext): Promise<CommandEnd> {
  const { config, platform, runner } = ctx;
  if (platform.rebootArgv() === null) return failed(`the agent does not reboot the machine on ${platform.name}: a user's agent does not own it`);
  const before = await readCurrentSystem(platform, runner);
  const profile = await runner.realPath(config.systemProfileLink).catch((error: unknown) => error);
  if (typeof profile !== "string") return failed(`cannot read the system profile ${config.systemProfileLink} (${String(profile)}): the system the reboot should boot is unknown`);
  return rebootInto(ctx, profile, { systemBefore: before.value });
}

/**
 * Records the reboot, tells the control plane, then runs the platform's reboot and waits for the agent
 * to be stopped by it. The outcome is reported by the agent that starts after the reboot (`resumeReboot`).
 */
export async function rebootInto(ctx: CommandContext, intended: string, result: CommandResult): Promise<CommandEnd> {
  const { platform, runner, store } = ctx;
  const argv = platform.rebootArgv();
  if (argv === null) return failed(`the agent does not reboot the machine on ${platform.name}`, result);
  const bootIdBefore = await platform.bootId(runner);
  if (bootIdBefore === null) return failed("cannot read this boot's id, so a reboot could not be verified: not rebooting", result);
  const booted = await platform.bootedSystem(runner);
  const record: PendingReboot = {
    version: 1,
    commandId: ctx.delivery.id,
    intended,
    bootIdBefore,
    bootedBefore: booted.value,
    at: new Date().toISOString(),
    result,
  };
  await fs.mkdir(rebootsDir(store.stateDir), { recursive: true });
  await writeDurably(recordFile(store.stateDir, record.commandId), record);
  ctx.say(`recorded the reboot (boot id ${bootIdBefore}): the agent that starts after it checks for a new boot id and ${intended} booted`);
  const within = roughDuration(COMMAND_DEADLINE_SECONDS.reboot * 1000, "long");
  ctx.say(`rebooting to activate ${intended}: telling the control plane first, which then expects the host back within ${within}`);
  // Unacknowledged, the control plane would wait out the switch's own deadline for a host that may never come back.
  const told = await Promise.race([ctx.announceReboot(intended), aborted(ctx.cancel)]);
  if (told !== "stored") {
    await fs.rm(recordFile(store.stateDir, record.commandId), { force: true });
    if (told === "cancelled") return cancelled(result);
    const why = told === "dropped" ? "it refused the rebooting event" : "the agent stopped first";
    return failed(`not rebooting: the control plane did not acknowledge the reboot (${why}), so it would not expect the host back`, result);
  }
  ctx.say(`$ ${argv.join(" ")}`);
  const ran = await runner.run(argv, { onOutput: (stream, data) => ctx.output(stream, data) });
  if (ran.exitCode !== 0) {
    await fs.rm(recordFile(store.stateDir, record.commandId), { force: true });
    return failed(`the reboot did not start: ${describeFailure(argv[0] ?? "reboot", ran)}`, result, ran.exitCode);
  }
  ctx.say("rebooting: the agent that starts after the reboot reports how the host came back");
  // The reboot stops this agent; a stop command cannot take a reboot back, so only the shutdown ends the wait.
  await new Promise<void>((resolve) => {
    if (ctx.shutdown.aborted) resolve();
    else ctx.shutdown.addEventListener("abort", () => resolve(), { once: true });
  });
  return { outcome: "left-running" };
}

const aborted = (signal: AbortSignal): Promise<"cancelled"> =>
  new Promise((resolve) => {
    if (signal.aborted) resolve("cancelled");
    else signal.addEventListener("abort", () => resolve("cancelled"), { once: true });
  });

/** The pending reboot of this command, if it recorded one. */
export async function pendingReboot(stateDir: string, commandId: string): Promise<PendingReboot | null> {
  const text = await fs.readFile(recordFile(stateDir, commandId), "utf8").catch(() => null);
  if (text === null) return null;
  try {
    const parsed = PendingReboot.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** Run by the agent that starts after the reboot: judges the boot, forgets the record. */
export async function verifyReboot(ctx: HostContext, record: PendingReboot): Promise<CommandOutcome> {
  const { platform, runner, store } = ctx;
  const [bootId, booted, current] = await Promise.all([platform.bootId(runner), platform.bootedSystem(runner), readCurrentSystem(platform, runner)]);
  const result: CommandResult = { ...record.result, systemAfter: current.value };
  const outcome = judge(record, bootId, booted.value, booted.reason);
  ctx.say(outcome.ok ? outcome.line : `reboot: ${outcome.error}`);
  await fs.rm(recordFile(store.stateDir, record.commandId), { force: true });
  return outcome.ok ? succeeded(result, null) : failed(outcome.error, result);
}

function judge(record: PendingReboot, bootId: string | null, booted: string | null, why: string | undefined): { ok: true; line: string } | { ok: false; error: string } {
  if (bootId === null) return { ok: false, error: "the agent restarted, but this boot's id cannot be read: the reboot cannot be verified" };
  if (bootId === record.bootIdBefore) return { ok: false, error: `the agent restarted, but the host did not reboot (the boot id is still ${bootId})` };
  if (booted === null) return { ok: false, error: `the host rebooted (boot id ${bootId}), but the booted system cannot be read: ${why ?? "unknown"}` };
  if (booted !== record.intended) {
    const old = booted === record.bootedBefore ? "the old generation " : "";
    return { ok: false, error: `the host came back on ${old}${booted} instead of ${record.intended} (boot id ${record.bootIdBefore} → ${bootId})` };
  }
  return { ok: true, line: `the host came back on ${booted}, as intended (boot id ${record.bootIdBefore} → ${bootId})` };
}
