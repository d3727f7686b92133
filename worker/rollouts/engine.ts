/**
 * The rollout state machine. Pure: `advance(rollout, event, ctx)` returns the next rollout and the
 * actions the coordinator must carry out; time comes in `ctx.now`. The rollout is plain JSON, stored
 * after every step, so an evicted Durable Object resumes exactly where it was. Every event is
 * idempotent: a repeated one, or one about a command the rollout does not know, changes nothing, so a
 * host is never sent its command twice and no wave is skipped.
 */
import * as z from "zod";
import {
  CommandId,
  CompartmentState,
  HostName,
  LeftOutHost,
  RollbackStrategy,
  RolloutHostState,
  RolloutState,
  RolloutWaveState,
  Sha1,
  type HostHold,
  type RolloutView,
  type Settings,
} from "../../common/protocol.ts";
import { describeHold, holdIsActive, type RolloutPlan } from "./plan.ts";
import { describeOpening, isOpen, nextOpeningOf, windowsForHost } from "./windows.ts";
import { shortSha } from "../../common/text.ts";

// ---------------------------------------------------------------------------
// The persisted rollout

export const RolloutHostRecord = z.object({
  name: HostName,
  /** 1-based wave index. */
  wave: z.number().int().positive(),
  state: RolloutHostState,
  reason: z.string().nullable(),
  /** The `send` action was emitted: it never is again. */
  sent: z.boolean(),
  commandId: CommandId.nullable(),
  commandStarted: z.boolean(),
  commandFinished: z.boolean(),
  /** The command succeeded and the agent says it is at the rollout's commit: what `rollbackHosts` undoes. */
  switched: z.boolean(),
  cancelRequested: z.boolean(),
  rollbackRequested: z.boolean(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
});
export type RolloutHostRecord = z.infer<typeof RolloutHostRecord>;

export const RolloutWaveRecord = z.object({
  index: z.number().int().positive(),
  canary: z.boolean(),
  state: RolloutWaveState,
  soakUntil: z.string().nullable(),
});
export type RolloutWaveRecord = z.infer<typeof RolloutWaveRecord>;

export const NOTIFY_EVENTS = ["rollout-started", "rollout-succeeded", "rollout-failed", "rollout-cancelled"] as const;
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];

/** The rollout as the coordinator stores it; parse it on load, never cast. */
export const Rollout = z.object({
  format: z.literal(1),
  id: z.string().min(1),
  commit: Sha1,
  pr: z.number().int().positive().nullable(),
  startedBy: z.string(),
  automatic: z.boolean(),
  /** A manual deploy confirmed to ignore maintenance windows (never for automatic rollouts). */
  ignoreWindows: z.boolean(),
  state: RolloutState,
  startedAt: z.string(),
  finishedAt: z.string().nullable(),
  /** 1-based index of the wave being deployed or soaked; 0 before the start. */
  currentWave: z.number().int().nonnegative(),
  waves: z.array(RolloutWaveRecord),
  hosts: z.array(RolloutHostRecord),
  leftOut: z.array(LeftOutHost),
  waitingFor: z.string().nullable(),
  /** The last `wake-at` asked for, so an unchanged one is not asked for again. */
  wakeAt: z.string().nullable(),
  failure: z.object({ host: HostName, reason: z.string(), commandId: CommandId.nullable() }).nullable(),
  stoppedBecause: z.string().nullable(),
  revert: z
    .object({
      kind: RollbackStrategy.exclude(["alert-only"]),
      url: z.string().nullable(),
      state: z.enum(["requested", "opened", "failed"]),
      error: z.string().nullable(),
    })
    .nullable(),
  notified: z.array(z.enum(NOTIFY_EVENTS)),
});
export type Rollout = z.infer<typeof Rollout>;

// ---------------------------------------------------------------------------
// Events in, actions out

export const COMMAND_OUTCOMES = ["succeeded", "failed", "cancelled", "timed-out", "lost"] as const;
export type CommandOutcome = (typeof COMMAND_OUTCOMES)[number];

