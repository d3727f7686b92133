import { DurableObject } from "cloudflare:workers";
import {
  PROTOCOL_VERSION,
  type CommandDelivery,
  type CommandEvent,
  type CommandKind,
  type CommandView,
  type DashboardEvent,
  type FleetBuildView,
  type HostHold,
  type HostRolloutPart,
  type NotificationEvent,
  type PollRequest,
  type PollResponse,
  type Report,
  type RolloutPlanView,
  type RolloutView,
  type Settings,
  type StoredOutputChunk,
} from "../../common/protocol.ts";
import { isActiveCommand } from "../../common/commands.ts";
import {
  acceptOutput,
  admit,
  applyPatch,
  commandsLostBy,
  deliveryPatch,
  isDeliverable,
  LOST_ERROR,
  newCommand,
  nextDeadline,
  refuse,
  timeoutPatch,
  toCommandView,
  toDelivery,
  type CommandPatch,
  type CommandRecord,
  type Refusal,
} from "../commands/rules.ts";
import { computeCompartments } from "../../common/compartments.ts";
import { NIXFLEET_VERSION } from "../../common/version.ts";
import { writeAudit } from "../db/audit.ts";
import { openDatabase, type Database } from "../db/client.ts";
import { CoordinatorStorage, type RolloutContextRecord } from "../db/coordinator-storage.ts";
import type { GitHubRateLimit } from "../github/client.ts";
import { nextLockThresholdAt } from "../lock-thresholds.ts";
import { MinuteWindow } from "../metrics/window.ts";
import { loadFleetTarget } from "../db/github.ts";
import { getReport, listLockAges, listReports, type StoredReport } from "../db/reports.ts";
import { currentSettings } from "../db/settings.ts";
import {
  createFleetBuild,
  failedHosts,
  FLEET_BUILD_CONTEXT,
  hostCancelled,
  hostCommandChanged,
  hostQueued,
  hostsToQueue,
  hostWaiting,
  isCurrent,
  statusToPost,
  stopBuild,
  summarize,
  toFleetBuildView,
  type FleetBuildHostRecord,
  type FleetBuildRecord,
  type FleetBuildScopeHost,
  type GitHubStatusRecord,
} from "../fleet-build/rules.ts";
import { githubContext, requireClient, requireRepository } from "../github/context.ts";
import {
  advance,
  COMMAND_OUTCOMES,
  createRollout,
  isActive as isRolloutActive,
  toRolloutView,
  type CommandOutcome,
  type Rollout,
  type RolloutAction,
  type RolloutContext,
  type RolloutEvent,
} from "../rollouts/engine.ts";
import { planRollout, type PlanHost, type RolloutPlan } from "../rollouts/plan.ts";
import { DEFAULT_SETTINGS, settingsFromVars } from "../settings.ts";
import { EXCLUSIVE_COMMAND_KINDS } from "../../common/protocol.ts";
import {
  deleteHost,
  findHostByName,
  listHosts,
  findHostByTokenHash,
  insertHostWithToken,
  isUniqueViolation,
  rotateHostToken,
  updateLastSeen,
  type Host,
} from "../db/hosts.ts";
import { upsertReport } from "../db/reports.ts";
import type { WorkerEnv } from "../env.ts";
import { newId, sha256Hex } from "../ids.ts";
import { revertEvent, rolloutEvent } from "../notifications/events.ts";
import { automation } from "../automation.ts";
import { notifier } from "../notifier.ts";
import { shortSha } from "../../common/text.ts";

export { MAX_OUTPUT_BYTES_PER_COMMAND } from "../commands/rules.ts";
export type { Refusal } from "../commands/rules.ts";
export type Outcome<T> = ({ ok: true } & T) | Refusal;

/** A final command state, as the rollout engine names the outcomes it hears about. */
const isCommandOutcome = (state: string): state is CommandOutcome => (COMMAND_OUTCOMES as readonly string[]).includes(state);

type RolloutJob = { kind: "event"; rolloutId: string; event: RolloutEvent } | { kind: "host-freed"; record: CommandRecord };

/** A host whose last poll ended longer ago than its poll timeout plus this is offline. */
const OFFLINE_GRACE_MS = 30_000;
/** "Last seen" reaches D1 on transitions and at most this often, not per poll. */
const LAST_SEEN_FLUSH_MS = 6 * 60 * 60 * 1000;
/** How often a catalogue read is retried when a removal or rotation lands during it. */
const CATALOGUE_READ_TRIES = 5;

type HostRef = Pick<Host, "id" | "name" | "lastSeenAt">;

/** Presence: soft state, rebuilt from the next poll after a restart (at most one poll timeout later). */
interface LiveHost {
  id: string;
  name: string;
  lastSeenMs: number;
  lastFlushedMs: number;
  online: boolean;
  pollTimeoutMs: number;
}

interface WaitingPoll {
  resolve: (commands: CommandDelivery[]) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** A host's lock, as far as the clock can change its Lock compartment. */
interface LockClockEntry {
  name: string;
  lastModified: Record<string, number>;
  /** The next moment its lock age crosses a threshold (lock-thresholds.ts), or null when none is ahead. */
  nextAt: number | null;
}

/** What GET /metrics reads from the coordinator: running totals and windows, never a scan of the history. */
export interface CoordinatorMetrics {
  pollsPerMinute: number;
  reportsPerMinute: number;
  commandTotals: { kind: string; outcome: string; count: number }[];
  commandDurations: { kind: string; buckets: number[]; sumSeconds: number }[];
  activeCommands: { kind: string; state: string }[];
  rolloutStates: Record<string, number>;
  githubRateLimit: GitHubRateLimit | null;
}

const RATE_LIMIT_KEY = "github-rate-limit";
/** The coordinator's copy of the settings in force (without notification channels): see `settingsChanged`. */
const SETTINGS_COPY_KEY = "settings-copy";

export interface CommandOutput {
  command: CommandView;
  chunks: StoredOutputChunk[];
  truncated: boolean;
}

/**
 * The fleet's coordinator: the one Durable Object that holds every waiting
 * agent poll (one object for the fleet, so an idle fleet bills one object's
 * duration, not N), wakes a poll when a command is queued, and is the only
 * writer of a command's state — and of the host catalogue in D1, so that
 * creating, removing and re-keying a host cannot race a poll.
 *
 * Commands live in the object's own SQLite storage (see
 * `worker/db/coordinator-storage.ts`): every check and the write that depends
 * on it run without an await between them. The rules are in
 * `worker/commands/rules.ts`; this class is their I/O.
 */
export class Coordinator extends DurableObject<WorkerEnv> {
  private readonly db: Database;
  private readonly store: CoordinatorStorage;
  private readonly hosts = new Map<string, LiveHost>();
  private readonly tokenOwners = new Map<string, HostRef>();
  /** Hosts by name, so queueing a command needs no D1 read. */
  private readonly hostsByName = new Map<string, HostRef>();
  private readonly waiting = new Map<string, WaitingPoll>();
  /**
   * Bumped when a host is removed or its token rotated: a D1 read that began
   * before may have seen the old catalogue, so it is read again, never cached.
   */
  private catalogueEpoch = 0;
  /** Hosts whose removal is under way: refused from its first step on. */
  private readonly removing = new Set<string>();
  /** Names whose creation is under way: a second create of the same name is refused at once. */
  private readonly creating = new Set<string>();
  private alarmAt: number | null = null;
  /** Rollout work waiting for its step; steps run one after another, never inside each other. */
  private readonly rolloutJobs: RolloutJob[] = [];
  private steppingRollouts = false;
  /** Invocations since this object started, for the cost benchmark and operators. */
  private readonly counters = { polls: 0, commandEvents: 0, enqueues: 0, alarms: 0, reportsStored: 0, lockClockLoads: 0 };
  /** Polls and reports in the last minute, for GET /metrics: memory only, full again a minute after a restart. */
  private readonly pollWindow = new MinuteWindow();
  private readonly reportWindow = new MinuteWindow();
  /** The latest rate limit GitHub reported; a copy in storage (RATE_LIMIT_KEY) survives a restart. */
  private githubRateLimit: GitHubRateLimit | null = null;
  /**
   * The settings a rollout step uses, derived from D1 (worker/db/settings.ts, the truth): steps run without
   * awaiting anything, so they cannot read D1 themselves. Refreshed from D1 by every plan and start, and by
   * `settingsChanged` after each PUT /api/settings; kept in storage so an evicted object resumes with it.
   * Without notification channels: their secrets stay out of this object's storage.
   */
  private settingsCopy: Settings | null = null;
  /**
   * Per host id, when its lock ages past a threshold: memory only, read from
   * D1 once per object start (listLockAges) and kept current from every stored
   * report, so a poll reads nothing for it.
   */
  private readonly lockClock = new Map<string, LockClockEntry>();
  /** The earliest `nextAt` of lockClock, kept so that scheduling an alarm does not walk every host. */
  private lockClockDue: number | null = null;
  /** Bumped when a host is removed: a lock clock read in flight may have seen it, and is read again. */
  private lockClockEpoch = 0;
  /** Commit status posts, one after another so GitHub never receives an older state last. */
  private statusChain: Promise<void> = Promise.resolve();
  /** Builds with a status post queued in the chain: a post reads the latest state when it runs. */
  private readonly statusQueued = new Set<string>();

