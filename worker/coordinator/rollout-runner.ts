/**
 * Rollouts: the pure engine (worker/rollouts/engine.ts) decides; this is its storage and its hands.
 * Each step loads the stored rollout, advances it, stores it and carries out its actions, all
 * synchronously, so no other request sees a half-done step. What a step causes for the rollout itself
 * (a command queued, a send failed) is a `rollout-event` reaction, run as a step of its own after this
 * one: steps never run inside each other.
 */
import { isActiveCommand } from "../../common/commands.ts";
import { computeCompartments } from "../../common/compartments.ts";
import { ACTIVATION_KINDS, type ActivationMode, type CommandView, type HostRolloutPart, type Report, type RepoState, type RolloutView, type Settings } from "../../common/protocol.ts";
import { NIXFLEET_VERSION } from "../../common/version.ts";
import type { CommandRecord } from "../commands/rules.ts";
import { refuse, type Outcome } from "../outcome.ts";
import type { loadFleetTarget } from "../db/github.ts";
import type { RolloutContextRecord, RolloutStore } from "../db/coordinator/rollouts.ts";
import type { Host } from "../db/hosts.ts";
import type { StoredReport } from "../db/reports.ts";
import { rolloutEvent } from "../notifications/events.ts";
import {
  advance,
  COMMAND_OUTCOMES,
  createRollout,
  isActive,
  toRolloutView,
  type CommandOutcome,
  type Rollout,
  type RolloutAction,
  type RolloutContext,
  type RolloutEvent,
} from "../rollouts/engine.ts";
import type { RolloutPlan } from "../rollouts/plan.ts";
import type { CommandPort } from "./dispatch.ts";
import { auditEffect } from "./effects.ts";
import type { Holds } from "./holds.ts";
import type { CoordinatorHost, HostRef } from "./host.ts";
import { step, type Step } from "./step.ts";

/** A final command state, as the rollout engine names the outcomes it hears about. */
const isCommandOutcome = (state: string): state is CommandOutcome => (COMMAND_OUTCOMES as readonly string[]).includes(state);

export interface StartRolloutInput {
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
  /** How every switch of the rollout activates; left out, each host's own mode. */
  activation?: ActivationMode | null;
}

/** The repository's head as a rollout of `commit` sees it: that commit (its tree known only when it is the head). */
function headAt(repo: RepoState, commit: string): RepoState["head"] {
  if (repo.head?.sha === commit) return repo.head;
  return { sha: commit, message: "", author: "", committedAt: repo.head?.committedAt ?? "", tree: null };
}

function outPathOf(published: ReadonlyMap<string, string>, commit: string): { commit: string; outPath: string } | null {
  const outPath = published.get(commit);
  return outPath === undefined ? null : { commit, outPath };
}

export class RolloutRunner {
  private readonly host: CoordinatorHost;
  private readonly store: RolloutStore;
  private readonly commands: CommandPort;
  private readonly holds: Pick<Holds, "all">;
  private readonly isOnline: (hostId: string, now: number, unknown?: boolean) => boolean;
  /** The settings of a running rollout's step (the settings copy: a step cannot read D1). */
  private readonly settings: () => Settings;
  private readonly dashboardUrl: string | undefined;

  constructor(
    host: CoordinatorHost,
    store: RolloutStore,
    commands: CommandPort,
    holds: Pick<Holds, "all">,
    isOnline: (hostId: string, now: number, unknown?: boolean) => boolean,
    settings: () => Settings,
    dashboardUrl: string | undefined,
  ) {
    this.host = host;
    this.store = store;
    this.commands = commands;
    this.holds = holds;
    this.isOnline = isOnline;
    this.settings = settings;
    this.dashboardUrl = dashboardUrl;
  }

  get(id: string): { rollout: RolloutView; context: Pick<RolloutContextRecord, "pr" | "lockChanges"> } | null {
    const stored = this.store.rollout(id);
    return stored ? { rollout: toRolloutView(stored.rollout), context: { pr: stored.context.pr, lockChanges: stored.context.lockChanges } } : null;
  }

  list(limit: number, beforeId: string | null): Outcome<{ rollouts: RolloutView[] }> {
    let before: { startedAt: string; id: string } | null = null;
    if (beforeId !== null) {
      const anchor = this.store.rollout(beforeId);
      if (!anchor) return refuse(404, "rollout_not_found", `no rollout ${beforeId} to page from`);
      before = { startedAt: anchor.rollout.startedAt, id: beforeId };
    }
    return { ok: true, rollouts: this.store.listRollouts(limit, before).map((stored) => toRolloutView(stored.rollout)) };
  }