export type RolloutEvent =
  | { type: "start" }
  /** The coordinator queued the command a `send` asked for. */
  | { type: "command-queued"; host: string; commandId: string }
  /** The coordinator could not queue it (the host was removed, say). */
  | { type: "send-failed"; host: string; error: string }
  | { type: "command-started"; host: string; commandId: string }
  /** The pull half is done and the switch began (read from the command's output, when it says so). */
  | { type: "command-phase"; host: string; commandId: string; phase: "switching" }
  | {
      type: "command-finished";
      host: string;
      commandId: string;
      outcome: CommandOutcome;
      error: string | null;
      commitAfter: string | null;
    }
  /** After each stored report of a host in the rollout: its System and Tests compartments. */
  | {
      type: "host-health";
      host: string;
      commit: string | null;
      system: CompartmentState;
      tests: CompartmentState;
      testsConfigured: boolean;
      reason: string;
    }
  /** An alarm fired: soaks end, windows open. */
  | { type: "tick" }
  | { type: "cancel"; actor: string }
  | { type: "superseded"; by: string }
  | { type: "revert-opened"; kind: "revert-pr" | "revert-commit"; url: string }
  | { type: "revert-failed"; error: string };

export type RolloutAction =
  | { type: "send"; host: string; kind: "pull-switch"; commit: string }
  /** Only for a command that has not started; a running one finishes. */
  | { type: "cancel-command"; host: string; commandId: string }
  | { type: "rollback-host"; host: string }
  /** `pr`: the update PR whose merge is reverted, when the rollout came from one. */
  | { type: "revert"; strategy: "revert-pr" | "revert-commit"; commit: string; pr: number | null }
  /** The next time a `tick` is needed (a soak ends, a window opens). */
  | { type: "wake-at"; at: string }
  | { type: "notify"; event: NotifyEvent; rolloutId: string; commit: string; message: string };

/** What the engine needs to know about the world at this step. */
export interface RolloutContext {
  settings: Settings;
  now: Date;
  /**
   * Presence and hold of the rollout's hosts; a host missing here counts as offline. A host held after
   * the plan was made is skipped when its turn comes.
   */
  hosts: Record<string, { online: boolean; hold?: HostHold | null }>;
}

export interface CreateRolloutInput {
  id: string;
  commit: string;
  pr: number | null;
  startedBy: string;
  automatic: boolean;
  ignoreWindows: boolean;
  plan: RolloutPlan;
  now: Date;
}

export function createRollout(input: CreateRolloutInput): Rollout {
  return {
    format: 1,
    id: input.id,
    commit: input.commit,
    pr: input.pr,
    startedBy: input.startedBy,
    automatic: input.automatic,
    ignoreWindows: input.automatic ? false : input.ignoreWindows,
    state: "planned",
    startedAt: input.now.toISOString(),
    finishedAt: null,
    currentWave: 0,
    waves: input.plan.waves.map((w) => ({ index: w.index, canary: w.canary, state: "waiting", soakUntil: null })),
    hosts: input.plan.waves.flatMap((w) =>
      w.hosts.map((name) => ({
        name,
        wave: w.index,
        state: "waiting" as const,
        reason: null,
        sent: false,
        commandId: null,
        commandStarted: false,
        commandFinished: false,
        switched: false,
        cancelRequested: false,
        rollbackRequested: false,
        startedAt: null,
        finishedAt: null,
      })),
    ),
    leftOut: input.plan.leftOut.map((l) => ({ ...l })),
    waitingFor: null,
    wakeAt: null,
    failure: null,
    stoppedBecause: null,
    revert: null,
    notified: [],
  };
}

// ---------------------------------------------------------------------------
// The machine

const ACTIVE_STATES: ReadonlySet<Rollout["state"]> = new Set(["running", "soaking", "waiting-window"]);
/** The command is on its way: shown, and a wave waits for it. */
const IN_PROGRESS: ReadonlySet<RolloutHostRecord["state"]> = new Set(["pulling", "switching", "verifying"]);
const PASSED: ReadonlySet<RolloutHostRecord["state"]> = new Set(["soaking", "done"]);

export const isActive = (rollout: Rollout): boolean => ACTIVE_STATES.has(rollout.state);

class Step {
  readonly actions: RolloutAction[] = [];
  readonly r: Rollout;
  readonly ctx: RolloutContext;
  constructor(r: Rollout, ctx: RolloutContext) {
    this.r = r;
    this.ctx = ctx;
  }

