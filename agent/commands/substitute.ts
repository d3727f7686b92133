/**
 * `switch` and `pull-switch` in substitute mode (config `switch: "substitute"`, docs/cache.md "Substitute
 * mode"): the host evaluates and builds nothing. It asks the control plane for the builder's signed
 * manifest of the clone's commit, takes the store path it names for this host only when the host's own
 * rule accepts it (common/cache-manifest.ts: signed by a trusted key, for this host, not older than the
 * manifest it runs), has Nix fetch that path from its caches, and activates it as a detached switch job
 * (switch.ts), which checks that the running system is that path. The activation modes are the build
 * path's (activation.ts): `boot` sets the profile and the boot menu to that path and activates nothing.
 */
import { acceptManifest } from "../../common/cache-manifest.ts";
import type { AgentConfig } from "../../common/agent-config.ts";
import { NixKeyError, parseNixPublicKey, type NixPublicKey } from "../../common/nix-keys.ts";
import type { CommandResult } from "../../common/protocol.ts";
import { activateByBoot, activationOf } from "../activation.ts";
import { checkBootSpace, checkStoreSpace } from "../disk-space.ts";
import { hasClone, headCommit, headTree } from "../git.ts";
import type { JobMeta } from "../job-store.ts";
import { describeFailure } from "../runner.ts";
import { readCurrentSystem } from "../system.ts";
import { cancelled, failed, type CommandContext, type CommandEnd } from "./context.ts";
import { runPull } from "./pull.ts";
import { runJob, runSwitch } from "./switch.ts";

/** Given an output path (not a .drv), only substitutes it and its closure from the configured caches; it builds nothing. */
const NIX_STORE = "nix-store";

export async function runSubstituteSwitch(ctx: CommandContext, pull?: JobMeta["pull"]): Promise<CommandEnd> {
  const { config, platform, runner, store } = ctx;
  const pullResult: CommandResult = pull ?? {};
  if (!(await hasClone(runner, store.cloneDir))) return failed("there is no clone of the repository yet: run pull (or pull-switch) first", pullResult);
  const head = await headCommit(config, runner, store.cloneDir);
  if (head.value === null) return failed(`the clone's commit cannot be read: ${head.reason}`, pullResult);
  const commit = head.value;
  const mode = activationOf(ctx);
  // Said before anything is fetched: a platform without a boot default has no boot command for any path.
  if (mode !== "switch" && platform.bootSystemArgv(store.cloneDir) === null) {
    return failed(`activation mode ${mode} is for NixOS only: ${platform.name} activates a new system by switching to it`, pullResult);
  }
  const keys = trustedKeys(config);
  if (typeof keys === "string") return failed(keys, pullResult);
  const storeShort = await checkStoreSpace(config, runner, ctx.say);
  if (storeShort !== null) return failed(storeShort, pullResult);

  // A merge commit usually has its update PR head's tree, which the builder built and signed.
  const tree = (await headTree(config, runner, store.cloneDir)).value;
  ctx.say(`getting the signed manifest for ${commit}${tree === null ? "" : ` (or its tree ${tree})`}…`);
  const answer = await ctx.fetchManifest(commit, tree, ctx.cancel);
  if (ctx.cancel.aborted) return cancelled(pullResult);
  if (answer.kind === "failed") return failed(`could not get the signed manifest for ${commit}: ${answer.message}`, pullResult);
  if (answer.kind === "missing") {
    if (!config.substitute.buildWithoutManifest) return failed(`no signed manifest for ${commit} yet`, pullResult);
    ctx.say(`no signed manifest for ${commit} yet: building the configuration here instead (buildWithoutManifest)`);
    return runSwitch(ctx, pull);
  }
  const decision = await acceptManifest(answer.manifest, { hostName: config.hostName, trustedKeys: keys, running: store.runningManifest() });
  if (!decision.accepted) return failed(`refused the signed manifest for ${commit}: ${decision.message}`, pullResult);
  // The control plane is not trusted to pick the commit either: a manifest of another commit is this one's
  // only when it signs the tree this host checked out itself.
  const sameTree = tree !== null && decision.manifest.tree === tree;
  if (decision.manifest.commit !== commit && !sameTree) {
    return failed(`refused the signed manifest for ${commit}: the control plane sent the one for ${decision.manifest.commit}, whose tree ${decision.manifest.tree} is not this commit's (${tree ?? "unknown"})`, pullResult);
  }
  const target = decision.storePath;
  const whose = decision.manifest.commit === commit ? commit : `${decision.manifest.commit}, the same tree as ${commit}`;
  ctx.say(`the signed manifest for ${whose} (made ${decision.manifest.created}) names ${target} for ${config.hostName}`);

  const before = await readCurrentSystem(platform, runner);
  const result: CommandResult = { ...pullResult, systemBefore: before.value };
  const argv = [NIX_STORE, "--realise", target];
  ctx.say(`$ ${argv.join(" ")}`);
  const fetched = await runner.run(argv, { signal: ctx.cancel, onOutput: ctx.output });
  if (ctx.cancel.aborted) return cancelled(result);
  if (fetched.exitCode !== 0) return failed(`${target} could not be fetched from the caches: ${describeFailure("nix-store --realise", fetched)}`, result, fetched.exitCode);
  const bootShort = await checkBootSpace({ ...ctx, cloneDir: store.cloneDir, system: target, realised: true, signal: ctx.cancel });
  if (ctx.cancel.aborted) return cancelled(result);
  if (bootShort !== null) return failed(bootShort, result);

  const manifest = { commit, created: decision.manifest.created };
  if (mode !== "switch") {
    const booted = await activateByBoot(ctx, mode, { commit, before: before.value, expected: target, result, substitute: { manifest } });
    if (booted !== "switch") return booted;
  }
  return runJob(ctx, { action: "switch", commit, systemBefore: before.value, systemExpected: target, pull, manifest }, platform.activateArgv(target));
}

export async function runPullSubstituteSwitch(ctx: CommandContext): Promise<CommandEnd> {
  const pulled = await runPull(ctx);
  if (pulled.outcome !== "succeeded") return pulled;
  return runSubstituteSwitch(ctx, { commitBefore: pulled.result.commitBefore ?? null, commitAfter: pulled.result.commitAfter ?? null });
}

/** The builders' keys from the config, or what is wrong with them (a malformed key fails the switch, never widens trust). */
function trustedKeys(config: AgentConfig): NixPublicKey[] | string {
  if (config.substitute.trustedKeys.length === 0) return 'substitute mode needs the builders\' public keys (substitute.trustedKeys; the module sets them from cache.publicKeys): with none, no manifest can be trusted';
  const keys: NixPublicKey[] = [];
  for (const text of config.substitute.trustedKeys) {
    try {
      keys.push(parseNixPublicKey(text));
    } catch (error) {
      if (!(error instanceof NixKeyError)) throw error;
      return `substitute.trustedKeys: ${error.message}`;
    }
  }
  return keys;
}
