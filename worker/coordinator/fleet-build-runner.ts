/**
 * Fleet builds: the pure rules (worker/fleet-build/rules.ts) decide; this is their storage and hands.
 * Every change loads the stored build, applies a rule and stores it in one synchronous step; what it
 * causes (a command queued, cancelled, stopped) comes after the save and moves the build through its
 * own step. A change of a build's summary writes its commit status post to the outbox (commit-status.ts).
 */
import { isActiveCommand } from "../../common/commands.ts";
import { EXCLUSIVE_COMMAND_KINDS, type FleetBuildView, type Settings } from "../../common/protocol.ts";
import { shortSha } from "../../common/text.ts";
import { NO_PARAMETERS, type CommandRecord } from "../commands/rules.ts";
import type { FleetBuildStore } from "../db/coordinator/fleet-builds.ts";
import {
  createFleetBuild,
  failedHosts,
  hostCancelled,
  hostCommandChanged,
  hostQueued,
  hostsToQueue,
  hostWaiting,
  isCurrent,
  runnerOf,
  statusToPost,
  stopBuild,
  summarize,
  toFleetBuildView,
  type FleetBuildHostRecord,
  type FleetBuildRecord,
  type FleetBuildScopeHost,
} from "../fleet-build/rules.ts";
import { newlyBuiltByBuilders } from "../fleet-build/builders.ts";
import { newId } from "../ids.ts";
import type { CommandPort } from "./dispatch.ts";
import { auditEffect } from "./effects.ts";
import type { CoordinatorHost } from "./host.ts";
import { step, type Step } from "./step.ts";

/** How many recent fleet builds System looks through for a failed build of main's tree. */
const RECENT_FAILED_BUILDS = 20;

export interface BuildGate {
  build: FleetBuildView | null;
  failedBuilds: { commit: string; hosts: string[] } | undefined;
}

export class FleetBuildRunner {
  private readonly host: CoordinatorHost;
  private readonly store: FleetBuildStore;
  private readonly commands: CommandPort;

  constructor(host: CoordinatorHost, store: FleetBuildStore, commands: CommandPort) {
    this.host = host;
    this.store = store;
    this.commands = commands;
  }

  view(id: string): FleetBuildView | null {
    const build = this.store.fleetBuild(id);
    return build ? toFleetBuildView(build) : null;
  }

  /** The latest build of each PR (of whatever head: the caller compares it with the PR's current head). */
  latestOf(prs: number[]): Record<number, FleetBuildView> {
    const builds: Record<number, FleetBuildView> = {};
    for (const pr of new Set(prs)) {
      const latest = this.store.latestFleetBuild(pr);
      if (latest) builds[pr] = toFleetBuildView(latest);
    }
    return builds;
  }

  /** The fleet build of an update PR's head and the hosts a rollout of it leaves out for a failed build (none when the person insists). */
  gate(buildOf: { pr: number; headSha: string } | null | undefined, includeFailedBuilds: boolean): BuildGate {
    const latest = buildOf ? this.store.latestFleetBuild(buildOf.pr) : null;
    const build = latest !== null && buildOf && latest.headSha === buildOf.headSha ? toFleetBuildView(latest) : null;
    const failed = build === null || includeFailedBuilds ? [] : failedHosts(build);
    return { build, failedBuilds: failed.length > 0 && buildOf ? { commit: buildOf.headSha, hosts: failed } : undefined };
  }

