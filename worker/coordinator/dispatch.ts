/**
 * Command dispatch: the only writer of a command's state. Queueing (with the busy check and the
 * delivery to a waiting poll in one step), the synchronous parts of a poll and of a command event,
 * output, and timeouts. The rules are worker/commands/rules.ts; this is their storage. A command's
 * state changes in `transition` only, which raises the `command-changed` reaction the shell routes to
 * the rollouts and fleet builds.
 */
import { isActiveCommand } from "../../common/commands.ts";
import type { ActivationMode, CommandDelivery, CommandEvent, CommandKind, CommandView, PollRequest, StoredOutputChunk } from "../../common/protocol.ts";
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
  rebootingPatch,
  timeoutPatch,
  toCommandView,
  toDelivery,
  type CommandParameters,
  type CommandPatch,
  type CommandRecord,
} from "../commands/rules.ts";
import type { CommandMetricsStore } from "../db/coordinator/command-metrics.ts";
import type { CommandStore, PrunedHistory } from "../db/coordinator/commands.ts";
import type { SessionStore } from "../db/coordinator/sessions.ts";
import { newId } from "../ids.ts";
import { auditEffect } from "./effects.ts";
import type { CoordinatorHost } from "./host.ts";
import { refuse, type Outcome, type Refusal } from "../outcome.ts";
import { step, type Step } from "./step.ts";
import type { WaitingPolls } from "./waiting-polls.ts";

export interface CommandOutput {
  command: CommandView;
  chunks: StoredOutputChunk[];
  truncated: boolean;
}

export interface EnqueueOptions {
  commit: string | null;
  rolloutId: string | null;
  /** A rollback's generation, a gc's dry run and defaults; none by default. */
  parameters?: CommandParameters;
  /** For a switch: how it activates; left out or null, the host's own mode. */
  activation?: ActivationMode | null;
}

/** How many of a host's newest commands its compartments are computed from when its report is judged. */
const COMMANDS_JUDGED = 20;

/** What the rollout and fleet-build runners may do with commands: the shell hands them dispatch as this. */
export interface CommandPort {
  command(id: string): CommandRecord | null;
  activeCommandsOf(hostId: string): CommandRecord[];
  hostCommands(hostId: string, limit: number): CommandRecord[];
  enqueue(host: { id: string; name: string }, kind: CommandKind, actor: string, options: EnqueueOptions): Step<Outcome<{ command: CommandView }>>;
  transition(record: CommandRecord, patch: CommandPatch): Step<CommandRecord | Refusal>;
}

export class Dispatch implements CommandPort {
  private readonly host: CoordinatorHost;
  private readonly commands: CommandStore;
  private readonly sessions: SessionStore;
  private readonly metrics: CommandMetricsStore;
  private readonly waiting: WaitingPolls;
  private readonly queuedTtlSeconds: number;

  constructor(
    host: CoordinatorHost,
    commands: CommandStore,
    sessions: SessionStore,
    metrics: CommandMetricsStore,
    waiting: WaitingPolls,
    queuedTtlSeconds: number,
  ) {
    this.host = host;
    this.commands = commands;
    this.sessions = sessions;
    this.metrics = metrics;
    this.waiting = waiting;
    this.queuedTtlSeconds = queuedTtlSeconds;
  }

  command(id: string): CommandRecord | null {
    return this.commands.command(id);
  }

  activeCommandsOf(hostId: string): CommandRecord[] {
    return this.commands.activeCommandsOf(hostId);
  }

  hostCommands(hostId: string, limit: number): CommandRecord[] {
    return this.commands.hostCommands(hostId, limit);
  }

  activeCommands(): CommandRecord[] {
    return this.commands.activeCommands();
  }

  /** The host's newest commands its report is judged with (by a verifying rollout and by its incidents). */
  judgedCommands(hostId: string): CommandView[] {
    return this.commands.hostCommands(hostId, COMMANDS_JUDGED).map(toCommandView);
  }

  /** A count of the changes to commands: one taken earlier in the same synchronous step differs when any command changed since. */
  commandChanges(): number {
    return this.commands.changes;
  }

  /** What the history's bounds pruned of the host (worker/commands/history.ts), or null. */
  prunedOf(hostId: string): PrunedHistory | null {
    return this.commands.prunedOf(hostId);
  }

  /** The newest `perHost` commands of every host, as the dashboard shows them. */
  recentByHost(perHost: number): Record<string, CommandView[]> {
    const commands: Record<string, CommandView[]> = {};
    for (const [hostId, records] of this.commands.recentCommandsByHost(perHost)) commands[hostId] = records.map(toCommandView);
    return commands;
  }

  view(id: string): CommandView | null {
    const record = this.commands.command(id);
    return record ? toCommandView(record) : null;
  }

  output(id: string, afterSeq: number, limit: number): CommandOutput | null {
    const record = this.commands.command(id);
    if (!record) return null;
    return { command: toCommandView(record), chunks: this.commands.readOutput(id, afterSeq, limit), truncated: record.outputTruncated };
  }

