/**
 * The rules of a command's life, as pure functions: what may be queued
 * while what runs, which state may follow which, what a poll delivers, when
 * a command times out, how much output is kept. The coordinator Durable
 * Object is the thin shell that stores what these functions decide.
 */
import {
  ACTIVATION_KINDS,
  CommandDelivery,
  type ActivationMode,
  COMMAND_DEADLINE_SECONDS,
  EXCLUSIVE_COMMAND_KINDS,
  isFinalCommandState,
  type CommandKind,
  type CommandResult,
  type CommandState,
  type CommandView,
  type OutputChunk,
  type StoredOutputChunk,
} from "../../common/protocol.ts";
import { isActiveCommand } from "../../common/commands.ts";
import type { z } from "zod";
import { refuse, type Refusal } from "../outcome.ts";

/** What some kinds take besides a commit (a rollback's generation, a gc's dry run and fleet defaults, a builder's hosts), stored as one JSON column. */
export const CommandParameters = CommandDelivery.pick({ generation: true, dryRun: true, gc: true, builds: true });
export type CommandParameters = z.infer<typeof CommandParameters>;
export const NO_PARAMETERS: CommandParameters = { generation: null, dryRun: false, gc: null, builds: [] };

/** Output beyond this per command is dropped behind a visible marker. */
export const MAX_OUTPUT_BYTES_PER_COMMAND = 1024 * 1024;

export interface CommandRecord {
  id: string;
  hostId: string;
  hostName: string;
  kind: CommandKind;
  state: CommandState;
  /** For `stop`: the command to cancel. */
  target: string | null;
  /** The exact commit to act on (a rollout's pull-switch), when one is fixed. */
  commit: string | null;
  actor: string;
  createdAt: string;
  deliveredAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  deadlineAt: string;
  expiresAt: string;
  exitCode: number | null;
  error: string | null;
  result: CommandResult | null;
  outputBytes: number;
  outputTruncated: boolean;
  /** The highest output seq stored: a chunk at or below it is a retry. */
  outputHighWater: number;
  /** The agent confirmed it holds the delivery (ack or `started`): never delivered again. */
  acked: boolean;
  /** The rollout this command was sent for; its transitions drive that rollout. */
  rolloutId: string | null;
  parameters: CommandParameters;
  /** For a switch: how it activates; null is the host's own mode. */
  activation: ActivationMode | null;
  /** When the agent said it reboots the host for this command (its `rebooting` event); null before. */
  rebootingAt: string | null;
}

export type CommandPatch = Partial<
  Pick<CommandRecord, "state" | "deliveredAt" | "startedAt" | "finishedAt" | "deadlineAt" | "exitCode" | "error" | "result" | "acked" | "rebootingAt">
>;

/** Which state may follow which. A final state is never left: the first final state wins. */
const NEXT_STATES: Record<CommandState, readonly CommandState[]> = {
  queued: ["delivered", "cancelled", "timed-out"],
  delivered: ["delivered", "running", "succeeded", "failed", "cancelled", "timed-out", "lost"],
  running: ["running", "succeeded", "failed", "cancelled", "timed-out", "lost"],
  succeeded: [],
  failed: [],
  cancelled: [],
  "timed-out": [],
  lost: [],
};

export const canTransition = (from: CommandState, to: CommandState): boolean => NEXT_STATES[from].includes(to);

/** The record after `patch`, or why the change is refused. Never mutates `record`. */
export function applyPatch(record: CommandRecord, patch: CommandPatch): { ok: true; record: CommandRecord } | Refusal {
  if (isFinalCommandState(record.state)) {
    return refuse(409, "command_final", `command ${record.id} is already ${record.state}`);
  }
  if (patch.state !== undefined && !canTransition(record.state, patch.state) && patch.state !== record.state) {
    return refuse(409, "invalid_transition", `command ${record.id} is ${record.state}; it cannot become ${patch.state}`);
  }
  return { ok: true, record: { ...record, ...patch } };
}

export interface NewCommand {
  id: string;
  hostId: string;
  hostName: string;
  kind: CommandKind;
  target: string | null;
  commit: string | null;
  actor: string;
  now: number;
  /** How long a queued command waits for an offline host. */
  ttlSeconds: number;
  rolloutId?: string | null;
  parameters?: CommandParameters;
  activation?: ActivationMode | null;
}

