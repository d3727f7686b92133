import { LOCK_AGE_DAYS, lockAge } from "../common/compartments.ts";

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * When a host's Lock compartment next changes by the clock alone: the moment
 * its lock age (as `lockAge` counts it) first exceeds 7 days ("consider
 * updating") or 30 days (yellow, "needs update"). Null when no threshold is
 * ahead, or the report has no lastModified to age.
 */
export function nextLockThresholdAt(lastModified: Record<string, number>, now: number): number | null {
  const age = lockAge(lastModified, now);
  if (age === null) return null;
  for (const days of [LOCK_AGE_DAYS.fresh, LOCK_AGE_DAYS.stale]) {
    // `days > threshold` holds from the first moment a whole (threshold + 1)th day has passed.
    const at = age.lastModified * 1000 + (days + 1) * DAY_MS;
    if (at > now) return at;
  }
  return null;
}
