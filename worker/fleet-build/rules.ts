/**
 * Build before deploy, the control plane's rules (docs/fleet-build.md): which
 * hosts a fleet build of an update PR head covers and which of them count,
 * each host's state from its `build` command, the verdict, and the commit
 * status's description. Pure: the coordinator stores what these return and
 * carries out what they ask for.
 */
import * as z from "zod";
import {
  BuildTarget,
  FleetBuildHostView,
  HostName,
  Sha1,
  type CommandResult,
  type CommandState,
  type FleetBuildVerdict,
  type FleetBuildView,
  type Settings,
} from "../../common/protocol.ts";
import { planRollout, type PlanHost } from "../rollouts/plan.ts";
import { errorLines, NIX_IGNORED_ERROR } from "../../common/text.ts";
import { assignBuilder, hostBuildOutcome, type BuilderScopeHost } from "./builders.ts";

/** The commit status's context on the PR head; our own status is never part of the CI state we read back. */
export const FLEET_BUILD_CONTEXT = "nixfleet/fleet-build";
/** GitHub refuses a longer commit status description. */
export const STATUS_DESCRIPTION_MAX = 140;

/** A host of a fleet build as stored: its view's facts, without what is derived (`counted`). */
/** A host's build as stored: the view's fields (but `counted`, derived) plus what decides whether it counts. */
export const FleetBuildHostRecord = FleetBuildHostView.omit({ counted: true }).extend({
  hostId: z.string(),
  /** In rollout scope; when false, `excludedBecause` says why (held, `autoUpdate = false`). */
  inScope: z.boolean(),
  excludedBecause: z.string().optional(),
  /** The builder host whose one build command builds this host's system (settings `fleetBuild.builders`). */
  builder: z.object({ name: HostName, hostId: z.string(), target: BuildTarget }).optional(),
});
export type FleetBuildHostRecord = z.infer<typeof FleetBuildHostRecord>;

export const GitHubStatusRecord = z.object({
  state: z.enum(["pending", "success", "failure"]),
  /** The description of the last successful post; a change of it is posted again. */
  description: z.string(),
  postedAt: z.string().nullable(),
  error: z.string().nullable(),
});
export type GitHubStatusRecord = z.infer<typeof GitHubStatusRecord>;

/** A fleet build as the coordinator stores it (its own SQLite storage, as JSON). */
export const FleetBuildRecord = z.object({
  id: z.string(),
  pr: z.number().int().positive(),
  headSha: Sha1,
  /** The head's git tree (GitHub's, or the first host's build result): System matches a failed build to main by tree. */
  headTree: Sha1.nullable().default(null),
  startedBy: z.string(),
  startedAt: z.string(),
  /** Set when the last host settled; cleared again when an offline host comes back and builds. */
  finishedAt: z.string().nullable(),
  /** A newer head (or a re-run) replaced this build: nothing is queued for it any more. */
  supersededBy: z.string().nullable(),
  /** The PR was closed unmerged. */
  closed: z.boolean(),
  /** The settings it started with: a verdict does not change because a setting did afterwards. */
  offlineHostsBlock: z.boolean(),
  countExcludedHosts: z.boolean(),
  hosts: z.array(FleetBuildHostRecord),
  githubStatus: GitHubStatusRecord.nullable(),
});
export type FleetBuildRecord = z.infer<typeof FleetBuildRecord>;

/** A host as a fleet build sees it when it starts: the rollout planner's view, its id, and presence. */
export interface FleetBuildScopeHost extends PlanHost, BuilderScopeHost {
  id: string;
}

/** The host whose command builds `host`: its builder, or itself. */
export const runnerOf = (host: Pick<FleetBuildHostRecord, "name" | "hostId" | "builder">): { name: string; hostId: string } =>
  host.builder === undefined ? { name: host.name, hostId: host.hostId } : { name: host.builder.name, hostId: host.builder.hostId };

const ACTIVE_HOST_STATES: ReadonlySet<FleetBuildHostRecord["state"]> = new Set(["waiting", "queued", "building"]);
/** Not built, and not for a reason of the configuration: they count only with `offlineHostsBlock`. */
const NOT_BUILT_STATES: ReadonlySet<FleetBuildHostRecord["state"]> = new Set(["offline", "cancelled"]);