  constructor(ctx: DurableObjectState, env: WorkerEnv) {
    super(ctx, env);
    this.db = openDatabase(env.DB);
    this.store = new CoordinatorStorage(ctx.storage.sql);
    void ctx.blockConcurrencyWhile(async () => {
      this.alarmAt = await ctx.storage.getAlarm();
      this.githubRateLimit = (await ctx.storage.get<GitHubRateLimit>(RATE_LIMIT_KEY)) ?? null;
      this.settingsCopy = (await ctx.storage.get<Settings>(SETTINGS_COPY_KEY)) ?? null;
      await this.scheduleAlarm();
    });
    // Not inside blockConcurrencyWhile: the first polls need not wait for D1.
    ctx.waitUntil(this.loadLockClock().catch((error: unknown) => console.error("lock clock: could not read the reports", error)));
  }

  // -------------------------------------------------------------------------
  // Agent side

  async poll(tokenHash: string, request: PollRequest, waitSeconds: number): Promise<Outcome<{ response: PollResponse }>> {
    this.counters.polls++;
    this.pollWindow.add(Date.now());
    if (request.report) this.reportWindow.add(Date.now());
    const host = await this.authenticate(tokenHash);
    if (!host) return refuse(401, "unauthorized", "unknown or revoked agent token");
    if (request.report) await this.acceptReport(host, request.agentSession, request.report);

    // From here to the answer (or the wait) nothing is awaited: a command queued
    // meanwhile is either seen below or finds this poll waiting.
    if (this.removing.has(host.id)) return refuse(401, "unauthorized", "this host is being removed");
    const now = Date.now();
    const live = this.liveHost(host, waitSeconds);
    this.markSeen(live, now);
    this.store.acknowledge(host.id, request.acks);

    const session = this.store.agentSession(host.id) ?? { session: null, reportSession: null, reportHash: null };
    const sessionChanged = session.session !== null && session.session !== request.agentSession;
    for (const lost of commandsLostBy(this.store.activeCommandsOf(host.id), sessionChanged, new Set(request.activeCommands))) {
      this.transition(lost, { state: "lost", finishedAt: new Date(now).toISOString(), error: LOST_ERROR });
    }
    if (session.session !== request.agentSession) this.store.saveAgentSession(host.id, { ...session, session: request.agentSession });
    const wantReport = !request.report && session.reportSession !== request.agentSession;

    const ready: CommandDelivery[] = [];
    for (const record of this.store.activeCommandsOf(host.id)) {
      if (!isDeliverable(record, now)) continue;
      const delivered = record.state === "queued" ? this.transition(record, deliveryPatch(record.kind, now)) : record;
      if (!("ok" in delivered)) ready.push(toDelivery(delivered));
    }
    // A stop goes first: it must never wait behind what it stops.
    ready.sort((a, b) => Number(b.kind === "stop") - Number(a.kind === "stop"));
    // The agent's own protocol version, so an older agent can read the answer.
    const respond = (commands: CommandDelivery[]): Outcome<{ response: PollResponse }> => ({
      ok: true,
      response: { protocol: request.protocol, commands, wantReport, pollTimeoutSeconds: waitSeconds },
    });
    if (ready.length > 0 || wantReport || waitSeconds === 0) {
      if (ready.length > 0) await this.scheduleAlarm();
      return respond(ready);
    }

    this.endWaitingPoll(host.id);
    const commands = await new Promise<CommandDelivery[]>((resolve) => {
      const waiter: WaitingPoll = {
        resolve,
        timer: setTimeout(() => {
          // Only this poll's own entry: a newer poll of the host may have replaced it.
          if (this.waiting.get(host.id) === waiter) this.waiting.delete(host.id);
          resolve([]);
          void this.scheduleAlarm();
        }, waitSeconds * 1000),
      };
      this.waiting.set(host.id, waiter);
    });
    return respond(commands);
  }

  async commandEvent(tokenHash: string, commandId: string, event: CommandEvent): Promise<Outcome<{ state: string }>> {
    this.counters.commandEvents++;
    const host = await this.authenticate(tokenHash);
    if (!host) return refuse(401, "unauthorized", "unknown or revoked agent token");
    // Read after the last await: the state below is the current one.
    const record = this.store.command(commandId);
    if (!record || record.hostId !== host.id) return refuse(404, "unknown_command", `no command ${commandId} for this host`);
    if (!isActiveCommand(record)) return refuse(409, "command_final", `command ${commandId} is already ${record.state}`);

    let next: CommandRecord | Refusal;
    switch (event.type) {
      case "started":
        next = this.transition(record, record.state === "running" ? { acked: true } : { state: "running", startedAt: event.at, acked: true });
        break;
      case "output":
        next = this.appendOutput(record, event.chunks, new Date().toISOString());
        break;
      case "finished":
        next = this.transition(record, {
          state: event.outcome,
          finishedAt: event.at,
          exitCode: event.exitCode,
          error: event.error,
          result: event.result,
          startedAt: record.startedAt ?? event.at,
          acked: true,
        });
        break;
    }
    if ("ok" in next) return next;
    if (event.type === "finished") await this.scheduleAlarm();
    return { ok: true, state: next.state };
  }

  // -------------------------------------------------------------------------
  // Admin side

  /**
   * Queues a command for the host. When the host's poll is waiting, the
   * command is stored as delivered and handed over in the same step.
   */
  async enqueue(
    hostName: string,
    kind: CommandKind,
    actor: string,
    options: { commit?: string | null } = {},
  ): Promise<Outcome<{ command: CommandView }>> {
    this.counters.enqueues++;
    const host = await this.hostNamed(hostName);
    if (!host) return refuse(404, "host_not_found", `no host named ${hostName}`);
    const outcome = this.enqueueFor(host, kind, actor, { commit: options.commit ?? null, rolloutId: null });
    if (outcome.ok) await this.scheduleAlarm();
    return outcome;
  }

  /**
   * The synchronous heart of queueing: no await from the busy check to the
   * stored command, so two enqueues cannot both pass it. A rollout queues its
   * hosts' commands through here too, inside its own step.
   */
  private enqueueFor(
    host: { id: string; name: string },
    kind: CommandKind,
    actor: string,
    options: { commit: string | null; rolloutId: string | null },
  ): Outcome<{ command: CommandView }> {
    const admission = admit(host.name, this.store.activeCommandsOf(host.id), kind);
    if (!admission.ok) return admission;
    const now = Date.now();
    const at = new Date(now).toISOString();
    const ttlSeconds = Number(this.env.QUEUED_COMMAND_TTL_SECONDS) || 86_400;
    const record = newCommand({
      id: newId("cmd"),
      hostId: host.id,
      hostName: host.name,
      kind,
      target: admission.target?.id ?? null,
      commit: options.commit,
      actor,
      now,
      ttlSeconds,
      rolloutId: options.rolloutId,
    });

    if (admission.action === "cancel-queued") {
      // Never reached the host: cancelling is ours to do, no agent round trip.
      this.transition(admission.target, { state: "cancelled", finishedAt: at, error: `stopped by ${actor} before delivery` });
      const stop: CommandRecord = { ...record, state: "succeeded", startedAt: at, finishedAt: at, result: { stopped: true } };
      this.store.insertCommand(stop);
      this.countFinished(stop);
      this.broadcast({ type: "command", command: toCommandView(stop) });
      return { ok: true, command: toCommandView(stop) };
    }

    if (admission.action === "preempt-build") {
      const build = admission.target;
      if (build.state === "queued") {
        this.transition(build, { state: "cancelled", finishedAt: at, error: `cancelled: a ${kind} was queued by ${actor}` });
      } else {
        const stop = newCommand({ ...record, id: newId("cmd"), kind: "stop", target: build.id, commit: null, rolloutId: null, ttlSeconds, now });
        this.insertAndDeliver(host, stop, now);
      }
    }
    // The switch that preempts a build targets nothing; a stop targets what it stops.
    const queued = admission.action === "preempt-build" ? { ...record, target: null } : record;
    return { ok: true, command: this.insertAndDeliver(host, queued, now) };
  }

