/**
 * The dashboard's live connection: one WebSocket to `/api/events` that
 * reconnects by itself with backoff, pings so proxies keep it open, and
 * reports a reconnect so the store can resynchronise what it missed.
 */
import { DashboardEvent } from "../../common/protocol.ts";

export type ConnectionStatus = "connecting" | "live" | "reconnecting" | "stopped";

/** The part of the browser's WebSocket this uses, so tests can hand in a fake. */
export interface SocketLike {
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: unknown) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
  now(): number;
}

export interface EventStreamOptions {
  url: string;
  onEvent(event: DashboardEvent): void;
  /** After every open; `reconnected` when an earlier connection existed, i.e. events may have been missed. */
  onOpen?(info: { reconnected: boolean }): void;
  onStatus?(status: ConnectionStatus): void;
  createSocket?: (url: string) => SocketLike;
  timers?: Timers;
  /** 0..1, for jitter; tests pass a constant. */
  random?: () => number;
  pingIntervalMs?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

const OPEN = 1;

const browserTimers: Timers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
  setInterval: (fn, ms) => globalThis.setInterval(fn, ms),
  clearInterval: (handle) => globalThis.clearInterval(handle as ReturnType<typeof setInterval>),
  now: () => Date.now(),
};

/** `ws://host/api/events` for the page's own origin. */
export function eventsUrl(location: { protocol: string; host: string }): string {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/events`;
}

/** Exponential backoff with jitter: 1 s, 2 s, 4 s … up to the maximum, each scaled by 0.5–1. */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number, random: number): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.max(0, attempt));
  return Math.round(base * (0.5 + random / 2));
}

export class EventStream {
  private readonly options: EventStreamOptions;
  private readonly timers: Timers;
  private socket: SocketLike | null = null;
  private reconnectTimer: unknown = null;
  private pingTimer: unknown = null;
  private attempts = 0;
  private everOpened = false;
  private running = false;
  private lastHeardAt = 0;
  private statusNow: ConnectionStatus = "stopped";

  constructor(options: EventStreamOptions) {
    this.options = options;
    this.timers = options.timers ?? browserTimers;
  }

  get status(): ConnectionStatus {
    return this.statusNow;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.connect();
  }

  stop(): void {
    this.running = false;
    this.clearTimers();
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
      socket.close(1000, "dashboard closed");
    }
    this.setStatus("stopped");
  }

  private connect(): void {
    this.setStatus(this.everOpened ? "reconnecting" : "connecting");
    const create = this.options.createSocket ?? ((url: string) => new WebSocket(url) as unknown as SocketLike);
    let socket: SocketLike;
    try {
      socket = create(this.options.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      if (this.socket !== socket) return;
      const reconnected = this.everOpened;
      this.everOpened = true;
      this.attempts = 0;
      this.lastHeardAt = this.timers.now();
      this.startPing(socket);
      this.setStatus("live");
      this.options.onOpen?.({ reconnected });
    };
    socket.onmessage = (message) => {
      if (this.socket !== socket) return;
      this.lastHeardAt = this.timers.now();
      if (typeof message.data !== "string") return;
      let json: unknown;
      try {
        json = JSON.parse(message.data);
      } catch {
        return;
      }
      const event = DashboardEvent.safeParse(json);
      // An event this version does not know is skipped; the next resync covers it.
      if (event.success) this.options.onEvent(event.data);
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.stopPing();
      if (this.running) this.scheduleReconnect();
    };
    socket.onerror = () => {
      // A close event always follows; reconnecting happens there.
    };
  }

  private scheduleReconnect(): void {
    this.setStatus(this.everOpened ? "reconnecting" : "connecting");
    const delay = backoffDelay(
      this.attempts,
      this.options.initialBackoffMs ?? 1000,
      this.options.maxBackoffMs ?? 30_000,
      (this.options.random ?? Math.random)(),
    );
    this.attempts += 1;
    this.reconnectTimer = this.timers.setTimeout(() => {
      this.reconnectTimer = null;
      if (this.running) this.connect();
    }, delay);
  }

  private startPing(socket: SocketLike): void {
    this.stopPing();
    const interval = this.options.pingIntervalMs ?? 30_000;
    this.pingTimer = this.timers.setInterval(() => {
      if (this.socket !== socket) return;
      // Nothing heard for two pings (not even a pong): the connection is dead without saying so.
      if (this.timers.now() - this.lastHeardAt > 2 * interval + 5000) {
        this.socket = null;
        this.stopPing();
        socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
        socket.close(4000, "no pong");
        if (this.running) this.scheduleReconnect();
        return;
      }
      if (socket.readyState === OPEN) socket.send("ping");
    }, interval);
  }

  private stopPing(): void {
    if (this.pingTimer !== null) this.timers.clearInterval(this.pingTimer);
    this.pingTimer = null;
  }

  private clearTimers(): void {
    this.stopPing();
    if (this.reconnectTimer !== null) this.timers.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
  }

  private setStatus(status: ConnectionStatus): void {
    if (status === this.statusNow) return;
    this.statusNow = status;
    this.options.onStatus?.(status);
  }
}