export const isHostActive = (host: Pick<FleetBuildHostRecord, "state">): boolean => ACTIVE_HOST_STATES.has(host.state);

/** Whether a later event can still move the build: a host still building, or an offline host that may come back. */
export function isOpen(build: FleetBuildRecord): boolean {
  if (build.hosts.some(isHostActive)) return true;
  return isCurrent(build) && build.hosts.some((h) => h.state === "offline");
}

/** The PR's latest build, and the PR still open: new work may be queued for it. */
export const isCurrent = (build: FleetBuildRecord): boolean => build.supersededBy === null && !build.closed;

/**
 * Every host is built. Counted are the hosts in rollout scope as an automatic
 * rollout would plan it (`planRollout`: holds and `autoUpdate = false` leave a
 * host out), or every host with `countExcludedHosts`. Online hosts are to be
 * queued (`queued`), offline ones are listed `offline`.
 */
export function createFleetBuild(input: {
  id: string;
  pr: number;
  headSha: string;
  headTree?: string | null;
  actor: string;
  hosts: readonly FleetBuildScopeHost[];
  settings: Settings;
  now: Date;
}): FleetBuildRecord {
  // Presence is this build's own concern (offline hosts are listed, not left out), so the plan sees every host online.
  const plan = planRollout({ hosts: input.hosts.map((h) => ({ ...h, online: true })), settings: input.settings, automatic: true, now: input.now });
  const excluded = new Map(plan.leftOut.map((h) => [h.name, h.reason]));
  const online = new Map(input.hosts.map((h) => [h.id, h.online]));
  const hosts = [...input.hosts]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((host): FleetBuildHostRecord => {
      const why = excluded.get(host.name);
      const scope = { name: host.name, hostId: host.id, inScope: why === undefined, ...(why === undefined ? {} : { excludedBecause: why }) };
      const assigned = assignBuilder(host, input.settings.fleetBuild.builders, input.hosts);
      if (assigned.by === "missing") {
        const reason = `its builder ${assigned.builder} (${assigned.system}) is not a host of the fleet: fix fleetBuild.builders`;
        return { ...scope, state: "cancelled", reason, finishedAt: input.now.toISOString() };
      }
      if (assigned.by === "builder") {
        // The host itself may be offline: only its builder has to be there.
        const builderOnline = online.get(assigned.builder.hostId) === true;
        return {
          ...scope,
          builder: assigned.builder,
          state: builderOnline ? "queued" : "offline",
          ...(builderOnline ? {} : { reason: `its builder ${assigned.builder.name} was offline when the build started: built when it comes back` }),
        };
      }
      return {
        ...scope,
        state: host.online ? "queued" : "offline",
        ...(host.online ? {} : { reason: "offline when the build started: built when it comes back" }),
      };
    });
  return {
    id: input.id,
    pr: input.pr,
    headSha: input.headSha,
    headTree: input.headTree ?? null,
    startedBy: input.actor,
    startedAt: input.now.toISOString(),
    finishedAt: null,
    supersededBy: null,
    closed: false,
    offlineHostsBlock: input.settings.fleetBuild.offlineHostsBlock,
    countExcludedHosts: input.settings.fleetBuild.countExcludedHosts,
    hosts,
    githubStatus: null,
  };
}

/** Sets `finishedAt` when the last host settled, clears it when one moves again. */
function settle(build: FleetBuildRecord, now: Date): FleetBuildRecord {
  const active = build.hosts.some(isHostActive);
  if (active) return build.finishedAt === null ? build : { ...build, finishedAt: null };
  return build.finishedAt === null ? { ...build, finishedAt: now.toISOString() } : build;
}

function withHost(build: FleetBuildRecord, name: string, change: (host: FleetBuildHostRecord) => FleetBuildHostRecord, now: Date): FleetBuildRecord {
  let changed = false;
  const hosts = build.hosts.map((host) => {
    if (host.name !== name) return host;
    const next = change(host);
    changed ||= next !== host;
    return next;
  });
  return changed ? settle({ ...build, hosts }, now) : build;
}

/** Only what a host's state says: a fresh attempt drops the last attempt's outcome. */
const fresh = (host: FleetBuildHostRecord): FleetBuildHostRecord => ({
  name: host.name,
  hostId: host.hostId,
  inScope: host.inScope,
  ...(host.excludedBecause === undefined ? {} : { excludedBecause: host.excludedBecause }),
  ...(host.builder === undefined ? {} : { builder: host.builder }),
  state: host.state,
});

