/**
 * `build` on a builder host (settings `fleetBuild.builders`, docs/fleet-build.md "Builder hosts"): the
 * update PR head's system of every host the delivery names, built here from one checkout, uploaded to the
 * fleet cache signed with this builder's key (cache-push.ts, as `nixfleet-agent cache push` does), and
 * named in the signed manifest of the commit, which hosts in substitute mode switch by. Each host's
 * outcome goes back in `hostBuilds`: its fleet-build verdict is this, not the command's as a whole.
 */
import * as fs from "node:fs/promises";
import * as path from "node:path";
import type { BuildResult, BuildTarget, CommandResult, HostBuild } from "../../common/protocol.ts";
import { plural } from "../../common/text.ts";
import { CachePushError, publishManifest, pushToCache } from "../cache-push.ts";
import { checkStoreSpace } from "../disk-space.ts";
import { removeWorktree, withCache } from "../commit-worktree.ts";
import { platformFor } from "../platforms/index.ts";
import { BUILD_OUTPUT_LIMIT, buildDirs, cappedOutput, checkOut, deadlineSignal, nixBuild } from "./build.ts";
import { cancelled, failed, succeeded, type CommandContext, type CommandOutcome } from "./context.ts";

const ERROR_MAX_CHARS = 4000;

export async function runBuilderBuild(ctx: CommandContext): Promise<CommandOutcome> {
  const commit = ctx.delivery.commit;
  if (commit === null) return failed("a build needs a commit to build, and this one came without");
  const targets = [...ctx.delivery.builds].sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));
  const signal = AbortSignal.any([ctx.cancel, deadlineSignal(ctx.delivery.deadlineAt)]);
  const started = performance.now();
  const dirs = buildDirs(ctx.store.stateDir, ctx.delivery.id);
  const output = cappedOutput(BUILD_OUTPUT_LIMIT, ctx.output, ctx.say);
  let tree: string | null = null;
  const hostBuilds: Record<string, HostBuild> = {};
  const result = (): CommandResult => ({
    build: { commit, tree, storePath: null, durationMs: Math.round(performance.now() - started), comparedWith: null, closureDiff: null } satisfies BuildResult,
    hostBuilds,
  });
  const stopped = (): CommandOutcome =>
    ctx.cancel.aborted ? cancelled(result()) : failed(`the build passed its deadline (${ctx.delivery.deadlineAt}) and was killed`, result());

  const keys = ctx.config.builder;
  if (keys === null) {
    return failed(
      `fleetBuild.builders names this host a builder, but it has no builder keys: set services.nixfleet-agent.cache.builder.secretKeyFile and cacheTokenFile, or name another builder`,
      result(),
    );
  }
  const storeShort = await checkStoreSpace(ctx.config, ctx.runner, ctx.say);
  if (storeShort !== null) return failed(storeShort, result());

  try {
    const checkedOut = await checkOut(ctx, dirs, commit, signal, output);
    if (checkedOut === "stopped") return stopped();
    if ("failed" in checkedOut) return failed(checkedOut.failed, result());
    tree = checkedOut.tree;
    if (tree === null) return failed(`the tree of ${commit} cannot be read: the signed manifest names it`, result());

    ctx.say(`building the systems of ${plural(targets.length, "host")} for the fleet at ${commit}: ${targets.map((t) => t.host).join(", ")}`);
    // One at a time, each with its own out-link: a host's failure is its own, and every result stays alive until it is uploaded.
    for (const target of targets) {
      const hostStarted = performance.now();
      const built = await nixBuild(ctx, installableOf(ctx, target, dirs.src), path.join(dirs.work, `result-${target.host}`), dirs.src, signal, output);
      if (built === "stopped") return stopped();
      const durationMs = Math.round(performance.now() - hostStarted);
      if ("failed" in built) {
        ctx.say(`${target.host}: ${built.failed}`);
        hostBuilds[target.host] = { storePath: null, durationMs, error: `the build of ${target.host} failed (${built.failed})`, ...(built.errorTail === "" ? {} : { errorTail: built.errorTail }) };
      } else {
        ctx.say(`${target.host}: built ${built.storePath} in ${(durationMs / 1000).toFixed(1)} s`);
        hostBuilds[target.host] = { storePath: built.storePath, durationMs };
      }
    }

    const built = Object.entries(hostBuilds).flatMap(([host, entry]) => (entry.storePath === null ? [] : [[host, entry.storePath] as const]));
    if (built.length > 0) {
      const problem = await publish(ctx, keys, commit, tree, Object.fromEntries(built));
      if (signal.aborted) return stopped();
      if (problem !== null) {
        for (const [host] of built) hostBuilds[host] = { ...hostBuilds[host]!, storePath: null, error: `built, but ${problem}` };
      }
    }
    const failedHosts = targets.filter((target) => hostBuilds[target.host]?.storePath == null);
    if (failedHosts.length === 0) return succeeded(result());
    const first = hostBuilds[failedHosts[0]!.host]!;
    const error = `${plural(failedHosts.length, "host")} of ${targets.length} not built: ${failedHosts.map((t) => t.host).join(", ")}; ${first.error ?? ""}`;
    return failed(error.slice(0, ERROR_MAX_CHARS), result());
  } finally {
    await withCache(dirs.cache, () => removeWorktree(ctx, dirs.cache, dirs.src, dirs.work));
  }
}

/** The flake output of another host's system: its own platform's, at its own attribute. */
function installableOf(ctx: CommandContext, target: BuildTarget, flakeDir: string): string {
  return platformFor({ ...ctx.config, platform: target.platform, flakeAttr: target.flakeAttr }).systemInstallable(flakeDir);
}

/** Uploads the closures, then signs and publishes the manifest naming them: null, or what failed. */
async function publish(
  ctx: CommandContext,
  keys: { secretKeyFile: string; cacheTokenFile: string },
  commit: string,
  tree: string,
  hosts: Record<string, string>,
): Promise<string | null> {
  try {
    const token = (await fs.readFile(keys.cacheTokenFile, "utf8")).trim();
    const paths = Object.values(hosts);
    ctx.say(`uploading ${plural(paths.length, "system")} and their closures to the fleet cache…`);
    const pushed = await pushToCache({ serverUrl: ctx.config.url, token, secretKeyFile: keys.secretKeyFile, paths, runner: ctx.runner, log: ctx.say });
    ctx.say(`${pushed.uploaded.length} paths uploaded (${pushed.bytes} bytes of NARs), ${pushed.present.length} already in the cache`);
    const published = await publishManifest({ serverUrl: ctx.config.url, token, secretKeyFile: keys.secretKeyFile, manifest: { commit, tree, hosts } });
    ctx.say(`the signed manifest for ${published.commit} names ${plural(published.hosts, "host")}`);
    return null;
  } catch (error) {
    if (error instanceof CachePushError) return `not published to the fleet cache: ${error.message}`;
    if ((error as NodeJS.ErrnoException).code !== undefined) return `not published to the fleet cache: ${(error as Error).message}`;
    throw error;
  }
}