  /** Stores a new command, handing it to the host's waiting poll in the same step when there is one. */
  private insertAndDeliver(host: { id: string }, record: CommandRecord, now: number): CommandView {
    // A waiting poll means nothing else is deliverable for this host: it would have been answered.
    const waiter = this.waiting.get(host.id);
    const stored: CommandRecord = waiter ? { ...record, ...deliveryPatch(record.kind, now) } : record;
    this.store.insertCommand(stored);
    if (waiter) this.endWaitingPoll(host.id, [toDelivery(stored)]);
    const view = toCommandView(stored);
    this.broadcast({ type: "command", command: view });
    return view;
  }

  /** Creates the host and its first token; a name taken (or being taken) is refused with 409. */
  async createHost(host: Host, token: { id: string; tokenHash: string }): Promise<Outcome<{ host: Host }>> {
    const taken = () => refuse(409, "host_exists", `a host named ${host.name} already exists`);
    if (this.creating.has(host.name)) return taken();
    this.creating.add(host.name);
    try {
      if (await findHostByName(this.db, host.name)) return taken();
      await insertHostWithToken(this.db, host, token);
      return { ok: true, host };
    } catch (error) {
      if (isUniqueViolation(error)) return taken();
      throw error;
    } finally {
      this.creating.delete(host.name);
    }
  }

  /** Revokes every token of the host and adds the new one; the old token is refused from this answer on. */
  async rotateToken(hostName: string, token: { id: string; tokenHash: string }, at: string): Promise<Outcome<{ host: HostRef }>> {
    const host = await this.hostNamed(hostName);
    if (!host) return refuse(404, "host_not_found", `no host named ${hostName}`);
    this.forgetCatalogue(host.id);
    await rotateHostToken(this.db, host.id, token, at);
    this.forgetCatalogue(host.id);
    // Its commands go on: only the key changed.
    this.endWaitingPoll(host.id);
    return { ok: true, host };
  }

  /** Removes the host, its tokens, commands and output; refused for its agent from the first step. */
  async removeHost(hostName: string): Promise<Outcome<{ host: HostRef }>> {
    const host = await this.hostNamed(hostName);
    if (!host || this.removing.has(host.id)) return refuse(404, "host_not_found", `no host named ${hostName}`);
    this.removing.add(host.id);
    this.forgetCatalogue(host.id);
    try {
      await deleteHost(this.db, host.id);
      this.forgetCatalogue(host.id);
      this.store.forgetHost(host.id);
      this.store.forgetHold(host.name);
      this.fleetBuildHostRemoved(host.id);
      this.hosts.delete(host.id);
      this.forgetLockClock(host.id);
      this.endWaitingPoll(host.id);
    } finally {
      this.removing.delete(host.id);
    }
    this.broadcast({ type: "host", host: host.name, removed: true });
    await this.scheduleAlarm();
    return { ok: true, host };
  }


  // -------------------------------------------------------------------------
  // Rollouts: the pure engine (worker/rollouts/engine.ts) decides; this is its I/O.
  // Each step loads the stored rollout, advances it, stores it and carries out
  // its actions, all synchronously, so no other request sees a half-done step.

  /** What a rollout would do now: its waves and the hosts left out, nothing sent. */
  async planRollout(input: {
    commit: string;
    pr: number | null;
    hosts?: string[];
    automatic: boolean;
    /** The update PR's head whose fleet build gates the plan. */
    buildOf?: { pr: number; headSha: string } | null;
    includeFailedBuilds?: boolean;
  }): Promise<Outcome<{ plan: RolloutPlanView }>> {
    const [settings, hosts, reports] = await Promise.all([this.refreshSettings(), listHosts(this.db), listReports(this.db)]);
    if ("ok" in settings) return settings;
    const gate = this.buildGate(input.buildOf, input.includeFailedBuilds ?? false);
    const plan = this.plan(hosts, reports, settings, { ...input, failedBuilds: gate.failedBuilds });
    return { ok: true, plan: { commit: input.commit, pr: input.pr, waves: plan.waves, leftOut: plan.leftOut, fleetBuild: gate.build } };
  }

  /** Starts a rollout of `commit`; a running one is superseded (its unstarted hosts cancelled). */
  async startRollout(input: {
    commit: string;
    pr: RolloutContextRecord["pr"];
    lockChanges: RolloutContextRecord["lockChanges"];
    hosts?: string[];
    automatic: boolean;
    ignoreWindows: boolean;
    actor: string;
    /** An update PR's head: hosts whose fleet build of it failed are left out unless `includeFailedBuilds`. */
    buildOf?: { pr: number; headSha: string } | null;
    includeFailedBuilds?: boolean;
  }): Promise<Outcome<{ rollout: RolloutView }>> {
    const [settings, hosts, reports] = await Promise.all([this.refreshSettings(), listHosts(this.db), listReports(this.db)]);
    if ("ok" in settings) return settings;
    // From here on nothing is awaited until the rollout is stored and started.
    const gate = this.buildGate(input.buildOf, input.includeFailedBuilds ?? false);
    const plan = this.plan(hosts, reports, settings, { ...input, failedBuilds: gate.failedBuilds });
    if (plan.waves.length === 0) {
      const why = plan.leftOut.map((h) => `${h.name}: ${h.reason}`).join("; ");
      return refuse(409, "nothing_to_deploy", `no host is in this rollout${why ? ` (${why})` : ""}`);
    }
    const id = newId("ro");
    for (const running of this.store.unsettledRollouts()) {
      if (isRolloutActive(running.rollout)) this.feedRollout(running.rollout.id, { type: "superseded", by: id });
    }
    const rollout = createRollout({
      id,
      commit: input.commit,
      pr: input.pr?.number ?? null,
      startedBy: input.actor,
      automatic: input.automatic,
      ignoreWindows: input.ignoreWindows,
      plan,
      now: new Date(),
    });
    const inRollout = new Set(rollout.hosts.map((h) => h.name));
    const testsToRun = hosts.filter((h) => {
      const tests = reports.get(h.id)?.report.tests;
      return inRollout.has(h.name) && tests?.configured === true && !tests.autoRunAfterSwitch;
    });
    const context: RolloutContextRecord = {
      pr: input.pr,
      lockChanges: input.lockChanges,
      hostIds: Object.fromEntries(hosts.filter((h) => inRollout.has(h.name)).map((h) => [h.name, h.id])),
      runTestsOn: testsToRun.map((h) => h.name),
      deferred: [],
    };
    this.store.saveRollout(rollout, context, false);
    this.feedRollout(id, { type: "start" });
    this.audit(input.actor, "rollout.start", id, { commit: input.commit, pr: input.pr?.number ?? null, hosts: rollout.hosts.length });
    await this.scheduleAlarm();
    const stored = this.store.rollout(id);
    return { ok: true, rollout: toRolloutView(stored?.rollout ?? rollout) };
  }

  async cancelRollout(id: string, actor: string): Promise<Outcome<{ rollout: RolloutView }>> {
    const stored = this.store.rollout(id);
    if (!stored) return refuse(404, "rollout_not_found", `no rollout ${id}`);
    if (!isRolloutActive(stored.rollout)) return refuse(409, "rollout_not_running", `rollout ${id} is already ${stored.rollout.state}`);
    this.feedRollout(id, { type: "cancel", actor });
    this.audit(actor, "rollout.cancel", id, null);
    await this.scheduleAlarm();
    return { ok: true, rollout: toRolloutView(this.store.rollout(id)!.rollout) };
  }

  async getRollout(id: string): Promise<{ rollout: RolloutView; context: Pick<RolloutContextRecord, "pr" | "lockChanges"> } | null> {
    const stored = this.store.rollout(id);
    return stored ? { rollout: toRolloutView(stored.rollout), context: { pr: stored.context.pr, lockChanges: stored.context.lockChanges } } : null;
  }

