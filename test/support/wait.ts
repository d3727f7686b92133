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
  /** More to say when it times out (the agents' logs, the last answer). */
  details?: () => string;
  /** A probe that throws ends the wait at once: it throws to say that the thing will never come. */
  failFast?: boolean;
}

/**
 * Probes until `probe` returns something truthy and returns that. A probe that
 * throws is probed again (the thing may not be up yet; see `failFast`); its
 * last error is in the timeout's message.
 */
export async function eventually<T>(
  what: string,
  probe: () => T | null | undefined | false | Promise<T | null | undefined | false>,
  { timeoutMs = 30_000, intervalMs = 100, details, failFast = false }: EventuallyOptions = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown = null;
  for (;;) {
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
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}${details ? `\n${details()}` : ""}`, { cause: lastError ?? undefined });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
