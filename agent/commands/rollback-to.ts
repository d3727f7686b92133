/**
 * `rollback` with a target generation: the profile is set to that generation's store path and the
 * system activated, exactly as the safety net goes back to a recorded system (the platform's
 * `activateArgv`), as a detached job like any rollback. A generation that does not exist, or is what
 * runs already, fails before anything is touched.
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
  return runJob(ctx, { action: "rollback", commit: null, systemBefore: before.value, systemExpected: target.storePath }, platform.activateArgv(target.storePath));
}