  get nowIso(): string {
    return this.ctx.now.toISOString();
  }

  host(name: string): RolloutHostRecord | undefined {
    return this.r.hosts.find((h) => h.name === name);
  }

  wave(index: number): RolloutWaveRecord | undefined {
    return this.r.waves.find((w) => w.index === index);
  }

  soakSeconds(wave: RolloutWaveRecord): number {
    return wave.canary ? this.ctx.settings.rollout.canarySoakSeconds : this.ctx.settings.rollout.soakSeconds;
  }

  notify(event: NotifyEvent, message: string): void {
    if (this.r.notified.includes(event)) return;
    this.r.notified.push(event);
    this.actions.push({ type: "notify", event, rolloutId: this.r.id, commit: this.r.commit, message });
  }

  /**
   * Matches a command event to the host's one command; an event about any other command of the host
   * (an older one, a manual one) is stale and dropped. Only `command-queued` names the command, so the
   * coordinator feeds it, with the id it created for the `send`, before anything else about it.
   */
  commandHost(name: string, commandId: string): RolloutHostRecord | null {
    const h = this.host(name);
    if (h === undefined || !h.sent || h.commandId !== commandId) return null;
    return h;
  }

  apply(event: RolloutEvent): void {
    const r = this.r;
    switch (event.type) {
      case "start":
        if (r.state !== "planned") return;
        r.state = "running";
        r.currentWave = r.waves.length > 0 ? 1 : 0;
        this.notify(
          "rollout-started",
          `rollout ${r.id} of ${shortSha(r.commit)} started by ${r.startedBy}: ${r.hosts.length} hosts in ${r.waves.length} waves`,
        );
        return;

      case "command-queued": {
        const h = this.host(event.host);
        if (h === undefined || !h.sent || h.commandId !== null || h.commandFinished) return;
        h.commandId = event.commandId;
        // Stopped before the id was known: cancel it now that it can be named.
        if ((h.state === "skipped" || h.state === "cancelled") && !h.commandStarted) this.requestCancel(h);
        return;
      }

      case "send-failed": {
        const h = this.host(event.host);
        if (h === undefined || !h.sent || h.commandId !== null || h.commandFinished) return;
        h.commandFinished = true;
        this.failHost(h, `could not queue pull-switch: ${event.error}`);
        return;
      }

      case "command-started": {
        const h = this.commandHost(event.host, event.commandId);
        if (h === null || h.commandStarted || h.commandFinished) return;
        h.commandStarted = true;
        h.startedAt = this.nowIso;
        const wasStopped = h.state === "skipped" || h.state === "cancelled";
        h.state = "pulling";
        h.reason = wasStopped ? "started before it could be cancelled" : null;
        return;
      }

      case "command-phase": {
        const h = this.commandHost(event.host, event.commandId);
        if (h === null || !h.commandStarted || h.commandFinished || h.state !== "pulling") return;
        h.state = "switching";
        return;
      }

      case "command-finished": {
        const h = this.commandHost(event.host, event.commandId);
        if (h === null || h.commandFinished) return;
        const wasStopped = (h.state === "skipped" || h.state === "cancelled") && !h.commandStarted;
        h.commandStarted = h.commandStarted || event.outcome !== "cancelled";
        h.commandFinished = true;
        if (event.outcome === "succeeded") {
          if (event.commitAfter === r.commit) {
            h.switched = true;
            h.state = "verifying";
            h.reason = "waiting for its next report: System and Tests green";
          } else if (event.commitAfter === null) {
            this.failHost(h, "pull-switch succeeded but the agent did not say which commit it switched to");
          } else {
            this.failHost(h, `switched to ${shortSha(event.commitAfter)}, not the rollout's ${shortSha(r.commit)}`);
          }
          return;
        }
        if (event.outcome === "cancelled" && wasStopped) return;
        const why: Record<Exclude<CommandOutcome, "succeeded">, string> = {
          failed: "pull-switch failed",
          cancelled: "pull-switch was cancelled",
          "timed-out": "pull-switch timed out",
          lost: "pull-switch lost: the agent restarted or went away mid-command",
        };
        const detail = event.error === null || event.error === "" ? "" : `: ${event.error}`;
        this.failHost(h, `${why[event.outcome]}${detail}`);
        return;
      }

      case "host-health": {
        const h = this.host(event.host);
        // Only a report at the rollout's commit says anything about it; older ones are stale.
        if (h === undefined || !h.switched || event.commit !== r.commit) return;
        const red = event.system === "red" ? "System" : event.tests === "red" ? "Tests" : null;
        if (red !== null) {
          // A host that passed matters only while the rollout runs; afterwards it is the compartments' business.
          if (h.state === "verifying" || (PASSED.has(h.state) && isActive(r))) {
            this.failHost(h, `${red} red at ${shortSha(r.commit)}${event.reason === "" ? "" : `: ${event.reason}`}`);
          }
          return;
        }
        if (h.state !== "verifying") return;
        const testsOk = event.tests === "green" || !event.testsConfigured;
        if (event.system === "green" && testsOk) {
          const wave = this.wave(h.wave);
          const soaks = isActive(r) && wave !== undefined && wave.state !== "passed" && this.soakSeconds(wave) > 0;
          h.state = soaks ? "soaking" : "done";
          h.reason = null;
          h.finishedAt = this.nowIso;
        } else {
          h.reason = `waiting for System and Tests green (System ${event.system}, Tests ${event.tests})`;
        }
        return;
      }

      case "tick":
        return;

      case "cancel":
        this.stop("cancelled", `cancelled by ${event.actor}`);
        return;

      case "superseded":
        this.stop("cancelled", `superseded by ${event.by}`);
        return;

      case "revert-opened":
        if (r.revert === null || r.revert.state === "opened") return;
        r.revert = { ...r.revert, kind: event.kind, url: event.url, state: "opened", error: null };
        return;

      case "revert-failed":
        if (r.revert === null || r.revert.state !== "requested") return;
        r.revert = { ...r.revert, state: "failed", error: event.error };
        return;
    }
  }