/** The host's build command was stored (queued, or handed to its waiting poll). */
export const hostQueued = (build: FleetBuildRecord, name: string, commandId: string, now: Date): FleetBuildRecord =>
  withHost(build, name, (host) => ({ ...fresh(host), state: "queued", commandId }), now);

/** The host runs another command: its build is queued when that ends. */
export const hostWaiting = (build: FleetBuildRecord, name: string, busyWith: string, now: Date): FleetBuildRecord =>
  withHost(build, name, (host) => ({ ...fresh(host), state: "waiting", reason: `waiting for ${busyWith} to end` }), now);

/** The control plane could not queue the build, or its command is gone (the host was removed, say). */
export const hostCancelled = (build: FleetBuildRecord, name: string, why: string, now: Date): FleetBuildRecord =>
  withHost(build, name, (host) => ({ ...fresh(host), state: "cancelled", reason: why, finishedAt: now.toISOString() }), now);

/** What a build command's transition carries, as the rules need it. */
export interface BuildCommandChange {
  id: string;
  state: CommandState;
  startedAt: string | null;
  finishedAt: string | null;
  error: string | null;
  result: CommandResult | null;
}

/**
 * Nix's own `error:` line of a build's output, as nix printed it (prefix kept, colours removed), else
 * its first line; never null. Unlike the compartments' firstErrorLine (common/text.ts) it does not
 * shorten the line or look for other failure words: the commit status's description cuts it to fit
 * (fitDescription), and a build's output has only nix's lines to choose from.
 */
export function firstNixErrorLine(text: string | null | undefined): string {
  const lines = errorLines(text);
  return lines.find((line) => /^error\b/i.test(line) && !NIX_IGNORED_ERROR.test(line)) ?? lines[0] ?? "no error message";
}

/**
 * The host whose command `change` is moves with it; a change of a command
 * this build does not know returns the build unchanged (the same object).
 */
export function hostCommandChanged(build: FleetBuildRecord, change: BuildCommandChange, now: Date): FleetBuildRecord {
  // A builder's one command builds several hosts: each moves with it.
  const hosts = build.hosts.filter((h) => h.commandId === change.id && isHostActive(h));
  if (hosts.length === 0) return build;
  const tree = change.result?.build?.tree ?? null;
  let next = build.headTree === null && tree !== null ? { ...build, headTree: tree } : build;
  for (const host of hosts) next = withHost(next, host.name, (current) => hostMoved(current, change, now), now);
  return next;
}

function hostMoved(current: FleetBuildHostRecord, change: BuildCommandChange, now: Date): FleetBuildHostRecord {
  const base = { ...fresh(current), commandId: change.id, ...(change.startedAt === null ? {} : { startedAt: change.startedAt }) };
  const finishedAt = change.finishedAt ?? now.toISOString();
  const built = change.result?.build;
  switch (change.state) {
    case "queued":
    case "delivered":
      return current.state === "queued" ? current : { ...base, state: "queued" };
    case "running":
      return current.state === "building" ? current : { ...base, state: "building" };
    case "succeeded":
    case "failed":
      if (current.builder !== undefined) return builtByBuilder(base, current.builder.name, change, finishedAt);
      if (change.state === "succeeded") {
        return {
          ...base,
          state: "built",
          finishedAt,
          ...(built === undefined
            ? {}
            : {
                durationMs: built.durationMs,
                storePath: built.storePath,
                closureDiff: built.closureDiff,
                ...(built.closureDiffProblem === undefined ? {} : { closureDiffProblem: built.closureDiffProblem }),
              }),
        };
      }
      return failedWith(base, finishedAt, built?.errorTail ?? change.error, built === undefined ? {} : { durationMs: built.durationMs, storePath: built.storePath });
    case "timed-out":
    case "lost":
      // The configuration may be fine, but the fleet cannot say it builds there.
      return { ...base, state: "failed", finishedAt, reason: `${change.state}: ${firstNixErrorLine(change.error)}` };
    case "cancelled":
      return { ...base, state: "cancelled", finishedAt, reason: change.error ?? "cancelled" };
  }
}

