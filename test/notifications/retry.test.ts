/** The delivery retry policy, table-driven: at most 3 tries, the backoff, final refusals, Retry-After within bounds. */
import { describe, expect, it } from "vitest";
import { decideRetry, MAX_ATTEMPTS, parseRetryAfter, retryDelaysFromVar, type AttemptResult } from "../../worker/notifications/retry.ts";

const now = new Date("2026-12-01T10:00:00Z");
const status = (code: number, retryAfter: string | null = null): AttemptResult => ({ status: code, retryAfter });
const noAnswer: AttemptResult = { status: null, retryAfter: null };

describe("decideRetry", () => {
  it.each([
    ["a 2xx is delivered", 1, status(200), { state: "delivered" }],
    ["204 too", 3, status(204), { state: "delivered" }],
    ["a 500 on the first try waits 10 s", 1, status(500), { state: "retrying", delaySeconds: 10 }],
    ["a 500 on the second try waits 60 s", 2, status(502), { state: "retrying", delaySeconds: 60 }],
    ["a 500 on the third try is the end", 3, status(500), { state: "failed", why: "attempts-exhausted" }],
    ["no answer is retried", 1, noAnswer, { state: "retrying", delaySeconds: 10 }],
    ["no answer on the third try is the end", 3, noAnswer, { state: "failed", why: "attempts-exhausted" }],
    ["a 404 is final at once", 1, status(404), { state: "failed", why: "refused" }],
    ["a 400 is final at once", 1, status(400), { state: "failed", why: "refused" }],
    ["a 401 is final at once", 2, status(401), { state: "failed", why: "refused" }],
    ["a 408 is retried", 1, status(408), { state: "retrying", delaySeconds: 10 }],
    ["a 429 is retried", 1, status(429), { state: "retrying", delaySeconds: 10 }],
    ["a 3xx (not followed to a 2xx) is retried", 1, status(302), { state: "retrying", delaySeconds: 10 }],
    ["Retry-After in seconds is honoured", 1, status(429, "30"), { state: "retrying", delaySeconds: 30 }],
    ["Retry-After as a date is honoured", 1, status(503, "Tue, 01 Dec 2026 10:02:00 GMT"), { state: "retrying", delaySeconds: 120 }],
    ["Retry-After beyond 10 minutes is cut to 10", 1, status(429, "86400"), { state: "retrying", delaySeconds: 600 }],
    ["Retry-After 0 is at least a second", 1, status(503, "0"), { state: "retrying", delaySeconds: 1 }],
    ["an unreadable Retry-After leaves the backoff", 2, status(503, "soon"), { state: "retrying", delaySeconds: 60 }],
    ["Retry-After does not give a fourth try", 3, status(429, "5"), { state: "failed", why: "attempts-exhausted" }],
  ] as const)("%s", (_name, attempts, result, expected) => {
    expect(decideRetry(attempts, result, now)).toEqual(expected);
  });

  it("never allows more than 3 tries, whatever the answers", () => {
    expect(MAX_ATTEMPTS).toBe(3);
    let attempts = 0;
    for (;;) {
      attempts++;
      const decision = decideRetry(attempts, status(500), now);
      if (decision.state !== "retrying") break;
    }
    expect(attempts).toBe(3);
  });

  it("uses the configured waits, the last one repeated", () => {
    expect(decideRetry(1, status(500), now, [1, 2])).toEqual({ state: "retrying", delaySeconds: 1 });
    expect(decideRetry(2, status(500), now, [1, 2])).toEqual({ state: "retrying", delaySeconds: 2 });
    expect(decideRetry(2, status(500), now, [5])).toEqual({ state: "retrying", delaySeconds: 5 });
  });
});

describe("the retry vars", () => {
  it("reads NOTIFICATION_RETRY_SECONDS, and falls back to 10,60 when unset or unreadable", () => {
    expect(retryDelaysFromVar("1,2")).toEqual([1, 2]);
    expect(retryDelaysFromVar(" 10 , 60 ")).toEqual([10, 60]);
    expect(retryDelaysFromVar(undefined)).toEqual([10, 60]);
    expect(retryDelaysFromVar("")).toEqual([10, 60]);
    expect(retryDelaysFromVar("ten")).toEqual([10, 60]);
    expect(retryDelaysFromVar("-1,5")).toEqual([10, 60]);
  });

  it("reads Retry-After as seconds or a date", () => {
    expect(parseRetryAfter(null, now)).toBeNull();
    expect(parseRetryAfter("12", now)).toBe(12);
    expect(parseRetryAfter("Tue, 01 Dec 2026 09:00:00 GMT", now)).toBe(0);
    expect(parseRetryAfter("later", now)).toBeNull();
  });
});
