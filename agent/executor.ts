/**
 * One function per command kind, dispatched from the one `CommandKind` enum.
 * The switch is exhaustive: a new kind in common/protocol.ts does not compile
 * until it is handled here.
 */
import type { CommandKind } from "../common/protocol.ts";
import { runBuilderBuild } from "./commands/builder-build.ts";
import { runBuild } from "./commands/build.ts";
import { succeeded, type CommandContext, type CommandEnd } from "./commands/context.ts";
import { runGc } from "./commands/gc.ts";
import { runPull } from "./commands/pull.ts";
import { runRollbackTo } from "./commands/rollback-to.ts";
import { runPullSubstituteSwitch, runSubstituteSwitch } from "./commands/substitute.ts";
import { runPullSwitch, runRollback, runSwitch } from "./commands/switch.ts";
import { runTestCommand } from "./commands/test.ts";
import { runRebootCommand } from "./reboots.ts";

export async function executeCommand(ctx: CommandContext): Promise<CommandEnd> {
  const kind: CommandKind = ctx.delivery.kind;
  switch (kind) {
    case "pull":
      return runPull(ctx);
    case "switch":
      return ctx.config.switch === "substitute" ? runSubstituteSwitch(ctx) : runSwitch(ctx);
    case "pull-switch":
      return ctx.config.switch === "substitute" ? runPullSubstituteSwitch(ctx) : runPullSwitch(ctx);
    case "test":
      return runTestCommand(ctx);
    case "rollback":
      return ctx.delivery.generation !== null ? runRollbackTo(ctx, ctx.delivery.generation) : runRollback(ctx);
    case "stop": {
      const stopped = await ctx.stopCommand(ctx.delivery.target);
      ctx.say(stopped ? `stopped ${ctx.delivery.target}` : `nothing to stop for ${ctx.delivery.target ?? "(no target)"}`);
      return succeeded({ stopped }, null);
    }
    case "restart-agent":
      // The finished event goes out first; the agent then exits for its service manager to restart it.
      return { ...succeeded({}, null), then: "restart-agent" };
    case "refresh":
      ctx.refreshReport();
      return succeeded({}, null);
    case "build":
      // A builder's build names the hosts it builds for the fleet; a host's own names none.
      return ctx.delivery.builds.length > 0 ? runBuilderBuild(ctx) : runBuild(ctx);
    case "gc":
      return runGc(ctx);
    case "reboot":
      return runRebootCommand(ctx);
    default:
      return assertNever(kind);
  }
}

function assertNever(kind: never): never {
  throw new Error(`unhandled command kind ${String(kind)}`);
}
