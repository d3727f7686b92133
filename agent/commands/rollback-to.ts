/**
 * `rollback` with a target generation: the profile is set to that generation's store path and the
 * system activated, exactly as the safety net goes back to a recorded system (the platform's
 * `activateArgv`), as a detached job like any rollback. A generation that does not exist, or is what
 * runs already, fails before anything is touched. In substitute mode it also takes the host's signed
 * manifest back to that generation's (`manifestBack`).
 */
import { readGenerations } from "../generations.ts";
import { readCurrentSystem } from "../system.ts";
import { failed, type CommandContext, type CommandEnd } from "./context.ts";
import { runJob } from "./switch.ts";

export async function runRollbackTo(ctx: CommandContext, generation: number): Promise<CommandEnd> {
  const { platform, runner } = ctx;
  const source = await platform.generationSource(runner);
  if (source === null) return failed(`no ${platform.name} profile found: cannot roll back to generation ${generation}`);
  const generations = await readGenerations(source);
  if (generations.value === null) return failed(`cannot roll back to generation ${generation}: ${generations.reason}`);
  const target = generations.value.find((g) => g.number === generation);
  if (target === undefined) {
    const numbers = generations.value.map((g) => g.number).join(", ") || "none";
    return failed(`generation ${generation} does not exist in ${source.profile} (its generations: ${numbers}); nothing was changed`);
  }
  const before = await readCurrentSystem(platform, runner);
  if (before.value === target.storePath) {
    return failed(`generation ${generation} (${target.storePath}) is what runs already; nothing was changed`, { systemBefore: before.value, systemAfter: before.value });
  }
  ctx.say(`rolling back to generation ${generation}: ${target.storePath}${target.label !== null ? ` (${target.label})` : ""}`);
  const manifest = manifestBack(ctx, generation, target.storePath);
  return runJob(ctx, { action: "rollback", commit: null, systemBefore: before.value, systemExpected: target.storePath, manifest }, platform.activateArgv(target.storePath));
}

/**
 * The one way past substitute mode's rule against older manifests (common/cache-manifest.ts): a rollback
 * that names its generation, audited with it by the control plane. Once it succeeds, the manifest that
 * generation's system came from is the host's again, so a later manifest newer than that one is taken
 * and an older one still refused. A system no signed manifest brought here leaves the host's manifest as
 * it is: nothing says how old it is.
 */
function manifestBack(ctx: CommandContext, generation: number, system: string): { commit: string; created: string } | undefined {
  const running = ctx.store.runningManifest();
  const back = ctx.store.manifestOf(system);
  if (back !== null) {
    if (running !== null && (running.commit !== back.commit || running.created !== back.created)) {
      ctx.say(`generation ${generation} came from the signed manifest for ${back.commit} (made ${back.created}): once it runs, that manifest is this host's again instead of ${running.commit}'s`);
    }
    return back;
  }
  if (running !== null) {
    ctx.say(`generation ${generation} did not come from a signed manifest this host took: it keeps the one for ${running.commit} (made ${running.created}) and takes no manifest made before it`);
  }
  return undefined;
}