  async listRollouts(limit: number, beforeId: string | null): Promise<Outcome<{ rollouts: RolloutView[] }>> {
    let before: { startedAt: string; id: string } | null = null;
    if (beforeId !== null) {
      const anchor = this.store.rollout(beforeId);
      if (!anchor) return refuse(404, "rollout_not_found", `no rollout ${beforeId} to page from`);
      before = { startedAt: anchor.rollout.startedAt, id: beforeId };
    }
    return { ok: true, rollouts: this.store.listRollouts(limit, before).map((stored) => toRolloutView(stored.rollout)) };
  }

  /** Holds a host out of every rollout and automatic action (a running rollout skips it when its turn comes). */
  async setHold(hostName: string, request: { reason: string; until: string | null }, actor: string): Promise<Outcome<{ hold: HostHold }>> {
    const host = await this.hostNamed(hostName);
    if (!host) return refuse(404, "host_not_found", `no host named ${hostName}`);
    const hold: HostHold = { reason: request.reason, until: request.until, by: actor, at: new Date().toISOString() };
    this.store.setHold(host.name, hold);
    this.broadcast({ type: "host", host: host.name });
    return { ok: true, hold };
  }

  async releaseHold(hostName: string): Promise<Outcome<{ released: boolean }>> {
    const host = await this.hostNamed(hostName);
    if (!host) return refuse(404, "host_not_found", `no host named ${hostName}`);
    const released = this.store.holds().has(host.name);
    this.store.setHold(host.name, null);
    this.broadcast({ type: "host", host: host.name });
    return { ok: true, released };
  }

  /**
   * PUT /api/settings stored a new version: refresh this object's copy (rollout steps read it) and tell
   * open dashboards. Reads D1 rather than taking the settings as an argument, so a late call never
   * brings back an older version.
   */
  async settingsChanged(): Promise<void> {
    const settings = await this.refreshSettings();
    if (!("ok" in settings)) this.broadcast({ type: "settings", version: settings.version });
  }

  /** The settings in force, read from D1 now (the copy is refreshed with them); a bad var is a refusal naming it. */
  private async refreshSettings(): Promise<Settings | Refusal> {
    let settings: Settings;
    try {
      settings = await currentSettings(this.env, this.db);
    } catch (error) {
      return refuse(409, "settings_invalid", error instanceof Error ? error.message : String(error));
    }
    // Two refreshes may finish out of order: an older version never replaces a newer one.
    if (this.settingsCopy === null || settings.version >= this.settingsCopy.version) {
      this.settingsCopy = { ...settings, notifications: [] };
      void this.ctx.storage.put(SETTINGS_COPY_KEY, this.settingsCopy);
    }
    return settings;
  }

  /** The settings a step of an already running rollout uses: the copy; without one, the vars (a bad var is logged, the defaults keep it moving). */
  private stepSettings(): Settings {
    if (this.settingsCopy !== null) return this.settingsCopy;
    try {
      return settingsFromVars(this.env);
    } catch (error) {
      console.error("rollout settings:", error instanceof Error ? error.message : String(error), "— using the defaults for this step");
      return DEFAULT_SETTINGS;
    }
  }

  private plan(
    hosts: Host[],
    reports: Map<string, StoredReport>,
    settings: Settings,
    input: { hosts?: string[]; automatic: boolean; failedBuilds?: { commit: string; hosts: string[] } },
  ): RolloutPlan {
    const now = new Date();
    return planRollout({
      hosts: this.planHosts(hosts, reports, now),
      settings,
      automatic: input.automatic,
      selected: input.hosts,
      failedBuilds: input.failedBuilds,
      now,
    });
  }

  /** Every host as the planners see it: presence, hold and the rollout settings of its last report. */
  private planHosts(hosts: Host[], reports: Map<string, StoredReport>, now: Date): (PlanHost & { id: string })[] {
    const holds = this.store.holds();
    return hosts.map((host) => {
      const live = this.hosts.get(host.id);
      const rollout = reports.get(host.id)?.report.rollout;
      return {
        id: host.id,
        name: host.name,
        online: live ? this.isOnline(live, now.getTime()) : false,
        hold: holds.get(host.name) ?? null,
        autoUpdate: rollout?.autoUpdate ?? true,
        priority: rollout?.priority ?? 100,
        canary: rollout?.canary ?? false,
      };
    });
  }

  /**
   * The fleet build of an update PR's head and the hosts a rollout of it
   * leaves out for a failed build (none when the person insists).
   */
  private buildGate(buildOf: { pr: number; headSha: string } | null | undefined, includeFailedBuilds: boolean) {
    const latest = buildOf ? this.store.latestFleetBuild(buildOf.pr) : null;
    const build = latest !== null && buildOf && latest.headSha === buildOf.headSha ? toFleetBuildView(latest) : null;
    const failed = build === null || includeFailedBuilds ? [] : failedHosts(build);
    return { build, failedBuilds: failed.length > 0 && buildOf ? { commit: buildOf.headSha, hosts: failed } : undefined };
  }

  /** Queues an event for a rollout and, unless a step is already running, runs steps until none is left. */
  private feedRollout(rolloutId: string, event: RolloutEvent): void {
    this.queueRolloutJob({ kind: "event", rolloutId, event });
  }

  /**
   * Steps run one after another, never inside each other: what a step causes
   * (a command cancelled, a host freed) is queued and handled after the step
   * has stored its rollout.
   */
  private queueRolloutJob(job: RolloutJob): void {
    this.rolloutJobs.push(job);
    if (this.steppingRollouts) return;
    this.steppingRollouts = true;
    try {
      for (let next = this.rolloutJobs.shift(); next; next = this.rolloutJobs.shift()) {
        if (next.kind === "event") this.stepRollout(next.rolloutId, next.event);
        else this.hostFreed(next.record);
      }
    } finally {
      this.steppingRollouts = false;
    }
  }

  private stepRollout(rolloutId: string, event: RolloutEvent): void {
    const stored = this.store.rollout(rolloutId);
    if (!stored) return;
    const { context } = stored;
    const now = new Date();
    const holds = this.store.holds();
    const hosts: RolloutContext["hosts"] = {};
    for (const [name, id] of Object.entries(context.hostIds)) {
      const live = this.hosts.get(id);
      hosts[name] = { online: live ? this.isOnline(live, now.getTime()) : false, hold: holds.get(name) ?? null };
    }
    const { rollout, actions } = advance(stored.rollout, event, { settings: this.stepSettings(), now, hosts });
    for (const action of actions) this.carryOut(rollout, context, action);
    const settled = !isRolloutActive(rollout) && rollout.state !== "planned" && rollout.hosts.every((h) => !h.sent || h.commandFinished);
    this.store.saveRollout(rollout, context, settled);
    // Only now is the new wakeAt stored, where scheduleAlarm reads it.
    if (actions.some((action) => action.type === "wake-at")) this.ctx.waitUntil(this.scheduleAlarm());
    this.broadcast({ type: "rollout", rollout: toRolloutView(rollout) });
  }

  private carryOut(rollout: Rollout, context: RolloutContextRecord, action: RolloutAction): void {
    const actor = `rollout ${rollout.id}`;
    switch (action.type) {
      case "send": {
        const hostId = context.hostIds[action.host];
        if (hostId === undefined) {
          this.feedRollout(rollout.id, { type: "send-failed", host: action.host, error: "the host was removed" });
          return;
        }
        const queued = this.enqueueFor({ id: hostId, name: action.host }, action.kind, actor, { commit: action.commit, rolloutId: rollout.id });
        if (queued.ok) {
          this.feedRollout(rollout.id, { type: "command-queued", host: action.host, commandId: queued.command.id });
        } else if (queued.code === "host_busy") {
          // The host runs something else: its turn starts when that ends (see hostFreed).
          if (!context.deferred.includes(action.host)) context.deferred.push(action.host);
        } else {
          this.feedRollout(rollout.id, { type: "send-failed", host: action.host, error: queued.message });
        }
        return;
      }
      case "cancel-command": {
        const record = this.store.command(action.commandId);
        if (!record || !isActiveCommand(record)) return;
        if (record.state === "queued") {
          this.transition(record, { state: "cancelled", finishedAt: new Date().toISOString(), error: `cancelled by ${actor}` });
        } else {
          const hostId = context.hostIds[action.host];
          if (hostId !== undefined) this.enqueueFor({ id: hostId, name: action.host }, "stop", actor, { commit: null, rolloutId: null });
        }
        return;
      }
      case "rollback-host": {
        const hostId = context.hostIds[action.host];
        if (hostId === undefined) return;
        const queued = this.enqueueFor({ id: hostId, name: action.host }, "rollback", actor, { commit: null, rolloutId: null });
        this.audit(actor, "rollout.rollback-host", action.host, queued.ok ? { commandId: queued.command.id } : { refused: queued.message });
        return;
      }
      case "revert":
        this.ctx.waitUntil(this.openRevert(rollout.id, action));
        return;
      case "wake-at":
        // Scheduled once the step has stored the rollout (stepRollout).
        return;
      case "notify": {
        this.audit(actor, `rollout.${action.event.replace("rollout-", "")}`, rollout.id, { message: action.message });
        const event = action.event;
        // rollout-cancelled is audited only: a person cancelled it, or a newer rollout took over.
        if (event !== "rollout-cancelled") this.publish(rolloutEvent(rollout, event, action.message, this.env.DASHBOARD_URL, new Date()));
        return;
      }
    }
  }

