/**
 * The activation modes other than `switch` (docs/hosts.md "Activation modes and reboots"): `boot`
 * makes the new system the boot default and activates nothing; `boot-then-reboot-if-needed` does the
 * same, then reboots into it when its kernel, initrd or modules differ from the booted ones (what
 * nixpkgs' `system.autoUpgrade` with `allowReboot` does), and otherwise hands back to the switch.
 * Whether a reboot may happen now is the control plane's call (it sends such a switch only inside
 * the host's maintenance window, or forced): the agent executes. Substitute mode has the same modes,
 * with the signed manifest's store path set as the boot default (the platform's `bootSystemArgv`).
 */
import type { ActivationMode, CommandResult } from "../common/protocol.ts";
import { cancelled, failed, succeeded, type CommandContext, type CommandEnd } from "./commands/context.ts";
import { rebootInto } from "./reboots.ts";
import { describeFailure } from "./runner.ts";
import { readCurrentSystem } from "./system.ts";

/** The command's own mode, else the host's. */
export const activationOf = (ctx: CommandContext): ActivationMode => ctx.delivery.activation ?? ctx.config.activation;

export interface BootInput {
  commit: string | null;
  /** The running system before. */
  before: string | null;
  /** What the configuration builds, evaluated before; in substitute mode, the store path the signed manifest names. */
  expected: string | null;
  result: CommandResult;
  /**
   * Substitute mode's boot (commands/substitute.ts): the store path is there already, so the profile is
   * set to it rather than built from the clone; the manifest that named it becomes the host's once it
   * is the boot default.
   */
  substitute?: { manifest: { commit: string; created: string } };
}

/** Runs a non-`switch` mode; `"switch"` when the switch should go on as usual (nothing to reboot for). */
export async function activateByBoot(ctx: CommandContext, mode: Exclude<ActivationMode, "switch">, input: BootInput): Promise<CommandEnd | "switch"> {
  const { config, platform, runner, store } = ctx;
  const result: CommandResult = { ...input.result, systemBefore: input.before };
  const argv = input.substitute === undefined || input.expected === null ? platform.bootArgv(store.cloneDir) : platform.bootSystemArgv(input.expected);
  if (argv === null) return failed(`activation mode ${mode} is for NixOS only: ${platform.name} activates a new system by switching to it`, result);
  if (input.expected === null) return failed(`activation mode ${mode}: what the configuration builds could not be evaluated, so the new boot default cannot be verified`, result);
  const tool = input.substitute === undefined ? argv.slice(0, 2).join(" ") : "setting the boot default";
  const wanted = input.substitute === undefined ? "the system the configuration builds" : "the system the signed manifest names";
  ctx.say(`activation mode ${mode}: making the new system the boot default`);
  ctx.say(`$ ${argv.join(" ")}`);
  const ran = await runner.run(argv, { cwd: store.cloneDir, signal: ctx.cancel, onOutput: (stream, data) => ctx.output(stream, data) });
  if (ctx.cancel.aborted) return cancelled(result);
  if (ran.exitCode !== 0) return failed(describeFailure(tool, ran), result, ran.exitCode);
  const next = await runner.realPath(config.systemProfileLink).catch((error: unknown) => `unreadable (${String(error)})`);
  if (next !== input.expected) {
    return failed(`${tool} exited 0 but ${config.systemProfileLink} points to ${next}, not to ${wanted} (${input.expected})`, result, 0);
  }
  if (input.commit !== null) {
    await store.recordDesired(input.commit, next);
    await store.recordBuilt(next, input.commit);
  }
  // What boots next is the host's from now on: a manifest older than its own is refused as for a switch.
  if (input.substitute !== undefined) await store.recordManifest(input.substitute.manifest, next);
  const current = await readCurrentSystem(platform, runner);
  const booted: CommandResult = { ...result, systemAfter: current.value };
  if (mode === "boot") {
    ctx.say(`${next} is the boot default; it runs after the next reboot (the running system stays ${current.value ?? "as it was"})`);
    return succeeded({ ...booted, bootDefault: next });
  }
  const status = await platform.rebootStatus(runner);
  if (status.value === null) {
    ctx.say(`cannot tell whether the new system needs a reboot (${status.reason ?? "unknown"}): switching to it`);
    return "switch";
  }
  if (!status.value.needed) {
    ctx.say("its kernel, initrd and kernel modules are the booted ones: switching to it without a reboot");
    return "switch";
  }
  ctx.say(`its ${status.value.changed.join(", ")} differ from the booted system's: rebooting into it`);
  return rebootInto(ctx, next, booted);
}
