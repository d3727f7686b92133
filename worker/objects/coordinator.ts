import { DurableObject } from "cloudflare:workers";
import {
  COMMAND_DEADLINE_SECONDS,
  EXCLUSIVE_COMMAND_KINDS,
  PROTOCOL_VERSION,
  type CommandDelivery,
  type CommandEvent,
  type CommandKind,
  type CommandView,
  type DashboardEvent,
  type OutputChunk,
  type PollRequest,
  type PollResponse,
  type Report,
} from "../../common/protocol.ts";
import { openDatabase, type Database } from "../db/client.ts";
import {
  appendCommandOutput,
  getCommand,
  insertCommand,
  listActiveCommands,
  toCommandView,
  updateCommand,
  type CommandPatch,
  type CommandRecord,
} from "../db/commands.ts";
import { findHostByName, findHostByTokenHash, updateLastSeen, type Host } from "../db/hosts.ts";
import { getReport, upsertReport } from "../db/reports.ts";
import type { WorkerEnv } from "../env.ts";
import { newId, sha256Hex } from "../ids.ts";

/** Output beyond this per command is dropped behind a visible marker. */
export const MAX_OUTPUT_BYTES_PER_COMMAND = 1024 * 1024;
/** A host whose last poll ended longer ago than its poll timeout plus this is offline. */
const OFFLINE_GRACE_MS = 30_000;
/** "Last seen" reaches D1 on transitions and at most this often, not per poll. */
const LAST_SEEN_FLUSH_MS = 6 * 60 * 60 * 1000;

export type Refusal = { ok: false; status: 401 | 404 | 409; code: string; message: string };
export type Outcome<T> = ({ ok: true } & T) | Refusal;

interface LiveHost {
  id: string;
  name: string;
  lastSeenMs: number;
  lastFlushedMs: number;
  online: boolean;
  /** The agent process that polled last; a different one means the agent restarted. */
  session: string | null;
  /** The agent process whose report we hold; a new one must send a report. */
  reportSession: string | null;
  reportHash: string | null;
  pollTimeoutMs: number;
}

interface WaitingPoll {
  resolve: (commands: CommandDelivery[]) => void;
  timer: ReturnType<typeof setTimeout>;
}

const toDelivery = (record: CommandRecord): CommandDelivery => ({
  id: record.id,
  kind: record.kind,
  target: record.target,
  createdAt: record.createdAt,
  deadlineAt: record.deadlineAt,
});

const refuse = (status: Refusal["status"], code: string, message: string): Refusal => ({ ok: false, status, code, message });

/**
 * The fleet's coordinator: the one Durable Object that holds every waiting
 * agent poll (one object for the fleet, so an idle fleet bills one object's
 * duration, not N), wakes a poll when a command is queued, and is the only
 * writer of a command's state.
 */
export class Coordinator extends DurableObject<WorkerEnv> {
  private readonly db: Database;
  /** Commands not yet final, by id. Loaded from D1 when the object starts. */
  private readonly active = new Map<string, CommandRecord>();
  /** Delivered commands the agent confirmed it holds; the others are delivered again. */
  private readonly acked = new Set<string>();
  private readonly hosts = new Map<string, LiveHost>();
  private readonly tokenOwners = new Map<string, Host>();
  private readonly waiting = new Map<string, WaitingPoll>();
  private readonly outputHighWater = new Map<string, number>();
  private readonly hostNames = new Map<string, string>();
  /** Hosts by name, so queueing a command needs no D1 read. */
  private readonly hostsByName = new Map<string, Pick<Host, "id" | "name">>();
  private alarmAt: number | null = null;
  /** Invocations since this object started, for the cost benchmark and operators. */
  private readonly counters = { polls: 0, commandEvents: 0, enqueues: 0, alarms: 0, reportsStored: 0 };