  /** A command of a rollout moved: tell the rollout. Any command of a host ending may free a deferred turn. */
  private onCommandTransition(record: CommandRecord): void {
    if (record.kind === "build") this.fleetBuildCommandChanged(record);
    if (record.rolloutId !== null) {
      const host = record.hostName;
      if (record.state === "running") this.feedRollout(record.rolloutId, { type: "command-started", host, commandId: record.id });
      if (isCommandOutcome(record.state)) {
        this.feedRollout(record.rolloutId, {
          type: "command-finished",
          host,
          commandId: record.id,
          outcome: record.state,
          error: record.error,
          commitAfter: record.result?.commitAfter ?? null,
        });
      }
    }
    if (!isActiveCommand(record)) {
      this.queueRolloutJob({ kind: "host-freed", record });
      // The agent's report may have come before this end (its events and its polls travel apart):
      // a host a rollout is verifying is judged again by its latest report, now that the command ended.
      const verifying = this.store.unsettledRollouts().some((stored) => stored.rollout.hosts.some((h) => h.name === record.hostName && h.switched));
      if (verifying) this.ctx.waitUntil(this.recheckHealth(record.hostId, record.hostName));
    }
  }

  /** A host's command ended: a rollout may have tests to ask for, or a turn that waited for the host. */
  private hostFreed(record: CommandRecord): void {
    for (const { rollout, context } of this.store.unsettledRollouts()) {
      const actor = `rollout ${rollout.id}`;
      // A rollout that switched this host asks for its tests when the agent does not run them itself.
      if (record.rolloutId === rollout.id && record.state === "succeeded" && context.runTestsOn.includes(record.hostName)) {
        this.enqueueFor({ id: record.hostId, name: record.hostName }, "test", actor, { commit: null, rolloutId: null });
      }
      if (!context.deferred.includes(record.hostName)) continue;
      context.deferred = context.deferred.filter((name) => name !== record.hostName);
      const host = rollout.hosts.find((h) => h.name === record.hostName);
      if (host && host.commandId === null && isRolloutActive(rollout) && host.state !== "skipped" && host.state !== "cancelled") {
        this.carryOut(rollout, context, { type: "send", host: record.hostName, kind: "pull-switch", commit: rollout.commit });
      }
      this.store.saveRollout(rollout, context, false);
    }
    // After the rollouts: a deploy that waited for the host goes before a build that did.
    this.queueWaitingBuilds(record.hostId, "free");
  }

  private async recheckHealth(hostId: string, hostName: string): Promise<void> {
    try {
      const stored = await getReport(this.db, hostId);
      if (stored) await this.reportHealth({ id: hostId, name: hostName, lastSeenAt: null }, stored.report, stored.receivedAt);
    } catch (error) {
      console.error("rollout health re-check failed", hostName, error);
    }
  }

  /** After a report of a host in a running rollout: its System and Tests, as the compartments see them. */
  private async reportHealth(host: HostRef, report: Report, receivedAt: string): Promise<void> {
    const rollouts = this.store.unsettledRollouts().filter((stored) => stored.rollout.hosts.some((h) => h.name === host.name && h.switched));
    if (rollouts.length === 0) return;
    const target = await loadFleetTarget(this.db);
    const live = this.hosts.get(host.id);
    const online = live ? this.isOnline(live, Date.now()) : true;
    const compartments = computeCompartments({
      platform: report.platform,
      report,
      reportedAt: receivedAt,
      online,
      lastSeenAt: receivedAt,
      commands: this.store.hostCommands(host.id, 20).map(toCommandView),
      repo: target.repo,
      updatePrs: target.updatePrs,
      expectedAgentVersion: NIXFLEET_VERSION,
      now: new Date(),
    });
    for (const { rollout } of rollouts) {
      this.feedRollout(rollout.id, {
        type: "host-health",
        host: host.name,
        commit: report.repo.commit.value,
        system: compartments.system.state,
        tests: compartments.tests.state,
        testsConfigured: report.tests.configured,
        reason: compartments.system.state === "red" ? compartments.system.reason : compartments.tests.reason,
      });
    }
  }

  /** Opens the revert the fleet's rollback strategy asks for, then tells the rollout how it went. */
  private async openRevert(rolloutId: string, action: Extract<RolloutAction, { type: "revert" }>): Promise<void> {
    const ctx = githubContext(this.env, this.db);
    let event: RolloutEvent;
    try {
      const client = requireClient(ctx);
      const repository = requireRepository(ctx);
      if (action.strategy === "revert-pr") {
        const pull = await client.createRevertPull({
          commitSha: action.commit,
          base: ctx.config.branch,
          title: `Revert ${action.pr === null ? shortSha(action.commit) : `#${action.pr}`}: rollout ${rolloutId} failed`,
        });
        event = { type: "revert-opened", kind: "revert-pr", url: pull.url };
      } else {
        const reverted = await client.revertCommit({ commitSha: action.commit, branch: ctx.config.branch });
        event = { type: "revert-opened", kind: "revert-commit", url: commitUrl(ctx.config.apiUrl, repository.fullName, reverted.sha) };
      }
    } catch (error) {
      event = { type: "revert-failed", error: error instanceof Error ? error.message : String(error) };
    }
    this.feedRollout(rolloutId, event);
    if (event.type === "revert-opened") this.publish(revertEvent({ id: rolloutId, commit: action.commit, pr: action.pr }, event, new Date()));
    this.audit(`rollout ${rolloutId}`, `rollout.${event.type}`, rolloutId, event.type === "revert-opened" ? { url: event.url } : { error: event.error });
  }

  /**
   * Hands a notification to the Notifier without waiting for it (it only stores it; the delivery
   * happens from its alarm): a rollout's step never waits on a receiver.
   */
  private publish(event: NotificationEvent): void {
    this.ctx.waitUntil(
      notifier(this.env)
        .publish(event)
        .then(
          (outcome) => {
            if (!outcome.ok) console.error("notification refused", event.id, outcome.message);
          },
          (error: unknown) => console.error("notification not published", event.id, error),
        ),
    );
  }

  /** The automation looks at the update PR again, after this step and without holding it up. */
  private nudgeAutomation(pr: number): void {
    this.ctx.waitUntil(
      automation(this.env)
        .reconsider(pr)
        .catch((error: unknown) => console.warn("automation: could not reconsider", `#${pr}`, error)),
    );
  }

  /** Audit entries of the coordinator's own steps, written after the step (never between a check and its write). */
  private audit(actor: string, action: string, target: string, details: Record<string, unknown> | null): void {
    this.ctx.waitUntil(
      writeAudit(this.db, { at: new Date().toISOString(), actor, action, target, details, result: "ok" }).catch((error: unknown) =>
        console.error("audit write failed", action, error),
      ),
    );
  }

  // -------------------------------------------------------------------------
  // Fleet builds: the pure rules (worker/fleet-build/rules.ts) decide; this is their I/O.
  // Every change loads the stored build, applies a rule and stores it in one
  // synchronous step; what it causes (a command queued, cancelled, stopped)
  // comes after the save and moves the build through its own step.

