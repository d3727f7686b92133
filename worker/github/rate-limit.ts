/** GitHub's rate limit and failures as its answers report them: read from the headers, never guessed. */
export type HeaderValues = Record<string, string | number | undefined>;

/** GitHub's x-ratelimit-* headers of one answer. */
export interface GitHubRateLimit {
  remaining: number;
  limit: number | null;
  /** When the window resets (x-ratelimit-reset), ISO. */
  resetAt: string | null;
  /** When the answer came. */
  at: string;
}

/** The rate limit an answer reports, or null when it carries none (the emulator, a network error). */
export function readRateLimit(headers: HeaderValues, now: number): GitHubRateLimit | null {
  const remaining = Number(headers["x-ratelimit-remaining"]);
  if (headers["x-ratelimit-remaining"] === undefined || !Number.isFinite(remaining)) return null;
  const limit = Number(headers["x-ratelimit-limit"]);
  const reset = Number(headers["x-ratelimit-reset"]);
  return {
    remaining,
    limit: headers["x-ratelimit-limit"] !== undefined && Number.isFinite(limit) ? limit : null,
    resetAt: headers["x-ratelimit-reset"] !== undefined && Number.isFinite(reset) ? new Date(reset * 1000).toISOString() : null,
    at: new Date(now).toISOString(),
  };
}

/**
 * GitHub's answer inside an Octokit error; null when there was none (Octokit
 * reports an unreachable host as a 500 without a response).
 */
export function httpFailure(error: unknown): { status: number; headers: HeaderValues; data: unknown } | null {
  if (typeof error !== "object" || error === null || !("status" in error) || typeof error.status !== "number") return null;
  const response = "response" in error && typeof error.response === "object" && error.response !== null ? error.response : null;
  if (response === null) return null;
  const headers: HeaderValues = {};
  if ("headers" in response && typeof response.headers === "object" && response.headers !== null) {
    for (const [name, value] of Object.entries(response.headers)) {
      if (typeof value === "string" || typeof value === "number") headers[name.toLowerCase()] = value;
    }
  }
  return { status: error.status, headers, data: "data" in response ? response.data : undefined };
}

/** When GitHub says to try again: Retry-After, else an exhausted rate limit's reset time. */
export function rateLimitRetryAt(status: number, headers: HeaderValues, message: string, now: number): Date | null {
  if (status !== 403 && status !== 429) return null;
  const retryAfter = headers["retry-after"];
  if (retryAfter !== undefined) {
    const seconds = Number(retryAfter);
    if (Number.isFinite(seconds)) return new Date(now + Math.max(0, seconds) * 1000);
    const date = Date.parse(String(retryAfter));
    if (!Number.isNaN(date)) return new Date(date);
  }
  const reset = Number(headers["x-ratelimit-reset"]);
  if (String(headers["x-ratelimit-remaining"]) === "0" && Number.isFinite(reset)) return new Date(reset * 1000);
  // A secondary rate limit without headers: GitHub asks for at least a minute.
  if (status === 429 || /rate limit/i.test(message)) return new Date(now + 60_000);
  return null;
}
