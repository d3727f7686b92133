/**
 * The lock-age clock: the one compartment that changes with time alone. Per host id, when its lock
 * ages past a threshold (worker/lock-thresholds.ts): memory only, filled from D1 once per object start
 * and kept current from every stored report, so a poll reads nothing for it. The Lock compartment is
 * computed on read: a host event makes each dashboard fetch the host again.
 */
import { nextLockThresholdAt } from "../lock-thresholds.ts";
import type { CoordinatorHost } from "./host.ts";
import { step, type Step } from "./step.ts";

interface LockClockEntry {
  name: string;
  lastModified: Record<string, number>;
  /** The next moment its lock age crosses a threshold, or null when none is ahead. */
  nextAt: number | null;
}

export class LockClock {
  private readonly entries = new Map<string, LockClockEntry>();
  /** The earliest `nextAt`, kept so that scheduling an alarm does not walk every host. */
  private due: number | null = null;
  /** Bumped when a host is removed: a fill read in flight may have seen it, and is read again. */
  epoch = 0;

  private readonly host: CoordinatorHost;

  constructor(host: CoordinatorHost) {
    this.host = host;
  }

  /** The rows of D1's read; entries a stored report set meanwhile are newer and kept. */
  fill(rows: readonly { hostId: string; name: string; lastModified: Record<string, number> }[]): Step<undefined> {
    const now = this.host.now();
    for (const row of rows) if (!this.entries.has(row.hostId)) this.put(row.hostId, row.name, row.lastModified, now);
    this.updateDue();
    return step();
  }

  set(hostId: string, name: string, lastModified: Record<string, number>): Step<undefined> {
    this.put(hostId, name, lastModified, this.host.now());
    this.updateDue();
    return step();
  }

  forget(hostId: string): Step<undefined> {
    this.epoch++;
    this.entries.delete(hostId);
    this.updateDue();
    return step();
  }

  nextWakeAt(): number | null {
    return this.due;
  }

  wake(now: number): Step<undefined> {
    if (this.due === null || this.due > now) return step();
    for (const entry of this.entries.values()) {
      if (entry.nextAt === null || entry.nextAt > now) continue;
      entry.nextAt = nextLockThresholdAt(entry.lastModified, now);
      this.host.broadcast({ type: "host", host: entry.name });
    }
    this.updateDue();
    return step();
  }

  private put(hostId: string, name: string, lastModified: Record<string, number>, now: number): void {
    this.entries.set(hostId, { name, lastModified, nextAt: nextLockThresholdAt(lastModified, now) });
  }

  private updateDue(): void {
    let due: number | null = null;
    for (const entry of this.entries.values()) {
      if (entry.nextAt !== null && (due === null || entry.nextAt < due)) due = entry.nextAt;
    }
    this.due = due;
  }
}
