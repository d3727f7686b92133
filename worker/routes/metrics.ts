import { Hono, type MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { lastCleanUp } from "../cache/janitor.ts";
import { coordinator } from "../coordinator.ts";
import { lastDeliveryAt } from "../db/github.ts";
import type { AppEnv } from "../env.ts";
import { ApiError, errorBody } from "../errors.ts";
import { loadFleet } from "../fleet.ts";
import { EXPOSITION_CONTENT_TYPE, renderExposition } from "../metrics/exposition.ts";
import { metricFamilies } from "../metrics/families.ts";

/** Prometheus presents METRICS_TOKEN as a bearer token; /metrics is outside Cloudflare Access. */
const requireMetricsToken: MiddlewareHandler<AppEnv> = async (c, next) => {
  const token = c.env.METRICS_TOKEN;
  if (!token) throw new ApiError(503, "metrics_not_configured", "/metrics is off: set the METRICS_TOKEN secret (wrangler secret put METRICS_TOKEN)");
  return bearerAuth<AppEnv>({
    token,
    noAuthenticationHeader: { message: errorBody("unauthorized", "/metrics needs Authorization: Bearer <METRICS_TOKEN>") },
    invalidAuthenticationHeader: { message: errorBody("bad_request", "the Authorization header is not a bearer token") },
    invalidToken: { message: errorBody("unauthorized", "wrong metrics token") },
  })(c, next);
};

/**
 * `GET /metrics`: the Prometheus text format. Every number comes from the
 * coordinator's memory and running totals, the fleet read `/api/hosts` does
 * (O(hosts)), one indexed max() over webhook deliveries and the binary
 * cache's size as its last clean-up counted it (one R2 read, never a listing):
 * a scrape costs the same however long the history and however big the cache.
 */
export const metricsRoutes = new Hono<AppEnv>().get("/", requireMetricsToken, async (c) => {
  const db = c.get("db");
  const [fleet, live, lastWebhookAt, cache] = await Promise.all([loadFleet(c.env, db), coordinator(c.env).metrics(), lastDeliveryAt(db), lastCleanUp(c.env.CACHE)]);
  const body = renderExposition(metricFamilies({ hosts: fleet.hosts, coordinator: live, lastWebhookAt, cache, now: Date.now() }));
  return c.body(body, 200, { "content-type": EXPOSITION_CONTENT_TYPE, "cache-control": "no-store" });
});