  /**
   * Builds the PR's head on every host (docs/fleet-build.md). Once per head:
   * a build of this head that is the PR's latest is returned as it is
   * (`started: false`) unless `force` (the re-run button). An older build of
   * the PR is superseded: its queued builds cancelled, its running ones stopped.
   */
  async startFleetBuild(input: { pr: number; headSha: string; actor: string; force?: boolean }): Promise<Outcome<{ build: FleetBuildView; started: boolean }>> {
    const [settings, hosts, reports] = await Promise.all([this.refreshSettings(), listHosts(this.db), listReports(this.db)]);
    if ("ok" in settings) return settings;
    // From here on nothing is awaited until the build is stored and its commands queued.
    const latest = this.store.latestFleetBuild(input.pr);
    if (!input.force && latest !== null && latest.headSha === input.headSha && isCurrent(latest)) {
      // A redelivered webhook or the cron: nothing restarts, but a status GitHub did not take is posted again.
      this.postFleetBuildStatus(latest.id);
      return { ok: true, build: toFleetBuildView(latest), started: false };
    }
    const now = new Date();
    const id = newId("fb");
    // Only the PR's latest build is ever current: each new one supersedes it.
    if (latest !== null && isCurrent(latest)) {
      this.stopFleetBuild(latest.id, { supersededBy: id }, `superseded by ${shortSha(input.headSha)}`, `fleet build ${id}`);
    }
    const scope: FleetBuildScopeHost[] = this.planHosts(hosts, reports, now);
    const build = createFleetBuild({ id, pr: input.pr, headSha: input.headSha, actor: input.actor, hosts: scope, settings, now });
    this.store.saveFleetBuild(build);
    for (const host of build.hosts) if (host.state === "queued") this.queueHostBuild(id, input.headSha, host);
    this.store.pruneFleetBuilds();
    const stored = this.store.fleetBuild(id) ?? build;
    this.broadcast({ type: "fleet-build", build: toFleetBuildView(stored) });
    this.postFleetBuildStatus(id);
    this.audit(input.actor, "fleet-build.start", `#${input.pr}`, { id, headSha: input.headSha, hosts: build.hosts.length });
    await this.scheduleAlarm();
    return { ok: true, build: toFleetBuildView(this.store.fleetBuild(id) ?? stored), started: true };
  }

  /** The PR was closed unmerged: its current build stops (queued builds cancelled, running ones stopped). */
  async cancelFleetBuilds(pr: number, actor: string): Promise<{ cancelled: string[] }> {
    const cancelled: string[] = [];
    for (const build of this.store.openFleetBuilds()) {
      if (build.pr !== pr || !isCurrent(build)) continue;
      this.stopFleetBuild(build.id, { closed: true }, "the PR was closed unmerged", actor);
      cancelled.push(build.id);
    }
    if (cancelled.length > 0) await this.scheduleAlarm();
    return { cancelled };
  }

  /** The latest build of each PR (of whatever head: the caller compares it with the PR's current head). */
  async fleetBuildsFor(prs: number[]): Promise<Record<number, FleetBuildView>> {
    const builds: Record<number, FleetBuildView> = {};
    for (const pr of new Set(prs)) {
      const latest = this.store.latestFleetBuild(pr);
      if (latest) builds[pr] = toFleetBuildView(latest);
    }
    return builds;
  }

  /** Queues a host's build, or marks it waiting for the command it runs; the build records which. */
  private queueHostBuild(buildId: string, headSha: string, host: Pick<FleetBuildHostRecord, "name" | "hostId">): void {
    const queued = this.enqueueFor({ id: host.hostId, name: host.name }, "build", `fleet build ${buildId}`, { commit: headSha, rolloutId: null });
    const now = new Date();
    if (queued.ok) {
      this.updateFleetBuild(buildId, (build) => hostQueued(build, host.name, queued.command.id, now));
    } else if (queued.code === "host_busy") {
      const busy = this.store.activeCommandsOf(host.hostId).find((c) => EXCLUSIVE_COMMAND_KINDS.has(c.kind));
      this.updateFleetBuild(buildId, (build) => hostWaiting(build, host.name, busy ? `its ${busy.kind} (${busy.id})` : "its running command", now));
    } else {
      this.updateFleetBuild(buildId, (build) => hostCancelled(build, host.name, `not queued: ${queued.message}`, now));
    }
  }

  /** A host came online or ended a command: builds that waited for that are queued now. */
  private queueWaitingBuilds(hostId: string, on: "online" | "free"): void {
    for (const build of this.store.openFleetBuilds()) {
      for (const host of hostsToQueue(build, hostId, on)) this.queueHostBuild(build.id, build.headSha, host);
    }
  }

  private stopFleetBuild(id: string, why: { supersededBy: string } | { closed: true }, reason: string, actor: string): void {
    const build = this.store.fleetBuild(id);
    if (!build) return;
    const now = new Date();
    const { build: stopped, commands } = stopBuild(build, why, reason, now);
    this.saveFleetBuild(stopped);
    for (const { host, hostId, commandId } of commands) {
      const record = this.store.command(commandId);
      if (record === null || !isActiveCommand(record)) {
        // Its end was never heard (a removed host): nothing is out any more.
        this.updateFleetBuild(id, (current) => hostCancelled(current, host, reason, now));
      } else if (record.state === "queued") {
        this.transition(record, { state: "cancelled", finishedAt: now.toISOString(), error: reason });
      } else {
        // The agent ends the build `cancelled`; that end moves the build (fleetBuildCommandChanged).
        this.enqueueFor({ id: hostId, name: host }, "stop", actor, { commit: null, rolloutId: null });
      }
    }
  }

  private fleetBuildCommandChanged(record: CommandRecord): void {
    const now = new Date();
    for (const build of this.store.openFleetBuilds()) {
      if (!build.hosts.some((h) => h.commandId === record.id)) continue;
      this.updateFleetBuild(build.id, (current) => hostCommandChanged(current, record, now));
    }
  }

  /** A removed host's commands are deleted without a transition: its builds hear it here. */
  private fleetBuildHostRemoved(hostId: string): void {
    const now = new Date();
    for (const build of this.store.openFleetBuilds()) {
      for (const host of build.hosts) {
        if (host.hostId === hostId && host.state !== "built" && host.state !== "failed") {
          this.updateFleetBuild(build.id, (current) => hostCancelled(current, host.name, "the host was removed", now));
        }
      }
    }
  }

  /** Load, apply, store, tell: one synchronous step. A rule that changes nothing returns the same object. */
  private updateFleetBuild(id: string, change: (build: FleetBuildRecord) => FleetBuildRecord): void {
    const build = this.store.fleetBuild(id);
    if (!build) return;
    const next = change(build);
    if (next !== build) this.saveFleetBuild(next);
  }

  private saveFleetBuild(build: FleetBuildRecord): void {
    const before = this.store.fleetBuild(build.id);
    this.store.saveFleetBuild(build);
    // A verdict that changes may let the automation merge (requireFleetBuild) or say why it will not.
    if (before === null || summarize(before).verdict !== summarize(build).verdict) this.nudgeAutomation(build.pr);
    this.broadcast({ type: "fleet-build", build: toFleetBuildView(build) });
    this.postFleetBuildStatus(build.id);
  }

  /**
   * Posts the commit status `nixfleet/fleet-build` when the build's summary
   * differs from the last one GitHub took. Outside every check-and-write pair:
   * the post is chained after the step, reads the build when it runs, and its
   * outcome is stored on the build read again afterwards. A failed post is
   * tried again on the build's next change (or the cron's next look at the PR).
   */
  private postFleetBuildStatus(id: string): void {
    const build = this.store.fleetBuild(id);
    if (!build || statusToPost(build) === null || this.statusQueued.has(id)) return;
    this.statusQueued.add(id);
    this.statusChain = this.statusChain
      .then(async () => {
        this.statusQueued.delete(id);
        const current = this.store.fleetBuild(id);
        const status = current ? statusToPost(current) : null;
        if (!current || !status) return;
        let outcome: GitHubStatusRecord;
        try {
          const client = requireClient(githubContext(this.env, this.db));
          const dashboard = this.env.DASHBOARD_URL?.trim();
          await client.createCommitStatus(current.headSha, {
            state: status.state,
            context: FLEET_BUILD_CONTEXT,
            description: status.description,
            ...(dashboard ? { targetUrl: `${dashboard.replace(/\/+$/, "")}/` } : {}),
          });
          outcome = { ...status, postedAt: new Date().toISOString(), error: null };
        } catch (error) {
          outcome = { ...status, postedAt: current.githubStatus?.postedAt ?? null, error: error instanceof Error ? error.message : String(error) };
        }
        // Read again: the build may have moved while the post was out; a move queued its own post.
        const latest = this.store.fleetBuild(id);
        if (!latest) return;
        const next = { ...latest, githubStatus: outcome };
        this.store.saveFleetBuild(next);
        this.broadcast({ type: "fleet-build", build: toFleetBuildView(next) });
      })
      .catch((error: unknown) => console.error("fleet build: status post failed", id, error));
    this.ctx.waitUntil(this.statusChain);
  }

