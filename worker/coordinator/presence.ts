/**
 * Presence: which hosts are online, from their polls. Soft state in memory, rebuilt from the next poll
 * after a restart (at most one poll timeout later). D1's "last seen" is the catalogue's copy for a
 * dashboard loaded while presence is unknown: an outbox effect, written on transitions and at most
 * every LAST_SEEN_FLUSH_MS, never per poll.
 */
import type { HostRef, CoordinatorHost } from "./host.ts";
import { step, type Step } from "./step.ts";

/** A host whose last poll ended longer ago than its poll timeout plus this is offline. */
const OFFLINE_GRACE_MS = 30_000;
/** "Last seen" reaches D1 on transitions and at most this often, not per poll. */
export const LAST_SEEN_FLUSH_MS = 6 * 60 * 60 * 1000;

interface LiveHost {
  id: string;
  name: string;
  lastSeenMs: number;
  lastFlushedMs: number;
  online: boolean;
  pollTimeoutMs: number;
}

export type PresenceView = Record<string, { online: boolean; lastSeenAt: string | null }>;

export class Presence {
  private readonly hosts = new Map<string, LiveHost>();

  private readonly host: CoordinatorHost;

  private readonly waiting: { has(hostId: string): boolean };

  constructor(host: CoordinatorHost, waiting: { has(hostId: string): boolean }) {

    this.host = host;
    this.waiting = waiting;
  }

  /** A poll of the host: seen now; online again after a silence (the `host-online` reaction). */
  seen(ref: HostRef, waitSeconds: number): Step<undefined> {
    const now = this.host.now();
    let live = this.hosts.get(ref.id);
    if (!live) {
      const lastSeen = ref.lastSeenAt ? Date.parse(ref.lastSeenAt) : 0;
      live = { id: ref.id, name: ref.name, lastSeenMs: lastSeen, lastFlushedMs: lastSeen, online: false, pollTimeoutMs: 0 };
      this.hosts.set(ref.id, live);
    }
    live.pollTimeoutMs = waitSeconds * 1000;
    live.lastSeenMs = now;
    if (!live.online) {
      live.online = true;
      this.flushLastSeen(live);
      this.host.broadcast({ type: "host", host: live.name, online: true });
      this.host.react({ type: "host-online", hostId: live.id });
    } else if (now - live.lastFlushedMs > LAST_SEEN_FLUSH_MS) {
      this.flushLastSeen(live);
    }
    return step();
  }

  /** Online by a poll held open or one recent enough; `unknown` for a host no poll has reached since the start. */
  isOnline(hostId: string, now: number, unknown = false): boolean {
    const live = this.hosts.get(hostId);
    return live ? this.online(live, now) : unknown;
  }

  view(now: number): PresenceView {
    const presence: PresenceView = {};
    for (const live of this.hosts.values()) {
      presence[live.id] = { online: this.online(live, now), lastSeenAt: live.lastSeenMs > 0 ? new Date(live.lastSeenMs).toISOString() : null };
    }
    return presence;
  }

  /** When the next online host without a waiting poll goes offline. */
  nextWakeAt(): number | null {
    let next: number | null = null;
    for (const live of this.hosts.values()) {
      if (live.online && !this.waiting.has(live.id) && (next === null || this.offlineAt(live) < next)) next = this.offlineAt(live);
    }
    return next;
  }

  /** Hosts silent past their poll timeout and grace go offline. */
  wake(now: number): Step<undefined> {
    for (const live of this.hosts.values()) {
      if (live.online && !this.online(live, now)) {
        live.online = false;
        this.flushLastSeen(live);
        this.host.broadcast({ type: "host", host: live.name, online: false });
      }
    }
    return step();
  }

  forget(hostId: string): Step<undefined> {
    this.hosts.delete(hostId);
    return step();
  }

  private online(live: LiveHost, now: number): boolean {
    return this.waiting.has(live.id) || now < this.offlineAt(live);
  }

  private offlineAt(live: LiveHost): number {
    return live.lastSeenMs + live.pollTimeoutMs + OFFLINE_GRACE_MS;
  }

  private flushLastSeen(live: LiveHost): void {
    live.lastFlushedMs = live.lastSeenMs;
    this.host.effect({ type: "last-seen", hostId: live.id, at: new Date(live.lastSeenMs).toISOString() });
  }
}
