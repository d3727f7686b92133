// GitHub's rate limit reaches GET /metrics through the Worker's own wiring (worker/github/context.ts
// hands every GitHub client the coordinator's recorder): a refresh through the real Worker, against
// the local GitHub emulator, whose every answer carries x-ratelimit-* as api.github.com's do.
// The `automation` project runs it; other files of that project use the same emulator at the same
// time, so its counter is read before and after, and the recorded value must lie between.
import { env } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { api } from "./helpers.ts";

const METRIC = "nixfleet_github_rate_limit_remaining";

/** The sample of the rate-limit gauge, undefined while none is exposed. */
async function remainingOnMetrics(): Promise<number | undefined> {
  const res = await exports.default.fetch(new Request("http://localhost/metrics", { headers: { authorization: "Bearer test-metrics-token" } }));
  expect(res.status).toBe(200);
  const family = parsePrometheusTextFormat(await res.text()).find((f) => f.name === METRIC);
  const value = family?.metrics[0]?.value;
  return value === undefined ? undefined : Number(value);
}

/** What the emulator's counter says now (GET /rate_limit counts as a request itself, as on GitHub). */
async function remainingOnGitHub(): Promise<number> {
  const res = await fetch(`${env.GITHUB_API_URL}/rate_limit`, { headers: { authorization: `token ${env.GITHUB_TOKEN}` } });
  expect(res.status).toBe(200);
  return z.object({ rate: z.object({ remaining: z.number() }) }).parse(await res.json()).rate.remaining;
}

describe("GitHub's rate limit on GET /metrics", () => {
  it("is read from the x-ratelimit-remaining of the Worker's own GitHub calls", async () => {
    expect(await remainingOnMetrics()).toBeUndefined();
    const before = await remainingOnGitHub();
    const refreshed = await api("/api/repo/refresh", { method: "POST" });
    expect(refreshed.status, await refreshed.clone().text()).toBe(200);
    const after = await remainingOnGitHub();
    expect(after).toBeLessThan(before - 1);
    // Recorded off the answer's path (waitUntil): wait for it, then it must be one the refresh was told.
    await expect.poll(remainingOnMetrics).toBeDefined();
    const recorded = (await remainingOnMetrics())!;
    expect(recorded).toBeLessThan(before);
    expect(recorded).toBeGreaterThan(after);
  });
});
