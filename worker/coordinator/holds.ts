/** Holds: a host kept out of every rollout and automatic action (a running rollout skips it when its turn comes). */
import type { HostHold } from "../../common/protocol.ts";
import type { HoldStore } from "../db/coordinator/holds.ts";
import type { CoordinatorHost } from "./host.ts";
import { step, type Step } from "./step.ts";

export class Holds {
  private readonly host: CoordinatorHost;
  private readonly store: HoldStore;

  constructor(host: CoordinatorHost, store: HoldStore) {
    this.host = host;
    this.store = store;
  }

  /** Every hold, by host name. */
  all(): Map<string, HostHold> {
    return this.store.holds();
  }

  set(hostName: string, hold: HostHold): Step<HostHold> {
    this.store.setHold(hostName, hold);
    this.host.broadcast({ type: "host", host: hostName });
    return step(hold);
  }

  /** Whether there was a hold to release. */
  release(hostName: string): Step<boolean> {
    const released = this.store.holds().has(hostName);
    this.store.setHold(hostName, null);
    this.host.broadcast({ type: "host", host: hostName });
    return step(released);
  }

  /** A removed host's hold goes with it, without a word to the dashboards (the host's removal says it). */
  forget(hostName: string): Step<undefined> {
    this.store.setHold(hostName, null);
    return step();
  }
}
