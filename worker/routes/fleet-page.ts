import { Hono } from "hono";
import { hasRole } from "../../common/protocol.ts";
import { requireIdentity } from "../auth.ts";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../errors.ts";
import { loadFleet } from "../fleet.ts";
import { fleetPageHtml } from "../fleet-page.ts";
import { mark } from "../server-timing.ts";
import { healthAnswer } from "./health.ts";

/** Written by scripts/build-ui.mjs beside index.html: the page with its module as a file (why: there). */
export const FLEET_PAGE_TEMPLATE = "/fleet-page.html";

/**
 * GET /: the dashboard's page with the fleet table, the fleet answer, the health answer and the identity's
 * (`GET /api/me`'s) in it (worker/fleet-page.ts), for an identity that may read `GET /api/hosts`. Anyone else,
 * or a build without the template, gets the static page as every other dashboard path does: it asks the API
 * itself, which says what is wrong. The price is
 * that the page waits for the fleet read (D1 and the coordinator) before its first byte
 * (docs/architecture.md#the-dashboards-first-paint).
 */
export const fleetPage = new Hono<AppEnv>().get("/", async (c) => {
  let allowed = false;
  try {
    await requireIdentity(c, async () => {
      allowed = hasRole(c.get("role"), "viewer");
    });
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
  }
  const staticPage = () => c.env.ASSETS.fetch(c.req.raw);
  if (!allowed) return staticPage();
  const [template, fleet] = await Promise.all([c.env.ASSETS.fetch(new URL(FLEET_PAGE_TEMPLATE, c.req.url)), loadFleet(c.env, c.get("db"))]);
  mark(c, "fleet-loaded");
  const health = healthAnswer(c.env);
  const page = template.ok
    ? fleetPageHtml(await template.text(), fleet, JSON.stringify(fleet), Date.now(), {
        json: JSON.stringify(health),
        context: { development: health.auth === "development", me: { actor: c.get("actor"), role: c.get("role") } },
      })
    : null;
  if (page === null) return staticPage();
  const headers = new Headers(template.headers);
  for (const name of ["etag", "content-length", "content-encoding", "last-modified"]) headers.delete(name);
  // The fleet as this identity saw it now: no cache may keep it or hand it to anyone else.
  headers.set("cache-control", "no-store");
  headers.set("content-type", "text/html; charset=utf-8");
  return new Response(page, { status: 200, headers });
});