  /**
   * Builds the PR's head on every host (docs/fleet-build.md). Once per head: a build of this head that
   * is the PR's latest is returned as it is (`started: false`) unless `force` (the re-run button). An
   * older build of the PR is superseded: its queued builds cancelled, its running ones stopped.
   */
  start(
    input: { pr: number; headSha: string; headTree?: string | null; actor: string; force?: boolean },
    scope: FleetBuildScopeHost[],
    settings: Settings,
  ): Step<{ build: FleetBuildView; started: boolean }> {
    const latest = this.store.latestFleetBuild(input.pr);
    if (!input.force && latest !== null && latest.headSha === input.headSha && isCurrent(latest)) {
      // A redelivered webhook or the cron: nothing restarts, but a status GitHub did not take is posted again.
      this.postStatus(latest);
      return step({ build: toFleetBuildView(latest), started: false });
    }
    const now = new Date(this.host.now());
    const id = newId("fb");
    // Only the PR's latest build is ever current: each new one supersedes it.
    if (latest !== null && isCurrent(latest)) {
      this.stop(latest.id, { supersededBy: id }, `superseded by ${shortSha(input.headSha)}`, `fleet build ${id}`);
    }
    const build = createFleetBuild({ id, pr: input.pr, headSha: input.headSha, headTree: input.headTree ?? null, actor: input.actor, hosts: scope, settings, now });
    this.store.saveFleetBuild(build);
    this.queueHosts(id, input.headSha, build.hosts.filter((host) => host.state === "queued"));
    this.store.pruneFleetBuilds();
    const stored = this.store.fleetBuild(id) ?? build;
    this.host.broadcast({ type: "fleet-build", build: toFleetBuildView(stored) });
    this.postStatus(stored);
    this.host.effect(auditEffect(now.getTime(), input.actor, "fleet-build.start", `#${input.pr}`, { id, headSha: input.headSha, hosts: build.hosts.length }));
    return step({ build: toFleetBuildView(this.store.fleetBuild(id) ?? stored), started: true });
  }

  /** Host name → the fleet builds that failed on it, newest first, with their head's tree (System's "main does not build"). */
  failedByHost(): Record<string, { commit: string; tree: string | null; error: string | null }[]> {
    const failed: Record<string, { commit: string; tree: string | null; error: string | null }[]> = {};
    for (const build of this.store.recentFleetBuilds(RECENT_FAILED_BUILDS)) {
      if (build.headTree === null) continue;
      for (const host of build.hosts) {
        if (host.state !== "failed") continue;
        (failed[host.name] ??= []).push({ commit: build.headSha, tree: build.headTree, error: host.errorTail ?? host.reason ?? null });
      }
    }
    return failed;
  }

  /** The PR was closed unmerged: its current build stops (queued builds cancelled, running ones stopped). */
  cancelFor(pr: number, actor: string): Step<string[]> {
    const cancelled: string[] = [];
    for (const build of this.store.openFleetBuilds()) {
      if (build.pr !== pr || !isCurrent(build)) continue;
      this.stop(build.id, { closed: true }, "the PR was closed unmerged", actor);
      cancelled.push(build.id);
    }
    return step(cancelled);
  }

  /** A host came online or ended a command: builds that waited for that are queued now. */
  queueWaiting(hostId: string, on: "online" | "free"): Step<undefined> {
    for (const build of this.store.openFleetBuilds()) this.queueHosts(build.id, build.headSha, hostsToQueue(build, hostId, on));
    return step();
  }

  commandChanged(record: CommandRecord): Step<undefined> {
    const now = new Date(this.host.now());
    for (const build of this.store.openFleetBuilds()) {
      if (!build.hosts.some((h) => h.commandId === record.id)) continue;
      this.update(build.id, (current) => hostCommandChanged(current, record, now));
    }
    return step();
  }

  /** A removed host's commands are deleted without a transition: its builds hear it here. */
  hostRemoved(hostId: string): Step<undefined> {
    const now = new Date(this.host.now());
    for (const build of this.store.openFleetBuilds()) {
      for (const host of build.hosts) {
        if (host.state === "built" || host.state === "failed") continue;
        if (host.hostId === hostId) this.update(build.id, (current) => hostCancelled(current, host.name, "the host was removed", now));
        else if (host.builder?.hostId === hostId) this.update(build.id, (current) => hostCancelled(current, host.name, `its builder ${host.builder!.name} was removed`, now));
      }
    }
    return step();
  }

  /** One build command per host that builds: a builder's builds every host assigned to it, the others their own. */
  private queueHosts(buildId: string, headSha: string, hosts: readonly FleetBuildHostRecord[]): void {
    const byRunner = new Map<string, { runner: { name: string; hostId: string }; hosts: FleetBuildHostRecord[] }>();
    for (const host of hosts) {
      const runner = runnerOf(host);
      const group = byRunner.get(runner.hostId) ?? { runner, hosts: [] };
      group.hosts.push(host);
      byRunner.set(runner.hostId, group);
    }
    for (const { runner, hosts: group } of byRunner.values()) this.queueOn(buildId, headSha, runner, group);
  }