  requestCancel(h: RolloutHostRecord): void {
    if (h.commandId === null || h.cancelRequested) return;
    h.cancelRequested = true;
    this.actions.push({ type: "cancel-command", host: h.name, commandId: h.commandId });
  }

  failHost(h: RolloutHostRecord, reason: string): void {
    h.state = "failed";
    h.reason = reason;
    h.finishedAt ??= this.nowIso;
    const r = this.r;
    if (!isActive(r)) return;
    r.failure = { host: h.name, reason, commandId: h.commandId };
    this.stop("failed", `${h.name} failed`);
  }

  /** Failure or cancel: nothing new starts, unstarted commands are cancelled, running ones finish. */
  stop(state: "failed" | "cancelled", because: string): void {
    const r = this.r;
    if (r.state === "succeeded" && state === "cancelled") {
      // Its pending hosts' commands still wait in the offline queue; a newer rollout needs those hosts.
      for (const h of r.hosts) {
        if (h.state !== "pending" || h.commandStarted || h.commandFinished) continue;
        h.state = "cancelled";
        h.reason = because;
        this.requestCancel(h);
      }
      return;
    }
    if (r.state === "planned") {
      if (state === "failed") return;
    } else if (!isActive(r)) return;
    r.state = state;
    r.stoppedBecause = because;
    r.waitingFor = null;
    const hostState = state === "failed" ? "skipped" : "cancelled";
    const reason = state === "failed" ? `rollout stopped: ${because}` : because;
    for (const h of r.hosts) {
      if (h.state === "soaking") h.state = "done";
      if (h.commandStarted || h.commandFinished || h.state === "failed" || PASSED.has(h.state)) continue;
      h.state = hostState;
      h.reason = reason;
      if (h.sent) this.requestCancel(h);
    }
    for (const w of r.waves) {
      const hosts = r.hosts.filter((h) => h.wave === w.index);
      if (hosts.some((h) => h.state === "failed")) w.state = "failed";
      else if (w.state !== "passed") w.state = hostState;
    }
    if (state === "failed") {
      this.notify("rollout-failed", `rollout ${r.id} of ${shortSha(r.commit)} failed: ${r.failure?.host} — ${r.failure?.reason}`);
    } else {
      this.notify("rollout-cancelled", `rollout ${r.id} of ${shortSha(r.commit)} ${because}`);
    }
  }

