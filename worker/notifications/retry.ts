/**
 * The delivery retry policy: at most MAX_ATTEMPTS tries, with backoff between them; a refusal
 * that another try cannot change (a 4xx other than 408 and 429) is final at once.
 */

export const MAX_ATTEMPTS = 3;
/** Seconds before the second and the third try. */
export const DEFAULT_RETRY_DELAYS_SECONDS: readonly number[] = [10, 60];
/** A receiver's Retry-After is honoured inside these bounds: sooner than a second is hammering, later than this is forgotten. */
export const RETRY_AFTER_BOUNDS_SECONDS = { min: 1, max: 600 } as const;

/** What one attempt came to: an HTTP status, or no answer at all (a network error, a timeout). */
export type AttemptResult = { status: number; retryAfter: string | null } | { status: null; retryAfter: null };

export type RetryDecision =
  | { state: "delivered" }
  | { state: "failed"; why: "refused" | "attempts-exhausted" }
  | { state: "retrying"; delaySeconds: number };

export const isSuccess = (status: number): boolean => status >= 200 && status < 300;

/** A 4xx says the request itself is wrong (a revoked webhook URL, a bad token) — except a timeout or a rate limit. */
export const isFinalRefusal = (status: number): boolean => status >= 400 && status < 500 && status !== 408 && status !== 429;

/** Retry-After as seconds from `now`: delta-seconds or an HTTP date; null when absent or unreadable. */
export function parseRetryAfter(value: string | null, now: Date): number | null {
  if (value === null) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return null;
  return Math.max(0, Math.ceil((at - now.getTime()) / 1000));
}

/**
 * After attempt number `attempts` (1-based) with `result`: delivered, failed for good, or
 * retried after how many seconds. `delays` are the waits before the 2nd, 3rd… try.
 */
export function decideRetry(
  attempts: number,
  result: AttemptResult,
  now: Date,
  delays: readonly number[] = DEFAULT_RETRY_DELAYS_SECONDS,
): RetryDecision {
  if (result.status !== null && isSuccess(result.status)) return { state: "delivered" };
  if (result.status !== null && isFinalRefusal(result.status)) return { state: "failed", why: "refused" };
  if (attempts >= MAX_ATTEMPTS) return { state: "failed", why: "attempts-exhausted" };
  const backoff = delays[Math.min(attempts - 1, delays.length - 1)] ?? DEFAULT_RETRY_DELAYS_SECONDS[0]!;
  const asked = parseRetryAfter(result.retryAfter, now);
  const delaySeconds =
    asked === null ? backoff : Math.min(RETRY_AFTER_BOUNDS_SECONDS.max, Math.max(RETRY_AFTER_BOUNDS_SECONDS.min, asked));
  return { state: "retrying", delaySeconds };
}

/**
 * `NOTIFICATION_RETRY_SECONDS`: the waits before the 2nd and 3rd try, comma-separated ("10,60");
 * unset or unreadable gives the defaults, since a typo must not stop notifications.
 */
export function retryDelaysFromVar(raw: unknown): readonly number[] {
  if (typeof raw !== "string" || raw.trim() === "") return DEFAULT_RETRY_DELAYS_SECONDS;
  const parts = raw.split(",").map((part) => Number(part.trim()));
  if (parts.length === 0 || parts.some((n) => !Number.isFinite(n) || n < 0 || n > 3600)) {
    console.error(`NOTIFICATION_RETRY_SECONDS: "${raw}" is not a list of seconds (0–3600); using ${DEFAULT_RETRY_DELAYS_SECONDS.join(",")}`);
    return DEFAULT_RETRY_DELAYS_SECONDS;
  }
  return parts;
}
