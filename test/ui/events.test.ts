import { describe, expect, it } from "vitest";
import type { DashboardEvent } from "../../common/protocol.ts";
import { EventStream, backoffDelay, eventsUrl, type ConnectionStatus, type SocketLike, type Timers } from "../../ui/data/events.ts";

class FakeSocket implements SocketLike {
  readyState = 0;
  sent: string[] = [];
  closed = false;
  onopen: SocketLike["onopen"] = null;
  onmessage: SocketLike["onmessage"] = null;
  onclose: SocketLike["onclose"] = null;
  onerror: SocketLike["onerror"] = null;
  send(data: string) {
    this.sent.push(data);
  }
  close() {
    this.closed = true;
    this.readyState = 3;
  }
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  receive(data: unknown) {
    this.onmessage?.({ data: typeof data === "string" ? data : JSON.stringify(data) });
  }
  drop() {
    this.readyState = 3;
    this.onclose?.({});
  }
}

/** Time moves only when the test says so. */
class ManualTimers implements Timers {
  private time = 0;
  private nextId = 1;
  private readonly pending = new Map<number, { at: number; fn: () => void; every: number | null }>();
  now() {
    return this.time;
  }
  setTimeout(fn: () => void, ms: number) {
    const id = this.nextId++;
    this.pending.set(id, { at: this.time + ms, fn, every: null });
    return id;
  }
  setInterval(fn: () => void, ms: number) {
    const id = this.nextId++;
    this.pending.set(id, { at: this.time + ms, fn, every: ms });
    return id;
  }
  clearTimeout(id: unknown) {
    this.pending.delete(id as number);
  }
  clearInterval(id: unknown) {
    this.pending.delete(id as number);
  }
  advance(ms: number) {
    const end = this.time + ms;
    for (;;) {
      const due = [...this.pending.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      const [id, timer] = due;
      this.time = timer.at;
      if (timer.every === null) this.pending.delete(id);
      else timer.at += timer.every;
      timer.fn();
    }
    this.time = end;
  }
}

function setup() {
  const sockets: FakeSocket[] = [];
  const events: DashboardEvent[] = [];
  const opens: boolean[] = [];
  const statuses: ConnectionStatus[] = [];
  const timers = new ManualTimers();
  const stream = new EventStream({
    url: "ws://dashboard/api/events",
    createSocket: () => {
      const socket = new FakeSocket();
      sockets.push(socket);
      return socket;
    },
    timers,
    random: () => 1,
    pingIntervalMs: 30_000,
    onEvent: (event) => events.push(event),
    onOpen: ({ reconnected }) => opens.push(reconnected),
    onStatus: (status) => statuses.push(status),
  });
  return { stream, sockets, events, opens, statuses, timers };
}

describe("EventStream", () => {
  it("passes on parsed dashboard events and skips what it cannot read", () => {
    const { stream, sockets, events } = setup();
    stream.start();
    sockets[0]!.open();
    sockets[0]!.receive({ type: "hello", protocol: 1 });
    sockets[0]!.receive("not json");
    sockets[0]!.receive({ type: "host" }); // no host name
    sockets[0]!.receive({ type: "something-new" });
    sockets[0]!.receive({ type: "host", host: "alpha", online: true });
    expect(events).toEqual([
      { type: "hello", protocol: 1 },
      { type: "host", host: "alpha", online: true },
    ]);
  });

  it("pings every 30 seconds while open", () => {
    const { stream, sockets, timers } = setup();
    stream.start();
    sockets[0]!.open();
    timers.advance(30_000);
    sockets[0]!.receive({ type: "pong" });
    timers.advance(30_000);
    expect(sockets[0]!.sent).toEqual(["ping", "ping"]);
  });

  it("reconnects by itself with growing delays and reports the reconnect so the store can resynchronise", () => {
    const { stream, sockets, opens, statuses, timers } = setup();
    stream.start();
    sockets[0]!.open();
    sockets[0]!.drop();
    expect(statuses.at(-1)).toBe("reconnecting");
    timers.advance(999);
    expect(sockets).toHaveLength(1);
    timers.advance(1);
    expect(sockets).toHaveLength(2);
    sockets[1]!.drop(); // failed attempt: the next waits longer
    timers.advance(1999);
    expect(sockets).toHaveLength(2);
    timers.advance(1);
    sockets[2]!.open();
    expect(opens).toEqual([false, true]);
    expect(statuses.at(-1)).toBe("live");
  });

  it("treats a connection that stays silent through two pings as dead and reconnects", () => {
    const { stream, sockets, timers } = setup();
    stream.start();
    sockets[0]!.open();
    timers.advance(90_000);
    expect(sockets[0]!.closed).toBe(true);
    timers.advance(1000);
    expect(sockets).toHaveLength(2);
  });

  it("stays closed once stopped", () => {
    const { stream, sockets, timers, statuses } = setup();
    stream.start();
    sockets[0]!.open();
    stream.stop();
    expect(sockets[0]!.closed).toBe(true);
    timers.advance(120_000);
    expect(sockets).toHaveLength(1);
    expect(statuses.at(-1)).toBe("stopped");
  });

  it("caps the backoff and spreads it with jitter", () => {
    expect(backoffDelay(0, 1000, 30_000, 1)).toBe(1000);
    expect(backoffDelay(3, 1000, 30_000, 1)).toBe(8000);
    expect(backoffDelay(20, 1000, 30_000, 1)).toBe(30_000);
    expect(backoffDelay(20, 1000, 30_000, 0)).toBe(15_000);
  });

  it("uses wss on https pages", () => {
    expect(eventsUrl({ protocol: "https:", host: "fleet.example.com" })).toBe("wss://fleet.example.com/api/events");
    expect(eventsUrl({ protocol: "http:", host: "127.0.0.1:8787" })).toBe("ws://127.0.0.1:8787/api/events");
  });
});