function failedWith(base: FleetBuildHostRecord, finishedAt: string, text: string | null | undefined, extra: Partial<FleetBuildHostRecord>): FleetBuildHostRecord {
  const tail = text ?? "";
  return { ...base, ...extra, state: "failed", finishedAt, reason: firstNixErrorLine(text), ...(tail === "" ? {} : { errorTail: tail.slice(-4000) }) };
}

/** The host's own entry in its builder's result decides, whatever the builder's command as a whole says. */
function builtByBuilder(base: FleetBuildHostRecord, builder: string, change: BuildCommandChange, finishedAt: string): FleetBuildHostRecord {
  const outcome = hostBuildOutcome(change.result?.hostBuilds?.[base.name], change.error);
  if (outcome.built) {
    return {
      ...base,
      state: "built",
      finishedAt,
      durationMs: outcome.durationMs,
      storePath: outcome.storePath,
      closureDiff: null,
      closureDiffProblem: `built by ${builder}, which does not run this host's system: no closure diff`,
    };
  }
  return failedWith(base, finishedAt, outcome.errorTail ?? outcome.error, outcome.durationMs === null ? {} : { durationMs: outcome.durationMs });
}

/**
 * A newer head (or a re-run) replaces this build: hosts not yet queued are
 * cancelled here, and the commands still out are returned for the
 * coordinator to cancel (queued) or stop (delivered, running); their ends
 * come back through `hostCommandChanged`.
 */
export function stopBuild(
  build: FleetBuildRecord,
  why: { supersededBy: string } | { closed: true },
  reason: string,
  now: Date,
): { build: FleetBuildRecord; commands: OutstandingCommand[] } {
  const commands = new Map<string, OutstandingCommand>();
  const hosts = build.hosts.map((host): FleetBuildHostRecord => {
    if (host.state === "offline") return { ...host, reason: `offline; not built: ${reason}` };
    if (!isHostActive(host)) return host;
    if (host.commandId !== undefined && host.state !== "waiting") {
      const runner = runnerOf(host);
      const out = commands.get(host.commandId) ?? { host: runner.name, hostId: runner.hostId, commandId: host.commandId, builds: [] };
      out.builds.push(host.name);
      commands.set(host.commandId, out);
      return host;
    }
    return { ...fresh(host), state: "cancelled", reason, finishedAt: now.toISOString() };
  });
  const marked = "supersededBy" in why ? { supersededBy: why.supersededBy } : { closed: true };
  return { build: settle({ ...build, ...marked, hosts }, now), commands: [...commands.values()] };
}

/** A build command still out when a build stops: the host that runs it, and the hosts of the build it builds. */
export interface OutstandingCommand {
  host: string;
  hostId: string;
  commandId: string;
  builds: string[];
}

/** Hosts whose build waits for something: `offline` ones when they come back, `waiting` ones when they are free. */
export function hostsToQueue(build: FleetBuildRecord, hostId: string, on: "online" | "free"): FleetBuildHostRecord[] {
  if (!isCurrent(build)) return [];
  const wanted = on === "online" ? "offline" : "waiting";
  return build.hosts.filter((h) => runnerOf(h).hostId === hostId && h.state === wanted);
}

/** Whether the host counts toward the verdict now. */
export function isCounted(build: FleetBuildRecord, host: FleetBuildHostRecord): boolean {
  if (!host.inScope && !build.countExcludedHosts) return false;
  if (NOT_BUILT_STATES.has(host.state) && !build.offlineHostsBlock) return false;
  return true;
}

export interface FleetBuildSummary {
  verdict: FleetBuildVerdict;
  built: number;
  counted: number;
  description: string;
}

const listNames = (names: readonly string[]): string => (names.length <= 2 ? names.join(" and ") : `${names[0]} and ${names.length - 1} more`);

/** Cuts at GitHub's limit, ending with an ellipsis where it cut. */
export function fitDescription(text: string): string {
  const chars = [...text];
  return chars.length <= STATUS_DESCRIPTION_MAX ? text : `${chars.slice(0, STATUS_DESCRIPTION_MAX - 1).join("")}…`;
}

/**
 * The verdict: `failure` when a counted host failed, `success` when every
 * counted host built, `pending` otherwise. The description is what the
 * commit status says: "8/9 hosts built, hsb1 failed: error: …".
 */
