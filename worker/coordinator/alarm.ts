/**
 * The coordinator's one alarm, arbitrated from its components' clocks (cloudflare/agents' scheduling):
 * it is set for the earliest `nextWakeAt` of any of them, and when it fires the shell hands `wake` to
 * each one whose time has come.
 */
import type { Step } from "./step.ts";

/** A component with a clock. */
export interface Clock {
  nextWakeAt(): number | null;
}

export interface WakingClock extends Clock {
  wake(now: number): Step<undefined>;
}

export class OneAlarm {
  /** When the stored alarm fires, as far as this object set it; null once it fired. */
  private at: number | null = null;
  private readonly storage: DurableObjectStorage;
  private readonly clocks: () => Clock[];

  constructor(storage: DurableObjectStorage, clocks: () => Clock[]) {
    this.storage = storage;
    this.clocks = clocks;
  }

  async load(): Promise<void> {
    this.at = await this.storage.getAlarm();
  }

  /** Whether the alarm is set later than `at` (or not at all): a wake-up at `at` needs it moved. */
  isLaterThan(at: number): boolean {
    return this.at === null || at < this.at;
  }

  fired(): void {
    this.at = null;
  }

  /**
   * Has the alarm ring by `at` (an effect due in a moment), without asking the clocks: a spurious
   * wake-up costs one arbitration, which the alarm makes when it rings, while asking every clock
   * (a query of the active commands, a pass over every host) sat between a step and its commit, in
   * front of the answers the commit releases.
   */
  async ringBy(at: number): Promise<void> {
    if (!this.isLaterThan(at)) return;
    this.at = at;
    await this.storage.setAlarm(at, { allowUnconfirmed: true });
  }

  /** Sets the alarm for the earliest wake-up any clock asks for, unless it is set earlier already. */
  async schedule(): Promise<void> {
    let next = Number.POSITIVE_INFINITY;
    for (const clock of this.clocks()) next = Math.min(next, clock.nextWakeAt() ?? Number.POSITIVE_INFINITY);
    if (!Number.isFinite(next) || !this.isLaterThan(next)) return;
    this.at = next;
    // Unconfirmed: the write itself holds back no answer (output gate), though workerd schedules an alarm moved earlier
    // before the commit that carries it; the constructor reschedules after a restart.
    await this.storage.setAlarm(next, { allowUnconfirmed: true });
  }
}

/** Whether a clock's wake-up has come. */
export const isDue = (clock: Clock, now: number): boolean => {
  const at = clock.nextWakeAt();
  return at !== null && at <= now;
};