export function newCommand(input: NewCommand): CommandRecord {
  const { now, ttlSeconds, kind } = input;
  return {
    id: input.id,
    hostId: input.hostId,
    hostName: input.hostName,
    kind,
    state: "queued",
    target: input.target,
    commit: input.commit,
    actor: input.actor,
    createdAt: new Date(now).toISOString(),
    deliveredAt: null,
    startedAt: null,
    finishedAt: null,
    // Until delivery the deadline is the expiry plus the run time; delivery resets it.
    deadlineAt: new Date(now + (ttlSeconds + COMMAND_DEADLINE_SECONDS[kind]) * 1000).toISOString(),
    expiresAt: new Date(now + ttlSeconds * 1000).toISOString(),
    exitCode: null,
    error: null,
    result: null,
    outputBytes: 0,
    outputTruncated: false,
    outputHighWater: -1,
    acked: false,
    rolloutId: input.rolloutId ?? null,
    parameters: input.parameters ?? NO_PARAMETERS,
    activation: input.activation ?? null,
    rebootingAt: null,
  };
}

/** The patch that hands a queued command to the agent: its run-time deadline starts now. */
export const deliveryPatch = (kind: CommandKind, now: number): CommandPatch => ({
  state: "delivered",
  deliveredAt: new Date(now).toISOString(),
  deadlineAt: new Date(now + COMMAND_DEADLINE_SECONDS[kind] * 1000).toISOString(),
});

/**
 * What queueing `kind` on a host whose not-final commands are `active` means:
 * a plain queue, a `stop` aimed at the exclusive command (cancelled by us when
 * it never reached the host), or a refusal naming what runs.
 */
export type Admission =
  | { ok: true; action: "queue"; target: null }
  /** Any other exclusive command preempts a build: the build is stopped (or cancelled, never delivered) and the command queued behind it. */
  | { ok: true; action: "preempt-build"; target: CommandRecord }
  | { ok: true; action: "stop-delivered"; target: CommandRecord }
  | { ok: true; action: "cancel-queued"; target: CommandRecord }
  | Refusal;

export function admit(hostName: string, active: readonly CommandRecord[], kind: CommandKind): Admission {
  const busy = active.find((c) => isActiveCommand(c) && EXCLUSIVE_COMMAND_KINDS.has(c.kind));
  if (kind === "stop") {
    if (!busy) return refuse(409, "nothing_to_stop", `${hostName} has no queued or running command to stop`);
    return busy.state === "queued" ? { ok: true, action: "cancel-queued", target: busy } : { ok: true, action: "stop-delivered", target: busy };
  }
  // A build is a background preview: a person's or a rollout's command never waits behind it (the fleet build
  // queues that host's build again once it is free), and a build's diff against a system about to change says nothing.
  if (EXCLUSIVE_COMMAND_KINDS.has(kind) && kind !== "build" && busy?.kind === "build") return { ok: true, action: "preempt-build", target: busy };
  if (EXCLUSIVE_COMMAND_KINDS.has(kind) && busy) {
    return refuse(409, "host_busy", `${hostName} already has ${busy.kind} (${busy.id}) ${busy.state}; wait for it or stop it first`);
  }
  return { ok: true, action: "queue", target: null };
}

/** Whether a poll hands this command to the agent now. */
export function isDeliverable(record: CommandRecord, now: number): boolean {
  if (record.state === "queued") return Date.parse(record.expiresAt) > now;
  return record.state === "delivered" && !record.acked;
}

/** The final patch for a command whose time ran out, or null while it still has time. */
export function timeoutPatch(record: CommandRecord, now: number): CommandPatch | null {
  const finishedAt = new Date(now).toISOString();
  if (record.state === "queued") {
    if (Date.parse(record.expiresAt) > now) return null;
    return { state: "timed-out", finishedAt, error: "expired before delivery: the host did not come online in time" };
  }
  if (!isActiveCommand(record) || Date.parse(record.deadlineAt) > now) return null;
  if ((record.kind === "reboot" && record.acked) || record.rebootingAt !== null) {
    return { state: "lost", finishedAt, error: `the host did not come back from the reboot by the deadline (${record.deadlineAt}): no agent reported a new boot` };
  }
  return { state: "timed-out", finishedAt, error: `lost contact: no result by the deadline (${record.deadlineAt})` };
}