  constructor(ctx: DurableObjectState, env: WorkerEnv) {
    super(ctx, env);
    this.db = openDatabase(env.DB);
    void ctx.blockConcurrencyWhile(async () => {
      for (const { record, hostName } of await listActiveCommands(this.db)) {
        this.active.set(record.id, record);
        this.hostNames.set(record.hostId, hostName);
        // A command the agent already started needs no redelivery after a restart of this object.
        if (record.state === "running") this.acked.add(record.id);
      }
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
    const now = Date.now();
    const live = await this.liveHost(host, waitSeconds);
    await this.markSeen(live, now);

    for (const id of request.acks) if (this.active.get(id)?.hostId === host.id) this.acked.add(id);
    await this.loseCommandsTheAgentDropped(live, request);
    live.session = request.agentSession;

    let wantReport = false;
    if (request.report) await this.acceptReport(live, request.agentSession, request.report, now);
    else wantReport = live.reportSession !== request.agentSession;

    const ready = await this.deliverable(host.id, now);
    const respond = (commands: CommandDelivery[]): Outcome<{ response: PollResponse }> => ({
      ok: true,
      response: { protocol: PROTOCOL_VERSION, commands, wantReport, pollTimeoutSeconds: waitSeconds },
    });
    if (ready.length > 0 || wantReport || waitSeconds === 0) return respond(ready);

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
    const record = this.active.get(commandId);
    if (!record || record.hostId !== host.id) {
      const stored = await getCommand(this.db, commandId);
      if (stored && stored.record.hostId === host.id) {
        return refuse(409, "command_final", `command ${commandId} is already ${stored.record.state}`);
      }
      return refuse(404, "unknown_command", `no command ${commandId} for this host`);
    }
    const now = new Date().toISOString();
    switch (event.type) {
      case "started":
        this.acked.add(commandId);
        if (record.state !== "running") await this.transition(record, host.name, { state: "running", startedAt: event.at });
        break;
      case "output":
        await this.appendOutput(record, host.name, event.chunks, now);
        break;
      case "finished":
        await this.transition(record, host.name, {
          state: event.outcome,
          finishedAt: event.at,
          exitCode: event.exitCode,
          error: event.error,
          result: event.result,
          startedAt: record.startedAt ?? event.at,
        });
        break;
    }
    return { ok: true, state: record.state };
  }

  // -------------------------------------------------------------------------
  // Admin side

  /**
   * Queues a command for the host. When the host's poll is waiting, the
   * command is stored as delivered and handed over in the same step, so the
   * wake-up costs one D1 write.
   */
  async enqueue(hostName: string, kind: CommandKind, actor: string): Promise<Outcome<{ command: CommandView }>> {
    this.counters.enqueues++;
    const host = await this.hostNamed(hostName);
    if (!host) return refuse(404, "host_not_found", `no host named ${hostName}`);
    const busy = [...this.active.values()].find((c) => c.hostId === host.id && EXCLUSIVE_COMMAND_KINDS.has(c.kind));
    let target: CommandRecord | null = null;
    if (kind === "stop") {
      target = busy ?? null;
      if (!target) return refuse(409, "nothing_to_stop", `${host.name} has no queued or running command to stop`);
    } else if (EXCLUSIVE_COMMAND_KINDS.has(kind) && busy) {
      return refuse(
        409,
        "host_busy",
        `${host.name} already has ${busy.kind} (${busy.id}) ${busy.state}; wait for it or stop it first`,
      );
    }

    const now = Date.now();
    const at = new Date(now).toISOString();
    if (target && target.state === "queued") {
      // Never reached the host: cancelling is ours to do, no agent round trip.
      await this.transition(target, host.name, { state: "cancelled", finishedAt: at, error: `stopped by ${actor} before delivery` });
      const stop = this.newCommand(host.id, kind, target.id, actor, now);
      Object.assign(stop, { state: "succeeded", startedAt: at, finishedAt: at, result: { stopped: true } });
      await insertCommand(this.db, stop);
      const view = toCommandView(stop, host.name);
      this.broadcast({ type: "command", command: view });
      return { ok: true, command: view };
    }

    // A waiting poll means nothing else is deliverable for this host: it would have been answered.
    const waiter = this.waiting.get(host.id);
    const record = this.newCommand(host.id, kind, target?.id ?? null, actor, now);
    if (waiter) {
      record.state = "delivered";
      record.deliveredAt = at;
      record.deadlineAt = new Date(now + COMMAND_DEADLINE_SECONDS[kind] * 1000).toISOString();
    }
    await insertCommand(this.db, record);
    this.active.set(record.id, record);
    if (waiter) this.endWaitingPoll(host.id, [toDelivery(record)]);
    const view = toCommandView(record, host.name);
    this.broadcast({ type: "command", command: view });
    await this.scheduleAlarm();
    return { ok: true, command: view };
  }

  private newCommand(hostId: string, kind: CommandKind, target: string | null, actor: string, now: number): CommandRecord {
    const ttlSeconds = Number(this.env.QUEUED_COMMAND_TTL_SECONDS) || 86_400;
    return {
      id: newId("cmd"),
      hostId,
      kind,
      state: "queued",
      target,
      actor,
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
    };
  }

  /** Online state of every host this object has seen. */
  async hostPresence(): Promise<Record<string, { online: boolean; lastSeenAt: string | null }>> {
    const now = Date.now();
    const presence: Record<string, { online: boolean; lastSeenAt: string | null }> = {};
    for (const live of this.hosts.values()) {
      presence[live.id] = { online: this.isOnline(live, now), lastSeenAt: new Date(live.lastSeenMs).toISOString() };
    }
    return presence;
  }

  async stats(): Promise<{ counters: Record<string, number>; waitingPolls: number; activeCommands: number; dashboards: number }> {
    return {
      counters: { ...this.counters },
      waitingPolls: this.waiting.size,
      activeCommands: this.active.size,
      dashboards: this.ctx.getWebSockets().length,
    };
  }

  /** A host's token was rotated: drop the cached owners and end its waiting poll; its commands go on. */
  async forgetTokens(hostId: string): Promise<void> {
    for (const [hash, owner] of this.tokenOwners) if (owner.id === hostId) this.tokenOwners.delete(hash);
    this.endWaitingPoll(hostId);
  }

  /** The host was removed (its rows are gone with it): forget everything about it. */
  async forgetHost(hostId: string): Promise<void> {
    await this.forgetTokens(hostId);
    this.hosts.delete(hostId);
    for (const [name, host] of this.hostsByName) if (host.id === hostId) this.hostsByName.delete(name);
    for (const [id, record] of this.active) if (record.hostId === hostId) this.active.delete(id);
  }

  /** Tell dashboards that something about a host changed (a webhook moved the target, say). */
  async notify(event: DashboardEvent): Promise<void> {
    this.broadcast(event);
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
    ws.close(code === 1005 ? 1000 : code, "closing");
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
    for (const record of [...this.active.values()]) {
      const hostName = this.hostNames.get(record.hostId) ?? "";
      if (record.state === "queued" && Date.parse(record.expiresAt) <= now) {
        await this.transition(record, hostName, {
          state: "timed-out",
          finishedAt: new Date(now).toISOString(),
          error: "expired before delivery: the host did not come online in time",
        });
      } else if (record.state !== "queued" && Date.parse(record.deadlineAt) <= now) {
        await this.transition(record, hostName, {
          state: "timed-out",
          finishedAt: new Date(now).toISOString(),
          error: `lost contact: no result by the deadline (${record.deadlineAt})`,
        });
      }
    }
    for (const live of this.hosts.values()) {
      if (live.online && !this.isOnline(live, now)) {
        live.online = false;
        await this.flushLastSeen(live);
        this.broadcast({ type: "host", host: live.name, online: false });
      }
    }
    await this.scheduleAlarm();
  }

  private async scheduleAlarm(): Promise<void> {
    let next = Number.POSITIVE_INFINITY;
    for (const record of this.active.values()) {
      next = Math.min(next, Date.parse(record.state === "queued" ? record.expiresAt : record.deadlineAt));
    }
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

  /** Answers the host's waiting poll, if any, and forgets it. */
  private endWaitingPoll(hostId: string, commands: CommandDelivery[] = []): void {
    const waiter = this.waiting.get(hostId);
    if (!waiter) return;
    this.waiting.delete(hostId);
    clearTimeout(waiter.timer);
    waiter.resolve(commands);
  }

  private async hostNamed(name: string): Promise<Pick<Host, "id" | "name"> | null> {
    const cached = this.hostsByName.get(name);
    if (cached) return cached;
    const host = await findHostByName(this.db, name);
    if (!host) return null;
    this.hostsByName.set(name, { id: host.id, name: host.name });
    this.hostNames.set(host.id, host.name);
    return host;
  }

  private async authenticate(tokenHash: string): Promise<Host | null> {
    const cached = this.tokenOwners.get(tokenHash);
    if (cached) return cached;
    const host = await findHostByTokenHash(this.db, tokenHash);
    if (host) {
      this.tokenOwners.set(tokenHash, host);
      this.hostNames.set(host.id, host.name);
    }
    return host;
  }

  private async liveHost(host: Host, waitSeconds: number): Promise<LiveHost> {
    let live = this.hosts.get(host.id);
    if (!live) {
      const stored = await getReport(this.db, host.id);
      const lastSeen = host.lastSeenAt ? Date.parse(host.lastSeenAt) : 0;
      live = {
        id: host.id,
        name: host.name,
        lastSeenMs: lastSeen,
        lastFlushedMs: lastSeen,
        online: false,
        session: stored?.agentSession ?? null,
        reportSession: stored?.agentSession ?? null,
        reportHash: stored?.reportHash ?? null,
        pollTimeoutMs: waitSeconds * 1000,
      };
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

  private async markSeen(live: LiveHost, now: number): Promise<void> {
    live.lastSeenMs = now;
    if (!live.online) {
      live.online = true;
      await this.flushLastSeen(live);
      this.broadcast({ type: "host", host: live.name, online: true });
    } else if (now - live.lastFlushedMs > LAST_SEEN_FLUSH_MS) {
      await this.flushLastSeen(live);
    }
  }

  private async flushLastSeen(live: LiveHost): Promise<void> {
    live.lastFlushedMs = live.lastSeenMs;
    await updateLastSeen(this.db, live.id, new Date(live.lastSeenMs).toISOString());
  }

  /**
   * A new agent process (a new session) that does not hold a command the old
   * one had confirmed (acked or started) lost it with the old process: it ends
   * `lost`. Within one session a command missing from the list is one whose
   * `finished` event is still on its way, so nothing is concluded from that.
   */
  private async loseCommandsTheAgentDropped(live: LiveHost, request: PollRequest): Promise<void> {
    if (live.session === null || live.session === request.agentSession) return;
    const hostId = live.id;
    const held = new Set(request.activeCommands);
    for (const record of [...this.active.values()]) {
      if (record.hostId !== hostId || record.state === "queued" || held.has(record.id) || !this.acked.has(record.id)) continue;
      await this.transition(record, this.hostNames.get(hostId) ?? "", {
        state: "lost",
        finishedAt: new Date().toISOString(),
        error: "the agent no longer holds this command (it restarted or was killed while the command ran)",
      });
    }
  }

  private async acceptReport(live: LiveHost, session: string, report: Report, now: number): Promise<void> {
    const { uptimeSeconds: _uptime, agentUptimeSeconds: _agentUptime, ...stable } = report;
    const reportHash = await sha256Hex(JSON.stringify(stable));
    if (reportHash === live.reportHash && session === live.reportSession) return;
    const receivedAt = new Date(now).toISOString();
    await upsertReport(this.db, { hostId: live.id, report, reportHash, agentSession: session, receivedAt });
    this.counters.reportsStored++;
    live.reportHash = reportHash;
    live.reportSession = session;
    this.broadcast({ type: "host", host: live.name, online: true, reportedAt: receivedAt });
  }

  /** Queued commands (marked delivered now) and delivered ones not yet acknowledged. */
  private async deliverable(hostId: string, now: number): Promise<CommandDelivery[]> {
    const deliveries: CommandDelivery[] = [];
    for (const record of this.active.values()) {
      if (record.hostId !== hostId) continue;
      if (record.state === "queued" && Date.parse(record.expiresAt) > now) {
        await this.transition(record, this.hostNames.get(hostId) ?? "", {
          state: "delivered",
          deliveredAt: new Date(now).toISOString(),
          deadlineAt: new Date(now + COMMAND_DEADLINE_SECONDS[record.kind] * 1000).toISOString(),
        });
      } else if (!(record.state === "delivered" && !this.acked.has(record.id))) {
        continue;
      }
      deliveries.push(toDelivery(record));
    }
    return deliveries;
  }

  private async appendOutput(record: CommandRecord, hostName: string, chunks: OutputChunk[], at: string): Promise<void> {
    const highWater = this.outputHighWater.get(record.id) ?? -1;
    const fresh = chunks.filter((chunk) => chunk.seq > highWater);
    if (fresh.length === 0 || record.outputTruncated) return;
    const kept: (typeof fresh[number] & { at: string })[] = [];
    let bytes = record.outputBytes;
    for (const chunk of fresh) {
      const size = new TextEncoder().encode(chunk.data).byteLength;
      if (bytes + size > MAX_OUTPUT_BYTES_PER_COMMAND) {
        kept.push({
          seq: chunk.seq,
          stream: "system",
          data: `\n[output truncated: more than ${MAX_OUTPUT_BYTES_PER_COMMAND} bytes; the rest was dropped]\n`,
          at,
        });
        record.outputTruncated = true;
        break;
      }
      bytes += size;
      kept.push({ ...chunk, at });
    }
    record.outputBytes = bytes;
    this.outputHighWater.set(record.id, kept[kept.length - 1]!.seq);
    await appendCommandOutput(this.db, record.id, kept, { outputBytes: bytes, outputTruncated: record.outputTruncated });
    this.broadcast({ type: "output", host: hostName, commandId: record.id, chunks: kept });
  }

  /** The single place a command's state changes. */
  private async transition(record: CommandRecord, hostName: string, patch: CommandPatch): Promise<void> {
    Object.assign(record, patch);
    await updateCommand(this.db, record.id, patch);
    if (record.state !== "queued" && record.state !== "delivered" && record.state !== "running") {
      this.active.delete(record.id);
      this.acked.delete(record.id);
      this.outputHighWater.delete(record.id);
    }
    this.broadcast({ type: "command", command: toCommandView(record, hostName) });
  }
}