  /** The single place a command's state changes. Refuses to leave a final state. */
  transition(record: CommandRecord, patch: CommandPatch): Step<CommandRecord | Refusal> {
    const next = applyPatch(record, patch);
    if (!next.ok) return step(next);
    if (!this.commands.updateCommand(record.id, record.state, patch)) {
      return step(refuse(409, "command_changed", `command ${record.id} changed while this event was handled; send it again`));
    }
    if (!isActiveCommand(next.record)) {
      if (isActiveCommand(record)) this.countFinished(next.record);
      this.commands.prune(record.hostId);
    }
    if (patch.state !== undefined && patch.state !== record.state) {
      this.host.broadcast({ type: "command", command: toCommandView(next.record) });
      this.host.react({ type: "command-changed", record: next.record });
    }
    return step(next.record);
  }

  /**
   * The synchronous heart of queueing: no await from the busy check to the stored command, so two
   * enqueues cannot both pass it. The runners queue their hosts' commands through here too.
   */
  enqueue(host: { id: string; name: string }, kind: CommandKind, actor: string, options: EnqueueOptions): Step<Outcome<{ command: CommandView }>> {
    const admission = admit(host.name, this.commands.activeCommandsOf(host.id), kind);
    if (!admission.ok) return step(admission);
    const now = this.host.now();
    const at = new Date(now).toISOString();
    const ttlSeconds = this.queuedTtlSeconds;
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
      parameters: options.parameters,
      activation: options.activation ?? null,
    });

    if (admission.action === "cancel-queued") {
      // Never reached the host: cancelling is ours to do, no agent round trip.
      this.transition(admission.target, { state: "cancelled", finishedAt: at, error: `stopped by ${actor} before delivery` });
      const stop: CommandRecord = { ...record, state: "succeeded", startedAt: at, finishedAt: at, result: { stopped: true } };
      this.commands.insertCommand(stop);
      this.countFinished(stop);
      this.host.broadcast({ type: "command", command: toCommandView(stop) });
      return step({ ok: true, command: toCommandView(stop) });
    }

    if (admission.action === "preempt-build") {
      const build = admission.target;
      if (build.state === "queued") {
        this.transition(build, { state: "cancelled", finishedAt: at, error: `cancelled: a ${kind} was queued by ${actor}` });
      } else {
        const stop = newCommand({ ...record, id: newId("cmd"), kind: "stop", target: build.id, commit: null, rolloutId: null, parameters: undefined, activation: null, ttlSeconds, now });
        this.insertAndDeliver(host, stop, now);
      }
    }
    // The switch that preempts a build targets nothing; a stop targets what it stops.
    const queued = admission.action === "preempt-build" ? { ...record, target: null } : record;
    return step({ ok: true, command: this.insertAndDeliver(host, queued, now) });
  }

  /** Stores a new command, handing it to the host's waiting poll in the same step when there is one. */
  private insertAndDeliver(host: { id: string }, record: CommandRecord, now: number): CommandView {
    // A waiting poll means nothing else is deliverable for this host: it would have been answered.
    const waiting = this.waiting.has(host.id);
    const stored: CommandRecord = waiting ? { ...record, ...deliveryPatch(record.kind, now) } : record;
    this.commands.insertCommand(stored);
    if (waiting) this.waiting.end(host.id, [toDelivery(stored)]);
    const view = toCommandView(stored);
    this.host.broadcast({ type: "command", command: view });
    return view;
  }

  /**
   * A poll's first half: the deliveries it acknowledges, the commands its agent no longer holds (a new
   * session, or a command missing from its list) and the session it names. `wantReport` when the
   * agent's session has no stored report yet.
   */
  settlePoll(hostId: string, request: Pick<PollRequest, "acks" | "agentSession" | "activeCommands" | "report">): Step<{ wantReport: boolean }> {
    const now = this.host.now();
    this.commands.acknowledge(hostId, request.acks);
    const session = this.sessions.agentSession(hostId) ?? { session: null, reportSession: null, reportHash: null };
    const sessionChanged = session.session !== null && session.session !== request.agentSession;
    for (const lost of commandsLostBy(this.commands.activeCommandsOf(hostId), sessionChanged, new Set(request.activeCommands))) {
      this.transition(lost, { state: "lost", finishedAt: new Date(now).toISOString(), error: LOST_ERROR });
    }
    if (session.session !== request.agentSession) this.sessions.saveAgentSession(hostId, { ...session, session: request.agentSession });
    return step({ wantReport: !request.report && session.reportSession !== request.agentSession });
  }

  /** A poll's second half: what it takes now, stored as delivered in this step; a stop goes first. */
  deliverable(hostId: string): Step<CommandDelivery[]> {
    const now = this.host.now();
    const ready: CommandDelivery[] = [];
    for (const record of this.commands.activeCommandsOf(hostId)) {
      if (!isDeliverable(record, now)) continue;
      const delivered = record.state === "queued" ? this.transition(record, deliveryPatch(record.kind, now)).value : record;
      if (!("ok" in delivered)) ready.push(toDelivery(delivered));
    }
    // A stop goes first: it must never wait behind what it stops.
    ready.sort((a, b) => Number(b.kind === "stop") - Number(a.kind === "stop"));
    return step(ready);
  }

  /** An agent's event about its own command. */
  event(hostId: string, commandId: string, event: CommandEvent): Step<Outcome<{ state: string }>> {
    const record = this.commands.command(commandId);
    if (!record || record.hostId !== hostId) return step(refuse(404, "unknown_command", `no command ${commandId} for this host`));
    if (!isActiveCommand(record)) return step(refuse(409, "command_final", `command ${commandId} is already ${record.state}`));
    let next: CommandRecord | Refusal;
    switch (event.type) {
      case "started":
        next = this.transition(record, record.state === "running" ? { acked: true } : { state: "running", startedAt: event.at, acked: true }).value;
        break;
      case "output":
        next = this.appendOutput(record, event.chunks, new Date(this.host.now()).toISOString());
        break;
      case "rebooting":
        next = this.rebooting(record, event.system);
        break;
      case "finished":
        if (event.result.hostRollback) {
          const { from, to, reason, outcome } = event.result.hostRollback;
          this.host.effect(auditEffect(this.host.now(), `host ${record.hostName}`, "host.rolled-back", record.hostName, { commandId, from, to, reason, outcome }));
        }
        next = this.transition(event.output ? this.appendOutput(record, event.output, new Date(this.host.now()).toISOString()) : record, {
          state: event.outcome,
          finishedAt: event.at,
          exitCode: event.exitCode,
          error: event.error,
          result: event.result,
          startedAt: record.startedAt ?? event.at,
          acked: true,
        }).value;
        break;
    }
    return step("ok" in next ? next : { ok: true, state: next.state });
  }

  /** The agent reboots the host for this command: the reboot's verification deadline runs from now. */
  private rebooting(record: CommandRecord, system: string): CommandRecord | Refusal {
    const now = this.host.now();
    const patch = rebootingPatch(record, now);
    if (patch === null || "ok" in patch) return patch ?? record;
    const next = this.transition(record, patch).value;
    if ("ok" in next) return next;
    const details = { commandId: record.id, kind: record.kind, system, deadlineAt: next.deadlineAt, message: `rebooting to activate ${system}` };
    this.host.effect(auditEffect(now, `host ${record.hostName}`, "host.rebooting", record.hostName, details));
    // The deadline the dashboard shows moved; the state did not, so transition announced nothing.
    this.host.broadcast({ type: "command", command: toCommandView(next) });
    return next;
  }

  /** A switch's confirmation from the host's new agent: it must be this host's switch, still running. */
  confirm(host: { id: string; name: string }, commandId: string, system: string): Step<Outcome<{ commandId: string }>> {
    const record = this.commands.command(commandId);
    if (!record || record.hostId !== host.id) return step(refuse(404, "unknown_command", `no command ${commandId} for this host`));
    if (record.kind !== "switch" && record.kind !== "pull-switch") return step(refuse(409, "not_a_switch", `command ${commandId} is a ${record.kind}, not a switch`));
    if (!isActiveCommand(record)) return step(refuse(409, "command_final", `command ${commandId} is already ${record.state}: too late to confirm`));
    this.host.effect(auditEffect(this.host.now(), `host ${host.name}`, "command.confirm", host.name, { commandId, system }));
    return step({ ok: true, commandId });
  }

  private appendOutput(record: CommandRecord, chunks: Parameters<typeof acceptOutput>[1], at: string): CommandRecord {
    const accepted = acceptOutput(record, chunks, at);
    if (accepted.kept.length === 0) return record;
    this.commands.appendOutput(record.id, accepted.kept, accepted);
    this.host.broadcast({ type: "output", host: record.hostName, commandId: record.id, chunks: accepted.kept });
    return { ...record, ...accepted };
  }

  /** Counts a command that reached its final state, for GET /metrics, in the step that made it final. */
  private countFinished(record: CommandRecord): void {
    const ran = record.startedAt !== null && record.finishedAt !== null ? (Date.parse(record.finishedAt) - Date.parse(record.startedAt)) / 1000 : Number.NaN;
    this.metrics.recordCommandFinished(record.kind, record.state, Number.isFinite(ran) ? Math.max(0, ran) : null);
  }

  /** The earliest deadline or expiry of a command not yet final. */
  nextWakeAt(): number | null {
    let next: number | null = null;
    for (const command of this.commands.activeDeadlines()) {
      const at = nextDeadline(command);
      if (next === null || at < next) next = at;
    }
    return next;
  }

  /**
   * Commands past their deadline or expiry end `timed-out`. Each record is read and written in one
   * synchronous step, so a `finished` cannot land between the deadline check and the timed-out write.
   */
  wake(now: number): Step<undefined> {
    for (const record of this.commands.activeCommands()) {
      const patch = timeoutPatch(record, now);
      if (patch) this.transition(record, patch);
    }
    return step();
  }

  /** A removed host: its commands, output and session are deleted without a transition, its poll answered. */
  forgetHost(hostId: string): Step<undefined> {
    this.commands.forgetHost(hostId);
    this.sessions.forgetHost(hostId);
    this.waiting.end(hostId);
    return step();
  }
}
