/** Holds: a host kept out of every rollout and automatic action (a running rollout skips it when its turn comes), by host id. */
import type { HostHold } from "../../common/protocol.ts";
import type { Database } from "../db/client.ts";
import type { HoldStore } from "../db/coordinator/holds.ts";
import { listHosts } from "../db/hosts.ts";
import type { CoordinatorHost } from "./host.ts";
import { step, type Step } from "./step.ts";

export class Holds {
  private readonly host: CoordinatorHost;
  private readonly store: HoldStore;

  constructor(host: CoordinatorHost, store: HoldStore) {
    this.host = host;
    this.store = store;
  }

  /** Every hold, by host id. */
  all(): Map<string, HostHold> {
    return new Map([...this.store.holds()].map(([id, { hold }]) => [id, hold]));
  }

  /** Every hold, by host name: what the dashboards show. */
  byName(): Record<string, HostHold> {
    return Object.fromEntries([...this.store.holds().values()].map(({ hostName, hold }) => [hostName, hold]));
  }

  set(target: { id: string; name: string }, hold: HostHold): Step<HostHold> {
    this.store.setHold(target, hold);
    this.host.broadcast({ type: "host", host: target.name });
    return step(hold);
  }

  /** Whether there was a hold to release. */
  release(target: { id: string; name: string }): Step<boolean> {
    const released = this.store.holds().has(target.id);
    this.store.setHold(target, null);
    this.host.broadcast({ type: "host", host: target.name });
    return step(released);
  }

  /** A removed host's hold goes with it, without a word to the dashboards (the host's removal says it). */
  forget(target: { id: string; name: string }): Step<undefined> {
    this.store.setHold(target, null);
    return step();
  }
}

/**
 * Keys the holds an older version stored by host name (schema version 6 set them aside) by host id, once,
 * at the object's start: the names resolve through D1's catalogue. A hold whose name resolves to no host
 * is dropped: its host was removed (a removal deletes its hold, so only a removal that raced the hold under
 * the old keying leaves one), and a host created later under that name is another host, not held.
 */
export async function adoptNamedHolds(store: HoldStore, db: Database): Promise<void> {
  const names = store.namedHolds();
  if (names === null) return;
  let hosts: { id: string; name: string }[] = [];
  try {
    if (names.length > 0) hosts = await listHosts(db);
  } catch (error) {
    // Kept aside for the next start: until then a rollout does not see these holds.
    return console.error("holds: could not read the hosts to key the holds stored by name", error);
  }
  store.keyNamedHolds(new Map(hosts.map((host) => [host.name, host.id])));
}