/**
 * The agent's word that it reboots the host for this command: from now on the command has a reboot's
 * verification deadline (`COMMAND_DEADLINE_SECONDS.reboot`), which ends it `lost` in `timeoutPatch` when
 * no agent comes back with a new boot. A `reboot` or a switch (in mode `boot-then-reboot-if-needed`)
 * reboots; a repeated event (an answer lost on its way back) changes nothing.
 */
export function rebootingPatch(record: CommandRecord, now: number): CommandPatch | null | Refusal {
  if (record.kind !== "reboot" && !ACTIVATION_KINDS.has(record.kind)) {
    return refuse(409, "not_a_reboot", `command ${record.id} is a ${record.kind}: only a reboot or a switch reboots the host`);
  }
  if (record.rebootingAt !== null) return null;
  return {
    rebootingAt: new Date(now).toISOString(),
    deadlineAt: new Date(now + COMMAND_DEADLINE_SECONDS.reboot * 1000).toISOString(),
    acked: true,
  };
}

/** What of a command its clock depends on. */
export type CommandDeadlines = Pick<CommandRecord, "state" | "expiresAt" | "deadlineAt">;

/** When this command next needs the clock: its expiry while queued, its deadline after. */
export const nextDeadline = (record: CommandDeadlines): number =>
  Date.parse(record.state === "queued" ? record.expiresAt : record.deadlineAt);

/**
 * A new agent process (another session) that does not list a command the old
 * one had confirmed lost it with the old process. Within one session a
 * command missing from the list is one whose `finished` is still on its way.
 */
export function commandsLostBy(active: readonly CommandRecord[], sessionChanged: boolean, held: ReadonlySet<string>): CommandRecord[] {
  if (!sessionChanged) return [];
  return active.filter((c) => c.state !== "queued" && c.acked && !held.has(c.id));
}

export const LOST_ERROR = "the agent no longer holds this command (it restarted or was killed while the command ran)";

/**
 * Which of `chunks` are stored: retries (seq at or below the high-water mark)
 * are dropped, and past the byte cap one visible marker ends the output.
 */
export function acceptOutput(
  record: Pick<CommandRecord, "outputBytes" | "outputTruncated" | "outputHighWater">,
  chunks: readonly OutputChunk[],
  at: string,
): { kept: StoredOutputChunk[]; outputBytes: number; outputTruncated: boolean; outputHighWater: number } {
  const unchanged = { kept: [], outputBytes: record.outputBytes, outputTruncated: record.outputTruncated, outputHighWater: record.outputHighWater };
  if (record.outputTruncated) return unchanged;
  const fresh = [...chunks].filter((chunk) => chunk.seq > record.outputHighWater).sort((a, b) => a.seq - b.seq);
  if (fresh.length === 0) return unchanged;
  const kept: StoredOutputChunk[] = [];
  let bytes = record.outputBytes;
  let truncated = false;
  const encoder = new TextEncoder();
  for (const chunk of fresh) {
    if (kept.length > 0 && chunk.seq === kept[kept.length - 1]!.seq) continue;
    const size = encoder.encode(chunk.data).byteLength;
    if (bytes + size > MAX_OUTPUT_BYTES_PER_COMMAND) {
      kept.push({
        seq: chunk.seq,
        stream: "system",
        data: `\n[output truncated: more than ${MAX_OUTPUT_BYTES_PER_COMMAND} bytes; the rest was dropped]\n`,
        at,
      });
      truncated = true;
      break;
    }
    bytes += size;
    kept.push({ ...chunk, at });
  }
  return { kept, outputBytes: bytes, outputTruncated: truncated, outputHighWater: kept[kept.length - 1]!.seq };
}

export const toDelivery = (record: CommandRecord): CommandDelivery => ({
  id: record.id,
  kind: record.kind,
  target: record.target,
  commit: record.commit,
  ...record.parameters,
  activation: record.activation,
  createdAt: record.createdAt,
  deadlineAt: record.deadlineAt,
});

export function toCommandView(record: CommandRecord): CommandView {
  return {
    id: record.id,
    host: record.hostName,
    kind: record.kind,
    state: record.state,
    target: record.target,
    actor: record.actor,
    createdAt: record.createdAt,
    deliveredAt: record.deliveredAt,
    startedAt: record.startedAt,
    finishedAt: record.finishedAt,
    deadlineAt: record.deadlineAt,
    expiresAt: record.expiresAt,
    exitCode: record.exitCode,
    error: record.error,
    result: record.result,
  };
}
