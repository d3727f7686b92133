/**
 * The rollout state machine. Pure: `advance(rollout, event, ctx)` returns the next rollout and the
 * actions the coordinator must carry out; time comes in `ctx.now`. The rollout is plain JSON, stored
 * after every step, so an evicted Durable Object resumes exactly where it was. Every event is
 * idempotent: a repeated one, or one about a command the rollout does not know, changes nothing, so a
 * host is never sent its command twice and no wave is skipped.
 */
import type { CompartmentState, HostHold, Settings } from "../../common/protocol.ts";
import { plural, shortSha } from "../../common/text.ts";
import { commandVerdict, healthVerdict, type CommandOutcome } from "./gates.ts";
import { describeHold, holdIsActive } from "./plan.ts";
import {
  hasPassed,
  isActive,
  type NotifyEvent,
  type Rollout,
  type RolloutHostRecord,
  type RolloutWaveRecord,
} from "./record.ts";
import { describeOpening, isOpen, nextOpeningOf, windowsForHost } from "./windows.ts";

// The record, its gates and its view live beside the machine; their names stay importable from here.
export { COMMAND_OUTCOMES, type CommandOutcome } from "./gates.ts";
export {
  createRollout,
  isActive,
  NOTIFY_EVENTS,
  Rollout,
  RolloutHostRecord,
  RolloutWaveRecord,
  type CreateRolloutInput,
  type NotifyEvent,
} from "./record.ts";
export { toRolloutView } from "./view.ts";

// ---------------------------------------------------------------------------
// Events in, actions out

export type RolloutEvent =
  | { type: "start" }
  /** The coordinator queued the command a `send` asked for. */
  | { type: "command-queued"; host: string; commandId: string }
  /** The coordinator could not queue it (the host was removed, say). */
  | { type: "send-failed"; host: string; error: string }
  | { type: "command-started"; host: string; commandId: string }
  | {
      type: "command-finished";
      host: string;
      commandId: string;
      outcome: CommandOutcome;
      error: string | null;
      commitAfter: string | null;
      /** The switch only set the boot default (activation `boot`): nothing runs yet for a report to judge. */
      bootOnly?: boolean;
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
  /** A person asked to revert the rollout's commit (`POST /api/rollouts/:id/revert`); the shell refused it while one is under way. */
  | { type: "revert-requested"; strategy: "revert-pr" | "revert-commit"; actor: string }
  /** `note`: what differs from what was asked; `rollout`: the rollout of the revert commit. */
  | { type: "revert-opened"; kind: "revert-pr" | "revert-commit"; url: string; note?: string; rollout?: string }
  /** `before`: the revert did not apply, and this commit (the one before the reverted one) could be deployed instead. */
  | { type: "revert-failed"; error: string; before?: string };

export type RolloutAction =
  | { type: "send"; host: string; kind: "pull-switch"; commit: string }
  /** Only for a command that has not started; a running one finishes. */
  | { type: "cancel-command"; host: string; commandId: string }
  | { type: "rollback-host"; host: string }
  /** `pr`: the update PR whose merge is reverted, when the rollout came from one. */
  | { type: "revert"; strategy: "revert-pr" | "revert-commit"; commit: string; pr: number | null; by?: string }
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

// ---------------------------------------------------------------------------
// The machine

/** The command is on its way: shown, and a wave waits for it. */
const IN_PROGRESS: ReadonlySet<RolloutHostRecord["state"]> = new Set(["pulling", "verifying"]);

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

  /** The host passed its gates: it soaks with its wave, or is done. */
  private passHost(h: RolloutHostRecord): void {
    const wave = this.wave(h.wave);
    const soaks = isActive(this.r) && wave !== undefined && wave.state !== "passed" && this.soakSeconds(wave) > 0;
    h.state = soaks ? "soaking" : "done";
    h.finishedAt = this.nowIso;
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
          `rollout ${r.id} of ${shortSha(r.commit)} started by ${r.startedBy}: ${plural(r.hosts.length, "host")} in ${plural(r.waves.length, "wave")}`,
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

      case "command-finished": {
        const h = this.commandHost(event.host, event.commandId);
        if (h === null || h.commandFinished) return;
        const wasStopped = (h.state === "skipped" || h.state === "cancelled") && !h.commandStarted;
        h.commandStarted = h.commandStarted || event.outcome !== "cancelled";
        h.commandFinished = true;
        if (event.outcome === "cancelled" && wasStopped) return;
        const verdict = commandVerdict(event, r.commit);
        if (!verdict.passed) {
          this.failHost(h, verdict.reason);
          return;
        }
        h.switched = true;
        if (event.bootOnly === true) {
          // The host runs the new system after its next reboot, which the rollout does not wait for.
          this.passHost(h);
          h.reason = "the new system is the boot default; it runs after the next reboot";
          return;
        }
        h.state = "verifying";
        h.reason = "waiting for its next report: System and Tests green";
        return;
      }

      case "host-health": {
        const h = this.host(event.host);
        // Only a report at the rollout's commit says anything about it; older ones are stale.
        if (h === undefined || !h.switched || event.commit !== r.commit) return;
        const verdict = healthVerdict(event, r.commit);
        if (verdict.kind === "red") {
          // A host that passed matters only while the rollout runs; afterwards it is the compartments' business.
          if (h.state === "verifying" || (hasPassed(h) && isActive(r))) this.failHost(h, verdict.reason);
          return;
        }
        if (h.state !== "verifying") return;
        if (verdict.kind === "green") {
          this.passHost(h);
          h.reason = null;
        } else {
          h.reason = verdict.reason;
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

      case "revert-requested":
        if (isActive(r) || r.revert?.state === "requested") return;
        r.revert = { kind: event.strategy, url: null, state: "requested", error: null, by: event.actor };
        this.actions.push({ type: "revert", strategy: event.strategy, commit: r.commit, pr: r.pr, by: event.actor });
        return;

      case "revert-opened":
        if (r.revert === null || r.revert.state === "opened") return;
        r.revert = { ...r.revert, kind: event.kind, url: event.url, state: "opened", error: null, note: event.note, rollout: event.rollout };
        return;

      case "revert-failed":
        if (r.revert === null || r.revert.state !== "requested") return;
        r.revert = { ...r.revert, state: "failed", error: event.error, before: event.before };
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
      if (h.commandStarted || h.commandFinished || h.state === "failed" || hasPassed(h)) continue;
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
      const settled = hosts.every((h) => hasPassed(h) || h.state === "pending" || h.state === "skipped");
      if (settled && opening === null) {
        const soak = this.soakSeconds(wave);
        if (soak > 0 && hosts.some((h) => hasPassed(h))) {
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
      `rollout ${r.id} of ${shortSha(r.commit)} succeeded on ${plural(r.hosts.filter((h) => hasPassed(h)).length, "host")}` +
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