  /** Queues the build on `runner`, or marks its hosts waiting for the command it runs; the build records which. */
  private queueOn(buildId: string, headSha: string, runner: { name: string; hostId: string }, hosts: readonly FleetBuildHostRecord[]): void {
    const builds = hosts.flatMap((host) => (host.builder === undefined ? [] : [host.builder.target]));
    const parameters = builds.length === 0 ? undefined : { ...NO_PARAMETERS, builds };
    const queued = this.commands.enqueue({ id: runner.hostId, name: runner.name }, "build", `fleet build ${buildId}`, { commit: headSha, rolloutId: null, ...(parameters === undefined ? {} : { parameters }) }).value;
    const now = new Date(this.host.now());
    const whose = builds.length === 0 ? "its" : `its builder ${runner.name}'s`;
    for (const host of hosts) {
      if (queued.ok) {
        this.update(buildId, (build) => hostQueued(build, host.name, queued.command.id, now));
      } else if (queued.code === "host_busy") {
        const busy = this.commands.activeCommandsOf(runner.hostId).find((c) => EXCLUSIVE_COMMAND_KINDS.has(c.kind));
        this.update(buildId, (build) => hostWaiting(build, host.name, busy ? `${whose} ${busy.kind} (${busy.id})` : `${whose} running command`, now));
      } else {
        this.update(buildId, (build) => hostCancelled(build, host.name, `not queued: ${queued.message}`, now));
      }
    }
  }

  private stop(id: string, why: { supersededBy: string } | { closed: true }, reason: string, actor: string): void {
    const build = this.store.fleetBuild(id);
    if (!build) return;
    const now = new Date(this.host.now());
    const { build: stopped, commands } = stopBuild(build, why, reason, now);
    this.save(stopped);
    for (const { host, hostId, commandId, builds } of commands) {
      const record = this.commands.command(commandId);
      if (record === null || !isActiveCommand(record)) {
        // Its end was never heard (a removed host): nothing is out any more.
        for (const name of builds) this.update(id, (current) => hostCancelled(current, name, reason, now));
      } else if (record.state === "queued") {
        this.commands.transition(record, { state: "cancelled", finishedAt: now.toISOString(), error: reason });
      } else {
        // The agent ends the build `cancelled`; that end moves the build (commandChanged).
        this.commands.enqueue({ id: hostId, name: host }, "stop", actor, { commit: null, rolloutId: null });
      }
    }
  }

  /** Load, apply, store, tell. A rule that changes nothing returns the same object. */
  private update(id: string, change: (build: FleetBuildRecord) => FleetBuildRecord): void {
    const build = this.store.fleetBuild(id);
    if (!build) return;
    const next = change(build);
    if (next !== build) this.save(next);
  }

  private save(build: FleetBuildRecord): void {
    const before = this.store.fleetBuild(build.id);
    this.store.saveFleetBuild(build);
    // A verdict that changes may let the automation merge (requireFleetBuild) or say why it will not.
    if (before === null || summarize(before).verdict !== summarize(build).verdict) this.host.effect({ type: "nudge-automation", pr: build.pr });
    const at = new Date(this.host.now()).toISOString();
    for (const { builder, hosts } of newlyBuiltByBuilders(before?.hosts ?? null, build.hosts)) {
      this.host.effect({ type: "publish-desired", buildId: build.id, commit: build.headSha, tree: build.headTree, builder, hosts, at });
    }
    this.host.broadcast({ type: "fleet-build", build: toFleetBuildView(build) });
    this.postStatus(build);
  }

  /** A summary GitHub has not taken yet: one pending post per build, which reads the build's latest state when carried out. */
  private postStatus(build: FleetBuildRecord): void {
    if (statusToPost(build) !== null) this.host.effect({ type: "commit-status", buildId: build.id });
  }
}