  /** Moves the rollout as far as the world allows: waves start, pass, soak; a stopped rollout settles. */
  drive(isTick: boolean): void {
    const r = this.r;
    // A command that has not started follows its host's presence: offline, it waits in the queue.
    for (const h of r.hosts) {
      if (h.sent && !h.commandStarted && !h.commandFinished && (h.state === "pulling" || h.state === "pending")) {
        const online = this.ctx.hosts[h.name]?.online ?? false;
        h.state = online ? "pulling" : "pending";
        h.reason = online ? "queued" : "offline: the command waits in its queue";
      }
    }
    if (r.state === "failed" || r.state === "cancelled") {
      this.settle();
      this.wake(null, isTick);
      return;
    }
    if (!isActive(r)) return;

    let wakeAt: string | null = null;
    for (;;) {
      const wave = this.wave(r.currentWave);
      if (wave === undefined) {
        this.succeed();
        break;
      }
      if (wave.state === "soaking") {
        if (wave.soakUntil !== null && Date.parse(wave.soakUntil) > this.ctx.now.getTime()) {
          r.state = "soaking";
          r.waitingFor = null;
          wakeAt = wave.soakUntil;
          break;
        }
        this.passWave(wave);
        continue;
      }
      if (wave.state === "waiting") wave.state = "running";
      const opening = this.startHosts(wave);
      const hosts = r.hosts.filter((h) => h.wave === wave.index);
      const settled = hosts.every((h) => PASSED.has(h.state) || h.state === "pending" || h.state === "skipped");
      if (settled && opening === null) {
        const soak = this.soakSeconds(wave);
        if (soak > 0 && hosts.some((h) => PASSED.has(h.state))) {
          wave.state = "soaking";
          wave.soakUntil = new Date(this.ctx.now.getTime() + soak * 1000).toISOString();
          for (const h of hosts) if (h.state === "done") h.state = "soaking";
          continue;
        }
        this.passWave(wave);
        continue;
      }
      const busy = hosts.some((h) => IN_PROGRESS.has(h.state));
      r.state = opening !== null && !busy ? "waiting-window" : "running";
      r.waitingFor = opening?.text ?? null;
      wakeAt = opening?.at ?? null;
      break;
    }
    this.wake(wakeAt, isTick);
  }

  /** Sends the command to every host of the wave that may start now; returns the earliest window still to open. */
  startHosts(wave: RolloutWaveRecord): { at: string | null; text: string } | null {
    const r = this.r;
    const { settings, now } = this.ctx;
    const windowsApply = r.automatic || !r.ignoreWindows;
    let earliest: { at: string | null; text: string } | null = null;
    for (const h of r.hosts) {
      if (h.wave !== wave.index || h.sent || h.state !== "waiting") continue;
      const online = this.ctx.hosts[h.name]?.online ?? false;
      const hold = this.ctx.hosts[h.name]?.hold ?? null;
      if (holdIsActive(hold, now)) {
        h.state = "skipped";
        h.reason = describeHold(hold);
        continue;
      }
      if (!online && settings.automation.deployStrategy === "online-only") {
        h.state = "skipped";
        h.reason = "offline";
        continue;
      }
      const windows = windowsApply ? windowsForHost(settings.windows, h.name) : [];
      if (!isOpen(windows, now)) {
        const next = nextOpeningOf(windows, now);
        const when = next?.window != null ? describeOpening(next.window, next.at) : "never (no opening within two weeks)";
        h.reason = `waiting for its window, ${when}`;
        const at = next === null ? null : next.at.toISOString();
        if (earliest === null || (at !== null && (earliest.at === null || at < earliest.at))) {
          earliest = { at, text: `waiting for ${h.name}'s window, ${when}` };
        }
        continue;
      }
      h.sent = true;
      h.startedAt = this.nowIso;
      h.state = online ? "pulling" : "pending";
      h.reason = online ? "queued" : "offline: the command waits in its queue";
      this.actions.push({ type: "send", host: h.name, kind: "pull-switch", commit: r.commit });
    }
    return earliest;
  }

  passWave(wave: RolloutWaveRecord): void {
    wave.state = "passed";
    for (const h of this.r.hosts) if (h.wave === wave.index && h.state === "soaking") h.state = "done";
    this.r.currentWave += 1;
  }