  // -------------------------------------------------------------------------
  // Reads for the dashboard: commands are read through the object, their only home.

  /** Presence, the newest commands, holds and rollout parts of every host this object knows. */
  async fleetLive(commandsPerHost: number): Promise<{
    presence: Record<string, { online: boolean; lastSeenAt: string | null }>;
    commands: Record<string, CommandView[]>;
    holds: Record<string, HostHold>;
    rolloutParts: Record<string, HostRolloutPart>;
  }> {
    const commands: Record<string, CommandView[]> = {};
    for (const [hostId, records] of this.store.recentCommandsByHost(commandsPerHost)) commands[hostId] = records.map(toCommandView);
    return { presence: this.presence(), commands, holds: Object.fromEntries(this.store.holds()), rolloutParts: this.rolloutParts() };
  }

  async hostLive(
    hostId: string,
    limit: number,
  ): Promise<{ presence: { online: boolean; lastSeenAt: string | null } | null; commands: CommandView[]; holds: Record<string, HostHold>; rolloutParts: Record<string, HostRolloutPart> }> {
    return {
      presence: this.presence()[hostId] ?? null,
      commands: this.store.hostCommands(hostId, limit).map(toCommandView),
      holds: Object.fromEntries(this.store.holds()),
      rolloutParts: this.rolloutParts(),
    };
  }

  /** Each host's part in the newest rollout that is still moving, by host name. */
  private rolloutParts(): Record<string, HostRolloutPart> {
    const parts: Record<string, HostRolloutPart> = {};
    for (const { rollout } of this.store.unsettledRollouts()) {
      for (const host of rollout.hosts) parts[host.name] = { id: rollout.id, state: host.state, wave: host.wave };
    }
    return parts;
  }

  async getCommand(id: string): Promise<CommandView | null> {
    const record = this.store.command(id);
    return record ? toCommandView(record) : null;
  }

  async commandOutput(id: string, afterSeq: number, limit: number): Promise<CommandOutput | null> {
    const record = this.store.command(id);
    if (!record) return null;
    return { command: toCommandView(record), chunks: this.store.readOutput(id, afterSeq, limit), truncated: record.outputTruncated };
  }

  async stats(): Promise<{ counters: Record<string, number>; waitingPolls: number; activeCommands: number; dashboards: number }> {
    return {
      counters: { ...this.counters },
      waitingPolls: this.waiting.size,
      activeCommands: this.store.activeCommands().length,
      dashboards: this.ctx.getWebSockets().length,
    };
  }

  async metrics(): Promise<CoordinatorMetrics> {
    const now = Date.now();
    return {
      pollsPerMinute: this.pollWindow.count(now),
      reportsPerMinute: this.reportWindow.count(now),
      commandTotals: this.store.commandTotals(),
      commandDurations: this.store.commandDurations(),
      activeCommands: this.store.activeCommands().map((record) => ({ kind: record.kind, state: record.state })),
      rolloutStates: Object.fromEntries(this.store.rolloutStates()),
      githubRateLimit: this.githubRateLimit,
    };
  }

  /** The rate limit of a GitHub answer (worker/github/context.ts); an older reading than the one kept is ignored. */
  async recordGitHubRateLimit(rate: GitHubRateLimit): Promise<void> {
    if (this.githubRateLimit !== null && Date.parse(rate.at) < Date.parse(this.githubRateLimit.at)) return;
    this.githubRateLimit = rate;
    await this.ctx.storage.put(RATE_LIMIT_KEY, rate);
  }

  /** Tell dashboards that something about a host changed (a webhook moved the target, say). */
  async notify(event: DashboardEvent): Promise<void> {
    this.broadcast(event);
  }

  private presence(): Record<string, { online: boolean; lastSeenAt: string | null }> {
    const now = Date.now();
    const presence: Record<string, { online: boolean; lastSeenAt: string | null }> = {};
    for (const live of this.hosts.values()) {
      presence[live.id] = { online: this.isOnline(live, now), lastSeenAt: live.lastSeenMs > 0 ? new Date(live.lastSeenMs).toISOString() : null };
    }
    return presence;
  }