export function summarize(build: FleetBuildRecord): FleetBuildSummary {
  const counted = build.hosts.filter((h) => isCounted(build, h));
  const built = counted.filter((h) => h.state === "built").length;
  const failed = counted.filter((h) => h.state === "failed");
  const head = `${built}/${counted.length} hosts built`;
  let verdict: FleetBuildVerdict;
  let detail: string;
  if (failed.length > 0) {
    verdict = "failure";
    detail = `, ${listNames(failed.map((h) => h.name))} failed: ${failed[0]!.reason ?? "no error message"}`;
  } else if (built === counted.length && (counted.length > 0 || !build.hosts.some((h) => h.inScope || build.countExcludedHosts))) {
    // Nothing counted because every host that would count was not built is no success: only an empty scope is.
    verdict = "success";
    const notBuilt = build.hosts.filter((h) => NOT_BUILT_STATES.has(h.state) && (h.inScope || build.countExcludedHosts));
    detail = notBuilt.length === 0 ? "" : ` (not built: ${listNames(notBuilt.map((h) => `${h.name} ${h.state}`))})`;
  } else {
    verdict = "pending";
    const building = counted.filter((h) => isHostActive(h)).length;
    const blocked = counted.filter((h) => NOT_BUILT_STATES.has(h.state)).map((h) => `${h.name} ${h.state}`);
    detail = [building > 0 ? `${building} building` : null, blocked.length > 0 ? `waiting for ${listNames(blocked)}` : null]
      .filter((part) => part !== null)
      .map((part) => `, ${part}`)
      .join("");
  }
  if (build.supersededBy !== null) detail += " (superseded by a newer head)";
  else if (build.closed) detail += " (PR closed)";
  return { verdict, built, counted: counted.length, description: fitDescription(head + detail) };
}

export function toFleetBuildView(build: FleetBuildRecord): FleetBuildView {
  const summary = summarize(build);
  return {
    id: build.id,
    pr: build.pr,
    headSha: build.headSha,
    ...summary,
    startedBy: build.startedBy,
    startedAt: build.startedAt,
    ...(build.finishedAt === null ? {} : { finishedAt: build.finishedAt }),
    superseded: build.supersededBy !== null,
    hosts: build.hosts.map((host): FleetBuildHostView => {
      const { hostId: _id, inScope: _scope, excludedBecause, reason, builder, ...rest } = host;
      const counted = isCounted(build, host);
      const why = reason ?? (!counted && excludedBecause !== undefined ? `not counted: ${excludedBecause}` : undefined);
      return { ...rest, counted, ...(why === undefined ? {} : { reason: why }), ...(builder === undefined ? {} : { builtBy: builder.name }) };
    }),
    githubStatus: build.githubStatus === null ? null : { state: build.githubStatus.state, postedAt: build.githubStatus.postedAt, error: build.githubStatus.error },
  };
}

/**
 * The commit status the build's current summary calls for, or null when the
 * last successful post already says it. A superseded or closed build posts
 * nothing more: the status belongs to its head, which a newer build (or no
 * one) now speaks for.
 */
export function statusToPost(build: FleetBuildRecord): { state: FleetBuildVerdict; description: string } | null {
  if (!isCurrent(build)) return null;
  const { verdict, description } = summarize(build);
  const last = build.githubStatus;
  if (last !== null && last.postedAt !== null && last.error === null && last.state === verdict && last.description === description) return null;
  return { state: verdict, description };
}

/** The hosts a rollout of this build's head leaves out unless told otherwise: those whose build failed. */
export const failedHosts = (build: Pick<FleetBuildView, "hosts">): string[] => build.hosts.filter((h) => h.state === "failed").map((h) => h.name);

/**
 * What an update PR's change means for its fleet build: a head to build
 * (opened, or its head moved, with the feature and `buildOnUpdatePr` on), a
 * build to stop (closed unmerged), or nothing. The coordinator makes "start"
 * once per head, so a redelivered webhook changes nothing.
 */
export function fleetBuildTrigger(
  pr: { isUpdatePr: boolean; state: "open" | "closed" | "merged" },
  settings: Pick<Settings, "flakeUpdates" | "fleetBuild">,
): "start" | "cancel" | null {
  if (!pr.isUpdatePr) return null;
  if (pr.state === "closed") return "cancel";
  if (pr.state !== "open") return null;
  return settings.flakeUpdates.enabled && settings.fleetBuild.buildOnUpdatePr ? "start" : null;
}