  succeed(): void {
    const r = this.r;
    r.state = "succeeded";
    r.currentWave = Math.min(r.currentWave, r.waves.length);
    r.finishedAt = this.nowIso;
    r.waitingFor = null;
    const pending = r.hosts.filter((h) => h.state === "pending").length;
    this.notify(
      "rollout-succeeded",
      `rollout ${r.id} of ${shortSha(r.commit)} succeeded on ${r.hosts.filter((h) => PASSED.has(h.state)).length} hosts` +
        (pending > 0 ? ` with ${pending} pending` : ""),
    );
  }

  /** Once nothing the rollout started still runs: finish, and after a failure revert and roll back. */
  settle(): void {
    const r = this.r;
    // Every command sent must end (a cancelled one too): a cancel can lose the race with the agent's start.
    if (r.hosts.some((h) => h.sent && !h.commandFinished)) return;
    if (r.finishedAt === null) {
      r.finishedAt = this.nowIso;
      const strategy = this.ctx.settings.rollback.strategy;
      if (r.state === "failed" && strategy !== "alert-only") {
        r.revert = { kind: strategy, url: null, state: "requested", error: null };
        this.actions.push({ type: "revert", strategy, commit: r.commit, pr: r.pr });
      }
    }
    if (r.state === "failed" && this.ctx.settings.rollback.rollbackHosts) {
      for (const h of r.hosts) {
        if (!h.switched || h.rollbackRequested) continue;
        h.rollbackRequested = true;
        this.actions.push({ type: "rollback-host", host: h.name });
      }
    }
  }

  wake(at: string | null, isTick: boolean): void {
    const r = this.r;
    const changed = at !== r.wakeAt;
    r.wakeAt = at;
    // A tick used the alarm up: ask again even for the same time.
    if (at !== null && (changed || isTick)) this.actions.push({ type: "wake-at", at });
  }
}

/** One step: the next rollout (a new object; the input is not changed) and what to do about it. */
export function advance(
  rollout: Rollout,
  event: RolloutEvent,
  ctx: RolloutContext,
): { rollout: Rollout; actions: RolloutAction[] } {
  const step = new Step(structuredClone(rollout), ctx);
  step.apply(event);
  step.drive(event.type === "tick");
  return { rollout: step.r, actions: step.actions };
}

/** The rollout as `GET /api/rollouts/:id` gives it. */
export function toRolloutView(r: Rollout): RolloutView {
  return {
    id: r.id,
    state: r.state,
    commit: r.commit,
    ...(r.pr === null ? {} : { pr: r.pr }),
    startedBy: r.startedBy,
    automatic: r.automatic,
    startedAt: r.startedAt,
    ...(r.finishedAt === null ? {} : { finishedAt: r.finishedAt }),
    done: r.hosts.filter((h) => PASSED.has(h.state)).length,
    total: r.hosts.length,
    pending: r.hosts.filter((h) => h.state === "pending").length,
    ...(r.currentWave === 0 ? {} : { currentWave: r.currentWave }),
    ...(r.waitingFor === null ? {} : { waitingFor: r.waitingFor }),
    waves: r.waves.map((w) => ({
      index: w.index,
      canary: w.canary,
      state: w.state,
      ...(w.soakUntil === null ? {} : { soakUntil: w.soakUntil }),
      hosts: r.hosts
        .filter((h) => h.wave === w.index)
        .map((h) => ({
          name: h.name,
          state: h.state,
          ...(h.reason === null ? {} : { reason: h.reason }),
          ...(h.commandId === null ? {} : { commandId: h.commandId }),
          ...(h.startedAt === null ? {} : { startedAt: h.startedAt }),
          ...(h.finishedAt === null ? {} : { finishedAt: h.finishedAt }),
        })),
    })),
    leftOut: r.leftOut,
    ...(r.failure === null ? {} : { failure: r.failure }),
    ...(r.revert === null
      ? {}
      : {
          revert: {
            kind: r.revert.kind,
            url: r.revert.url,
            state: r.revert.state,
            ...(r.revert.error === null ? {} : { error: r.revert.error }),
          },
        }),
    ...(r.stoppedBecause === null ? {} : { stoppedBecause: r.stoppedBecause }),
  };
}