  // -------------------------------------------------------------------------
  // Dashboards: WebSockets with the hibernation API, so idle dashboards cost nothing.

  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      return new Response("expected a WebSocket upgrade", { status: 426 });
    }
    const pair = new WebSocketPair();
    this.ctx.acceptWebSocket(pair[1]);
    pair[1].send(JSON.stringify({ type: "hello", protocol: PROTOCOL_VERSION } satisfies DashboardEvent));
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    // Dashboards only listen; a ping keeps proxies from cutting an idle socket.
    if (message === "ping") ws.send(JSON.stringify({ type: "pong" } satisfies DashboardEvent));
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    // 1005 (no code), 1006 (dropped) and 1015 (TLS) describe a close; they may not be sent in one.
    const reserved = code === 1005 || code === 1006 || code === 1015;
    try {
      ws.close(reserved ? 1000 : code, "closing");
    } catch {
      // Already closed from the other side: nothing left to answer.
    }
  }

  private broadcast(event: DashboardEvent): void {
    const text = JSON.stringify(event);
    for (const ws of this.ctx.getWebSockets()) {
      try {
        ws.send(text);
      } catch {
        // A socket closing under us is not our error; the dashboard resynchronises on reconnect.
      }
    }
  }

  // -------------------------------------------------------------------------
  // Deadlines, expiry, offline detection

  override async alarm(): Promise<void> {
    this.counters.alarms++;
    this.alarmAt = null;
    const now = Date.now();
    // Each record is read and written in one synchronous step, so a `finished`
    // cannot land between the deadline check and the timed-out write.
    for (const record of this.store.activeCommands()) {
      const patch = timeoutPatch(record, now);
      if (patch) this.transition(record, patch);
    }
    for (const live of this.hosts.values()) {
      if (live.online && !this.isOnline(live, now)) {
        live.online = false;
        this.flushLastSeen(live);
        this.broadcast({ type: "host", host: live.name, online: false });
      }
    }
    for (const { rollout } of this.store.unsettledRollouts()) {
      if (rollout.wakeAt !== null && Date.parse(rollout.wakeAt) <= now) this.feedRollout(rollout.id, { type: "tick" });
    }
    if (this.lockClockDue !== null && this.lockClockDue <= now) {
      // The Lock compartment is computed on read: a host event makes each dashboard fetch the host again.
      for (const entry of this.lockClock.values()) {
        if (entry.nextAt === null || entry.nextAt > now) continue;
        entry.nextAt = nextLockThresholdAt(entry.lastModified, now);
        this.broadcast({ type: "host", host: entry.name });
      }
      this.updateLockClockDue();
    }
    await this.scheduleAlarm();
  }

  private async scheduleAlarm(): Promise<void> {
    let next = Number.POSITIVE_INFINITY;
    for (const record of this.store.activeCommands()) next = Math.min(next, nextDeadline(record));
    for (const live of this.hosts.values()) {
      if (live.online && !this.waiting.has(live.id)) next = Math.min(next, this.offlineAt(live));
    }
    for (const { rollout } of this.store.unsettledRollouts()) if (rollout.wakeAt !== null) next = Math.min(next, Date.parse(rollout.wakeAt));
    if (this.lockClockDue !== null) next = Math.min(next, this.lockClockDue);
    if (!Number.isFinite(next)) return;
    if (this.alarmAt !== null && this.alarmAt <= next) return;
    this.alarmAt = next;
    // Unconfirmed: an alarm write must not hold back a poll answer (output gate); the constructor reschedules after a restart.
    await this.ctx.storage.setAlarm(next, { allowUnconfirmed: true });
  }

  // -------------------------------------------------------------------------
  // The lock-age clock: the one compartment that changes with time alone

  /** Reads every host's lock lastModified from D1; entries a stored report set meanwhile are newer and kept. */
  private async loadLockClock(): Promise<void> {
    for (let attempt = 0; attempt < CATALOGUE_READ_TRIES; attempt++) {
      const epoch = this.lockClockEpoch;
      const rows = await listLockAges(this.db);
      if (epoch !== this.lockClockEpoch) continue;
      const now = Date.now();
      for (const row of rows) {
        if (!this.lockClock.has(row.hostId)) this.setLockClock(row.hostId, row.name, row.lastModified, now);
      }
      this.counters.lockClockLoads++;
      this.updateLockClockDue();
      await this.scheduleAlarm();
      return;
    }
    console.error(`lock clock: hosts kept being removed during ${CATALOGUE_READ_TRIES} reads; the next stored reports fill it`);
  }

  private setLockClock(hostId: string, name: string, lastModified: Record<string, number>, now: number): void {
    this.lockClock.set(hostId, { name, lastModified, nextAt: nextLockThresholdAt(lastModified, now) });
  }

  private forgetLockClock(hostId: string): void {
    this.lockClockEpoch++;
    this.lockClock.delete(hostId);
    this.updateLockClockDue();
  }

  private updateLockClockDue(): void {
    let due: number | null = null;
    for (const entry of this.lockClock.values()) {
      if (entry.nextAt !== null && (due === null || entry.nextAt < due)) due = entry.nextAt;
    }
    this.lockClockDue = due;
  }

  // -------------------------------------------------------------------------

  /** Counts a command that reached its final state, for GET /metrics, in the step that made it final. */
  private countFinished(record: CommandRecord): void {
    const ran = record.startedAt !== null && record.finishedAt !== null ? (Date.parse(record.finishedAt) - Date.parse(record.startedAt)) / 1000 : Number.NaN;
    this.store.recordCommandFinished(record.kind, record.state, Number.isFinite(ran) ? Math.max(0, ran) : null);
  }

  /** The single place a command's state changes. Refuses to leave a final state. */
  private transition(record: CommandRecord, patch: CommandPatch): CommandRecord | Refusal {
    const next = applyPatch(record, patch);
    if (!next.ok) return next;
    if (!this.store.updateCommand(record.id, record.state, patch)) {
      return refuse(409, "command_changed", `command ${record.id} changed while this event was handled; send it again`);
    }
    if (!isActiveCommand(next.record)) {
      if (isActiveCommand(record)) this.countFinished(next.record);
      this.store.prune(record.hostId);
    }
    if (patch.state !== undefined && patch.state !== record.state) {
      this.broadcast({ type: "command", command: toCommandView(next.record) });
      this.onCommandTransition(next.record);
    }
    return next.record;
  }

  private appendOutput(record: CommandRecord, chunks: Parameters<typeof acceptOutput>[1], at: string): CommandRecord {
    const accepted = acceptOutput(record, chunks, at);
    if (accepted.kept.length === 0) return record;
    this.store.appendOutput(record.id, accepted.kept, accepted);
    this.broadcast({ type: "output", host: record.hostName, commandId: record.id, chunks: accepted.kept });
    return { ...record, ...accepted };
  }

  /** Answers the host's waiting poll, if any, and forgets it. */
  private endWaitingPoll(hostId: string, commands: CommandDelivery[] = []): void {
    const waiter = this.waiting.get(hostId);
    if (!waiter) return;
    this.waiting.delete(hostId);
    clearTimeout(waiter.timer);
    waiter.resolve(commands);
  }

  /** Drops every cached fact about the host's identity and invalidates reads in flight. */
  private forgetCatalogue(hostId: string): void {
    this.catalogueEpoch++;
    for (const [hash, owner] of this.tokenOwners) if (owner.id === hostId) this.tokenOwners.delete(hash);
    for (const [name, host] of this.hostsByName) if (host.id === hostId) this.hostsByName.delete(name);
  }

  /**
   * A catalogue read from D1 that no removal or rotation overtook: when one
   * lands while the read is in flight, the read is repeated, so a revoked
   * token is never cached.
   */
  private async readCatalogue(cache: Map<string, HostRef>, key: string, read: () => Promise<Host | null>): Promise<HostRef | null> {
    for (let attempt = 0; attempt < CATALOGUE_READ_TRIES; attempt++) {
      const cached = cache.get(key);
      if (cached) return this.removing.has(cached.id) ? null : cached;
      const epoch = this.catalogueEpoch;
      const host = await read();
      if (epoch !== this.catalogueEpoch) continue;
      if (!host || this.removing.has(host.id)) return null;
      const ref: HostRef = { id: host.id, name: host.name, lastSeenAt: host.lastSeenAt };
      cache.set(key, ref);
      return ref;
    }
    return null;
  }

  private authenticate(tokenHash: string): Promise<HostRef | null> {
    return this.readCatalogue(this.tokenOwners, tokenHash, () => findHostByTokenHash(this.db, tokenHash));
  }

  private hostNamed(name: string): Promise<HostRef | null> {
    return this.readCatalogue(this.hostsByName, name, () => findHostByName(this.db, name));
  }

  private liveHost(host: HostRef, waitSeconds: number): LiveHost {
    let live = this.hosts.get(host.id);
    if (!live) {
      const lastSeen = host.lastSeenAt ? Date.parse(host.lastSeenAt) : 0;
      live = { id: host.id, name: host.name, lastSeenMs: lastSeen, lastFlushedMs: lastSeen, online: false, pollTimeoutMs: 0 };
      this.hosts.set(host.id, live);
    }
    live.pollTimeoutMs = waitSeconds * 1000;
    return live;
  }

  private isOnline(live: LiveHost, now: number): boolean {
    return this.waiting.has(live.id) || now < this.offlineAt(live);
  }

  private offlineAt(live: LiveHost): number {
    return live.lastSeenMs + live.pollTimeoutMs + OFFLINE_GRACE_MS;
  }

  private markSeen(live: LiveHost, now: number): void {
    live.lastSeenMs = now;
    if (!live.online) {
      live.online = true;
      this.flushLastSeen(live);
      this.broadcast({ type: "host", host: live.name, online: true });
      this.queueWaitingBuilds(live.id, "online");
    } else if (now - live.lastFlushedMs > LAST_SEEN_FLUSH_MS) {
      this.flushLastSeen(live);
    }
  }

  /** D1's "last seen" is the catalogue's copy for a dashboard loaded while presence is unknown: written in the background. */
  private flushLastSeen(live: LiveHost): void {
    live.lastFlushedMs = live.lastSeenMs;
    const at = new Date(live.lastSeenMs).toISOString();
    this.ctx.waitUntil(updateLastSeen(this.db, live.id, at).catch((error: unknown) => console.error("last-seen flush failed", live.name, error)));
  }

  /** Stores a changed report in D1 (the catalogue's latest report) before the poll's synchronous part. */
  private async acceptReport(host: HostRef, session: string, report: Report): Promise<void> {
    const { uptimeSeconds: _uptime, agentUptimeSeconds: _agentUptime, ...stable } = report;
    const reportHash = await sha256Hex(JSON.stringify(stable));
    const known = this.store.agentSession(host.id);
    if (known && reportHash === known.reportHash && session === known.reportSession) return;
    const receivedAt = new Date().toISOString();
    await upsertReport(this.db, { hostId: host.id, report, reportHash, agentSession: session, receivedAt });
    if (this.removing.has(host.id)) return;
    const current = this.store.agentSession(host.id);
    this.store.saveAgentSession(host.id, { session: current?.session ?? null, reportSession: session, reportHash });
    this.counters.reportsStored++;
    this.setLockClock(host.id, host.name, report.lock.lastModified, Date.now());
    this.updateLockClockDue();
    this.broadcast({ type: "host", host: host.name, online: true, reportedAt: receivedAt });
    if (this.lockClockDue !== null && (this.alarmAt === null || this.lockClockDue < this.alarmAt)) await this.scheduleAlarm();
    await this.reportHealth(host, report, receivedAt);
  }
}

/** The web page of a commit: GitHub's site for api.github.com, the API's own origin otherwise (GitHub Enterprise, the emulator). */
function commitUrl(apiUrl: string, fullName: string, sha: string): string {
  const origin = /^https:\/\/api\.github\.com\/?$/.test(apiUrl) ? "https://github.com" : new URL(apiUrl).origin;
  return `${origin}/${fullName}/commit/${sha}`;
}
