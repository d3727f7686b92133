import { DurableObject } from "cloudflare:workers";
import {
  PROTOCOL_VERSION,
  type CommandDelivery,
  type CommandEvent,
  type CommandKind,
  type CommandView,
  type DashboardEvent,
  type PollRequest,
  type PollResponse,
  type Report,
  type StoredOutputChunk,
} from "../../common/protocol.ts";
import {
  acceptOutput,
  admit,
  applyPatch,
  commandsLostBy,
  deliveryPatch,
  isActive,
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
import { openDatabase, type Database } from "../db/client.ts";
import { CoordinatorStorage } from "../db/coordinator-storage.ts";
import {
  deleteHost,
  findHostByName,
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

export { MAX_OUTPUT_BYTES_PER_COMMAND } from "../commands/rules.ts";
export type { Refusal } from "../commands/rules.ts";
export type Outcome<T> = ({ ok: true } & T) | Refusal;

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
  /** Invocations since this object started, for the cost benchmark and operators. */
  private readonly counters = { polls: 0, commandEvents: 0, enqueues: 0, alarms: 0, reportsStored: 0 };

  constructor(ctx: DurableObjectState, env: WorkerEnv) {
    super(ctx, env);
    this.db = openDatabase(env.DB);
    this.store = new CoordinatorStorage(ctx.storage.sql);
    void ctx.blockConcurrencyWhile(async () => {
      this.alarmAt = await ctx.storage.getAlarm();
      await this.scheduleAlarm();
    });
  }

  // -------------------------------------------------------------------------
  // Agent side

  async poll(tokenHash: string, request: PollRequest, waitSeconds: number): Promise<Outcome<{ response: PollResponse }>> {
    this.counters.polls++;
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
    if (!isActive(record)) return refuse(409, "command_final", `command ${commandId} is already ${record.state}`);

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

    // No await from the busy check to the stored command: two enqueues cannot both pass it.
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
      commit: options.commit ?? null,
      actor,
      now,
      ttlSeconds,
    });

    if (admission.action === "cancel-queued") {
      // Never reached the host: cancelling is ours to do, no agent round trip.
      this.transition(admission.target, { state: "cancelled", finishedAt: at, error: `stopped by ${actor} before delivery` });
      const stop: CommandRecord = { ...record, state: "succeeded", startedAt: at, finishedAt: at, result: { stopped: true } };
      this.store.insertCommand(stop);
      this.broadcast({ type: "command", command: toCommandView(stop) });
      await this.scheduleAlarm();
      return { ok: true, command: toCommandView(stop) };
    }

    // A waiting poll means nothing else is deliverable for this host: it would have been answered.
    const waiter = this.waiting.get(host.id);
    const stored: CommandRecord = waiter ? { ...record, ...deliveryPatch(kind, now) } : record;
    this.store.insertCommand(stored);
    if (waiter) this.endWaitingPoll(host.id, [toDelivery(stored)]);
    const view = toCommandView(stored);
    this.broadcast({ type: "command", command: view });
    await this.scheduleAlarm();
    return { ok: true, command: view };
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
      this.hosts.delete(host.id);
      this.endWaitingPoll(host.id);
    } finally {
      this.removing.delete(host.id);
    }
    this.broadcast({ type: "host", host: host.name, removed: true });
    await this.scheduleAlarm();
    return { ok: true, host };
  }

  // -------------------------------------------------------------------------
  // Reads for the dashboard: commands are read through the object, their only home.

  /** Presence and the newest commands of every host this object knows. */
  async fleetLive(commandsPerHost: number): Promise<{
    presence: Record<string, { online: boolean; lastSeenAt: string | null }>;
    commands: Record<string, CommandView[]>;
  }> {
    const commands: Record<string, CommandView[]> = {};
    for (const [hostId, records] of this.store.recentCommandsByHost(commandsPerHost)) commands[hostId] = records.map(toCommandView);
    return { presence: this.presence(), commands };
  }

  async hostLive(hostId: string, limit: number): Promise<{ presence: { online: boolean; lastSeenAt: string | null } | null; commands: CommandView[] }> {
    return { presence: this.presence()[hostId] ?? null, commands: this.store.hostCommands(hostId, limit).map(toCommandView) };
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
    await this.scheduleAlarm();
  }

  private async scheduleAlarm(): Promise<void> {
    let next = Number.POSITIVE_INFINITY;
    for (const record of this.store.activeCommands()) next = Math.min(next, nextDeadline(record));
    for (const live of this.hosts.values()) {
      if (live.online && !this.waiting.has(live.id)) next = Math.min(next, this.offlineAt(live));
    }
    if (!Number.isFinite(next)) return;
    if (this.alarmAt !== null && this.alarmAt <= next) return;
    this.alarmAt = next;
    // Unconfirmed: an alarm write must not hold back a poll answer (output gate); the constructor reschedules after a restart.
    await this.ctx.storage.setAlarm(next, { allowUnconfirmed: true });
  }

  // -------------------------------------------------------------------------

  /** The single place a command's state changes. Refuses to leave a final state. */
  private transition(record: CommandRecord, patch: CommandPatch): CommandRecord | Refusal {
    const next = applyPatch(record, patch);
    if (!next.ok) return next;
    if (!this.store.updateCommand(record.id, record.state, patch)) {
      return refuse(409, "command_changed", `command ${record.id} changed while this event was handled; send it again`);
    }
    if (!isActive(next.record)) this.store.prune(record.hostId);
    if (patch.state !== undefined && patch.state !== record.state) this.broadcast({ type: "command", command: toCommandView(next.record) });
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
    this.broadcast({ type: "host", host: host.name, online: true, reportedAt: receivedAt });
  }
}