  /** Each host's part in the newest rollout that is still moving, by host name. */
  parts(): Record<string, HostRolloutPart> {
    const parts: Record<string, HostRolloutPart> = {};
    for (const { rollout } of this.store.unsettledRollouts()) {
      for (const host of rollout.hosts) parts[host.name] = { id: rollout.id, state: host.state, wave: host.wave };
    }
    return parts;
  }

  /** Running rollouts give way to rollout `by`: their unstarted hosts cancelled. */
  supersede(by: string): Step<undefined> {
    for (const running of this.store.unsettledRollouts()) {
      if (isActive(running.rollout)) this.step(running.rollout.id, { type: "superseded", by });
    }
    return step();
  }

  /** Stores and starts the rollout of `plan` (a planned rollout has hosts; the shell refuses an empty one). */
  start(id: string, input: StartRolloutInput, plan: RolloutPlan, hosts: Host[], reports: Map<string, StoredReport>): Step<RolloutView> {
    const now = this.host.now();
    const rollout = createRollout({
      id,
      commit: input.commit,
      pr: input.pr?.number ?? null,
      startedBy: input.actor,
      automatic: input.automatic,
      ignoreWindows: input.ignoreWindows,
      activation: input.activation ?? null,
      plan,
      now: new Date(now),
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
    this.pullUnchanged(rollout, hosts);
    this.step(id, { type: "start" });
    this.host.effect(auditEffect(now, input.actor, "rollout.start", id, { commit: input.commit, pr: input.pr?.number ?? null, hosts: rollout.hosts.length, unchanged: rollout.unchanged }));
    return step(toRolloutView(this.store.rollout(id)?.rollout ?? rollout));
  }

  /**
   * Hosts the commit does not change only have their clone moved: a pull, outside the waves (no slot,
   * no soak). A host busy with something else is left to its own pull or the next deploy: its Git
   * compartment says it is behind.
   */
  private pullUnchanged(rollout: Rollout, hosts: Host[]): void {
    for (const name of rollout.unchanged) {
      const host = hosts.find((h) => h.name === name);
      if (host === undefined) continue;
      const queued = this.commands.enqueue({ id: host.id, name }, "pull", `rollout ${rollout.id}`, { commit: rollout.commit, rolloutId: null }).value;
      if (!queued.ok) console.warn(`rollout ${rollout.id}: could not pull unchanged host ${name}: ${queued.message}`);
    }
  }

  cancel(id: string, actor: string): Step<Outcome<{ rollout: RolloutView }>> {
    const stored = this.store.rollout(id);
    if (!stored) return step(refuse(404, "rollout_not_found", `no rollout ${id}`));
    if (!isActive(stored.rollout)) return step(refuse(409, "rollout_not_running", `rollout ${id} is already ${stored.rollout.state}`));
    this.step(id, { type: "cancel", actor });
    this.host.effect(auditEffect(this.host.now(), actor, "rollout.cancel", id, null));
    return step({ ok: true, rollout: toRolloutView(this.store.rollout(id)!.rollout) });
  }

  /**
   * A person's revert of a rollout's commit: refused while the rollout still runs, while a revert of it
   * is under way, once its commit was reverted on the branch, and (for another PR) while its revert PR
   * is open; the revert itself is an effect.
   */
  requestRevert(id: string, strategy: "revert-pr" | "revert-commit", actor: string): Step<Outcome<{ rollout: RolloutView }>> {
    const stored = this.store.rollout(id);
    if (!stored) return step(refuse(404, "rollout_not_found", `no rollout ${id}`));
    const { rollout } = stored;
    if (isActive(rollout) || rollout.state === "planned") return step(refuse(409, "rollout_not_finished", `rollout ${id} is still ${rollout.state}: cancel it or wait for its end before reverting it`));
    if (rollout.revert?.state === "requested") return step(refuse(409, "revert_under_way", `a revert of rollout ${id} is under way (${rollout.revert.kind})`));
    if (rollout.revert?.state === "opened" && rollout.revert.kind === "revert-commit") {
      return step(refuse(409, "already_reverted", `rollout ${id}'s commit was already reverted on the branch${rollout.revert.url ? `: ${rollout.revert.url}` : ""}`));
    }
    if (rollout.revert?.state === "opened" && strategy === "revert-pr") {
      return step(refuse(409, "revert_pr_open", `a revert PR of rollout ${id} is open already${rollout.revert.url ? `: ${rollout.revert.url}` : ""}`));
    }
    this.step(id, { type: "revert-requested", strategy, actor });
    this.host.effect(auditEffect(this.host.now(), actor, "rollout.revert-requested", id, { strategy, commit: rollout.commit }));
    return step({ ok: true, rollout: toRolloutView(this.store.rollout(id)!.rollout) });
  }

  /** Every host a rollout planned, wave by wave: what the rollout of its revert deploys to. */
  hostsOf(id: string): string[] {
    return this.store.rollout(id)?.rollout.hosts.map((h) => h.name) ?? [];
  }

  /** One step of a rollout: load, advance, carry out, store, tell. */
  step(rolloutId: string, event: RolloutEvent): Step<undefined> {
    const stored = this.store.rollout(rolloutId);
    if (!stored) return step();
    const { context } = stored;
    const now = this.host.now();
    const holds = this.holds.all();
    const hosts: RolloutContext["hosts"] = {};
    for (const [name, id] of Object.entries(context.hostIds)) hosts[name] = { online: this.isOnline(id, now), hold: holds.get(id) ?? null };
    const { rollout, actions } = advance(stored.rollout, event, { settings: this.settings(), now: new Date(now), hosts });
    for (const action of actions) this.carryOut(rollout, context, action);
    const settled = !isActive(rollout) && rollout.state !== "planned" && rollout.hosts.every((h) => !h.sent || h.commandFinished);
    this.store.saveRollout(rollout, context, settled);
    // Only now is the new wakeAt stored, where nextWakeAt reads it.
    if (actions.some((action) => action.type === "wake-at")) this.host.rearm();
    this.host.broadcast({ type: "rollout", rollout: toRolloutView(rollout) });
    return step();
  }

  private feed(rolloutId: string, event: RolloutEvent): void {
    this.host.react({ type: "rollout-event", rolloutId, event });
  }

  private carryOut(rollout: Rollout, context: RolloutContextRecord, action: RolloutAction): void {
    const actor = `rollout ${rollout.id}`;
    switch (action.type) {
      case "send": {
        const hostId = context.hostIds[action.host];
        if (hostId === undefined) {
          this.feed(rollout.id, { type: "send-failed", host: action.host, error: "the host was removed" });
          return;
        }
        const activation = ACTIVATION_KINDS.has(action.kind) ? rollout.activation : null;
        const queued = this.commands.enqueue({ id: hostId, name: action.host }, action.kind, actor, { commit: action.commit, rolloutId: rollout.id, activation }).value;
        if (queued.ok) {
          this.feed(rollout.id, { type: "command-queued", host: action.host, commandId: queued.command.id });
        } else if (queued.code === "host_busy") {
          // The host runs something else: its turn starts when that ends (see hostFreed).
          if (!context.deferred.includes(action.host)) context.deferred.push(action.host);
        } else {
          this.feed(rollout.id, { type: "send-failed", host: action.host, error: queued.message });
        }
        return;
      }
      case "cancel-command": {
        const record = this.commands.command(action.commandId);
        if (!record || !isActiveCommand(record)) return;
        if (record.state === "queued") {
          this.commands.transition(record, { state: "cancelled", finishedAt: new Date(this.host.now()).toISOString(), error: `cancelled by ${actor}` });
        } else {
          const hostId = context.hostIds[action.host];
          if (hostId !== undefined) this.commands.enqueue({ id: hostId, name: action.host }, "stop", actor, { commit: null, rolloutId: null });
        }
        return;
      }
      case "rollback-host": {
        const hostId = context.hostIds[action.host];
        if (hostId === undefined) return;
        const queued = this.commands.enqueue({ id: hostId, name: action.host }, "rollback", actor, { commit: null, rolloutId: null }).value;
        const details = queued.ok ? { commandId: queued.command.id } : { refused: queued.message };
        this.host.effect(auditEffect(this.host.now(), actor, "rollout.rollback-host", action.host, details));
        return;
      }
      case "revert":
        this.host.effect({ type: "revert", rolloutId: rollout.id, strategy: action.strategy, commit: action.commit, pr: action.pr, by: action.by ?? null });
        return;
      case "wake-at":
        // Armed once the step has stored the rollout (step).
        return;
      case "notify": {
        const now = this.host.now();
        this.host.effect(auditEffect(now, actor, `rollout.${action.event.replace("rollout-", "")}`, rollout.id, { message: action.message }));
        // rollout-cancelled is audited only: a person cancelled it, or a newer rollout took over.
        if (action.event !== "rollout-cancelled") {
          this.host.effect({ type: "notify", event: rolloutEvent(rollout, action.event, action.message, this.dashboardUrl, new Date(now)) });
        }
        return;
      }
    }
  }

  /** A command of a rollout moved: tell the rollout, in a step of its own. */
  commandChanged(record: CommandRecord): Step<undefined> {
    if (record.rolloutId === null) return step();
    const host = record.hostName;
    if (record.state === "running") this.feed(record.rolloutId, { type: "command-started", host, commandId: record.id });
    if (isCommandOutcome(record.state)) {
      this.feed(record.rolloutId, {
        type: "command-finished",
        host,
        commandId: record.id,
        outcome: record.state,
        error: record.error,
        commitAfter: record.result?.commitAfter ?? null,
        bootOnly: record.result?.bootDefault !== undefined,
      });
    }
    return step();
  }

  /** A host's command ended: a rollout may have tests to ask for, or a turn that waited for the host. */
  hostFreed(record: CommandRecord): Step<undefined> {
    for (const { rollout, context } of this.store.unsettledRollouts()) {
      const actor = `rollout ${rollout.id}`;
      // A rollout that switched this host asks for its tests when the agent does not run them itself.
      if (record.rolloutId === rollout.id && record.state === "succeeded" && context.runTestsOn.includes(record.hostName)) {
        this.commands.enqueue({ id: record.hostId, name: record.hostName }, "test", actor, { commit: null, rolloutId: null });
      }
      if (!context.deferred.includes(record.hostName)) continue;
      context.deferred = context.deferred.filter((name) => name !== record.hostName);
      const host = rollout.hosts.find((h) => h.name === record.hostName);
      if (host && host.commandId === null && isActive(rollout) && host.state !== "skipped" && host.state !== "cancelled") {
        this.carryOut(rollout, context, { type: "send", host: record.hostName, kind: "pull-switch", commit: rollout.commit });
      }
      this.store.saveRollout(rollout, context, false);
    }
    return step();
  }

  /** Whether a rollout is verifying the host (switched it and waits for its health). */
  verifying(hostName: string): boolean {
    return this.store.unsettledRollouts().some((stored) => stored.rollout.hosts.some((h) => h.name === hostName && h.switched));
  }

  /** The commits of the rollouts verifying the host (what the shell reads published desired systems for). */
  verifyingCommits(hostName: string): string[] {
    return this.store.unsettledRollouts().flatMap(({ rollout }) => (rollout.hosts.some((h) => h.name === hostName && h.switched) ? [rollout.commit] : []));
  }

  /**
   * A report of a host in a running rollout: its System and Tests, as the compartments see them (the shell read
   * `target`, and `published`: rollout commit → the desired system published for this host, for `evaluate = "ci"`).
   */
  health(
    host: HostRef,
    report: Report,
    receivedAt: string,
    target: Awaited<ReturnType<typeof loadFleetTarget>>,
    commands: CommandView[],
    published: ReadonlyMap<string, string> = new Map(),
  ): Step<undefined> {
    const rollouts = this.store.unsettledRollouts().filter((stored) => stored.rollout.hosts.some((h) => h.name === host.name && h.switched));
    if (rollouts.length === 0) return step();
    const now = this.host.now();
    for (const { rollout } of rollouts) {
      // Judged against the rollout's commit, not main's head: main may have moved on while the wave ran.
      const repo = target.repo === null ? null : { ...target.repo, head: headAt(target.repo, rollout.commit) };
      const compartments = computeCompartments({
        platform: report.platform,
        report,
        reportedAt: receivedAt,
        online: this.isOnline(host.id, now, true),
        lastSeenAt: receivedAt,
        commands,
        repo,
        updatePrs: target.updatePrs,
        expectedAgentVersion: NIXFLEET_VERSION,
        now: new Date(now),
        desiredPublished: outPathOf(published, rollout.commit),
      });
      this.feed(rollout.id, {
        type: "host-health",
        host: host.name,
        commit: report.repo.commit.value,
        system: compartments.system.state,
        tests: compartments.tests.state,
        testsConfigured: report.tests.configured,
        reason: compartments.system.state === "red" ? compartments.system.reason : compartments.tests.reason,
      });
    }
    return step();
  }

  /** Whether the rollout still waits for the revert it asked for (a revert opened or failed is not asked again). */
  awaitsRevert(rolloutId: string): boolean {
    return this.store.rollout(rolloutId)?.rollout.revert?.state === "requested";
  }

  nextWakeAt(): number | null {
    let next: number | null = null;
    for (const { rollout } of this.store.unsettledRollouts()) {
      if (rollout.wakeAt !== null && (next === null || Date.parse(rollout.wakeAt) < next)) next = Date.parse(rollout.wakeAt);
    }
    return next;
  }

  /** Soaks end, windows open: each rollout whose wake-up came gets a tick. */
  wake(now: number): Step<undefined> {
    for (const { rollout } of this.store.unsettledRollouts()) {
      if (rollout.wakeAt !== null && Date.parse(rollout.wakeAt) <= now) this.feed(rollout.id, { type: "tick" });
    }
    return step();
  }
}
