/**
 * Waiting on a condition instead of sleeping: a sleep long enough on an idle
 * machine is too short on a loaded one, and wasted time on a fast one. Plain
 * timers only, so that it runs in Node and inside workerd alike.
 */

export interface EventuallyOptions {
  /** How long before giving up; generous, since a run on a shared machine is slow. */
  timeoutMs?: number;
  /** The pause between two probes. */
  intervalMs?: number;
  /** More to say when it times out or gives up (the agents' logs, the last answer). */
  details?: () => string;
  /** A probe that throws ends the wait at once: it throws to say that the thing will never come. */
  failFast?: boolean;
  /**
   * Asked before each probe: a reason the thing can no longer come (the process that would bring it
   * has exited) ends the wait at once with that reason, instead of at the timeout.
   */
  giveUpWhen?: () => string | null | undefined;
}

/** What `eventually` waits on: a probe whose truthy answer ends the wait and is returned. */
export type Probe<T> = () => T | null | undefined | false | Promise<T | null | undefined | false>;

/**
 * Probes until `probe` returns something truthy and returns that. A probe that
 * throws is probed again (the thing may not be up yet; see `failFast`); its
 * last error is in the timeout's message.
 */
export async function eventually<T>(
  what: string,
  probe: Probe<T>,
  { timeoutMs = 30_000, intervalMs = 100, details, failFast = false, giveUpWhen }: EventuallyOptions = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  const more = () => (details ? `\n${details()}` : "");
  let lastError: unknown = null;
  for (;;) {
    const reason = giveUpWhen?.();
    if (reason) throw new Error(`${reason} while waiting for ${what}${more()}`);
    try {
      const value = await probe();
      if (value) return value;
      lastError = null;
    } catch (error) {
      if (failFast) throw error;
      lastError = error;
    }
    if (Date.now() > deadline) {
      const cause = lastError === null ? "" : ` (last error: ${lastError instanceof Error ? lastError.message : String(lastError)})`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}${more()}`, { cause: lastError ?? undefined });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * `eventually` with a file's own defaults (its usual timeout, the logs to show when it fails); a call
 * still overrides any of them.
 */
export function eventuallyWith(defaults: EventuallyOptions): <T>(what: string, probe: Probe<T>, options?: EventuallyOptions) => Promise<T> {
  return (what, probe, options = {}) => eventually(what, probe, { ...defaults, ...options });
}
