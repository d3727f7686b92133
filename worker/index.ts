import { Hono } from "hono";
import { every, except } from "hono/combine";
import { contextStorage } from "hono/context-storage";
import { secureHeaders } from "hono/secure-headers";
import { WORKER_MARKER_HEADER, type Role } from "../common/protocol.ts";
import { requireIdentity, requireRouteRole, requireSameOrigin } from "./auth.ts";
import { automation } from "./automation.ts";
import { openDatabase } from "./db/client.ts";
import type { AppEnv, WorkerEnv } from "./env.ts";
import { errorBody, handleError } from "./errors.ts";
import { mark, serverTiming } from "./server-timing.ts";
import { agent } from "./routes/agent.ts";
import { auditRoutes } from "./routes/audit.ts";
import { cacheRoutes } from "./routes/cache.ts";
import { cacheManifestRoutes } from "./routes/cache-manifests.ts";
import { cacheUsageRoutes } from "./routes/cache-usage.ts";
import { runCacheCleanUp } from "./cache/janitor.ts";
import { chunks } from "./routes/chunks.ts";
import { cacheTokenRoutes, ciTokenRoutes } from "./routes/service-tokens.ts";
import { commandsRoutes } from "./routes/commands.ts";
import { desiredRoutes } from "./routes/desired.ts";
import { deploymentRoutes } from "./routes/deployment.ts";
import { events } from "./routes/events.ts";
import { fleetPage } from "./routes/fleet-page.ts";
import { health } from "./routes/health.ts";
import { refreshRepoState } from "./update-prs/refresh.ts";
import { hostsRoutes } from "./routes/hosts.ts";
import { meRoutes } from "./routes/me.ts";
import { metricsRoutes } from "./routes/metrics.ts";
import { notificationsRoutes } from "./routes/notifications.ts";
import { publishHostNotifications } from "./notifications/publish.ts";
import { repoRoutes, updatePrRoutes } from "./routes/repo.ts";
import { rolloutsRoutes } from "./routes/rollouts.ts";
import { settingsRoutes } from "./routes/settings.ts";
import { webhooks } from "./routes/webhooks.ts";
import { statsRoutes } from "./routes/stats.ts";

export { Automation } from "./objects/automation.ts";
export { Coordinator } from "./objects/coordinator.ts";
export { Notifier } from "./objects/notifier.ts";

/**
 * The role each dashboard route needs: the one place a route gets its role.
 * viewer reads everything; operator runs commands and merges update PRs;
 * admin adds and removes hosts and their tokens. A route missing here is
 * refused for everyone (test/worker/roles.test.ts names it).
 */
export const ROUTE_ROLES = {
  "GET /api/me": "viewer",
  "GET /api/deployment": "viewer",
  "GET /api/hosts": "viewer",
  "POST /api/hosts": "admin",
  "GET /api/hosts/:name": "viewer",
  "DELETE /api/hosts/:name": "admin",
  "POST /api/hosts/:name/token": "admin",
  "GET /api/hosts/:name/commands": "viewer",
  "POST /api/hosts/:name/commands": "operator",
  "GET /api/commands/:id": "viewer",
  "GET /api/commands/:id/output": "viewer",
  "GET /api/audit": "viewer",
  "GET /api/events": "viewer",
  "GET /api/stats": "viewer",
  "GET /api/repo": "viewer",
  "POST /api/repo/refresh": "operator",
  "GET /api/update-prs": "viewer",
  "POST /api/update-prs/:number/merge": "operator",
  "POST /api/update-prs/:number/merge-and-deploy": "operator",
  "POST /api/update-prs/:number/build": "operator",
  "POST /api/update-prs/:number/merge-now": "operator",
  "POST /api/update-prs/:number/skip": "operator",
  "PUT /api/hosts/:name/hold": "operator",
  "DELETE /api/hosts/:name/hold": "operator",
  "GET /api/rollouts": "viewer",
  "POST /api/rollouts/plan": "viewer",
  "POST /api/rollouts": "operator",
  "GET /api/rollouts/incidents": "viewer",
  "GET /api/rollouts/:id": "viewer",
  "POST /api/rollouts/:id/cancel": "operator",
  "POST /api/rollouts/:id/revert": "operator",
  "GET /api/settings": "viewer",
  "PUT /api/settings": "admin",
  "GET /api/notifications/deliveries": "viewer",
  "POST /api/notifications/channels/:id/test": "admin",
  "GET /api/ci-token": "viewer",
  "POST /api/ci-token": "admin",
  "GET /api/cache-token": "viewer",
  "POST /api/cache-token": "admin",
  "GET /api/cache-usage": "viewer",
} as const satisfies Record<string, Role>;

/** Under /api, only these answer without Cloudflare Access: they have their own authentication (or need none). */
export const OWN_AUTH_PATHS = ["/api/health", "/api/agent/*", "/api/desired"];

/** The dashboard's API: every route behind Access, CSRF and its declared role. */
const dashboard = new Hono<AppEnv>()
  .route("/me", meRoutes)
  .route("/deployment", deploymentRoutes)
  .route("/hosts", hostsRoutes)
  .route("/commands", commandsRoutes)
  .route("/audit", auditRoutes)
  .route("/events", events)
  .route("/stats", statsRoutes)
  .route("/repo", repoRoutes)
  .route("/update-prs", updatePrRoutes)
  .route("/rollouts", rolloutsRoutes)
  .route("/settings", settingsRoutes)
  .route("/notifications", notificationsRoutes)
  .route("/ci-token", ciTokenRoutes)
  .route("/cache-token", cacheTokenRoutes)
  .route("/cache-usage", cacheUsageRoutes);

export const app = new Hono<AppEnv>();
// First, so its arrival mark precedes every other middleware (a WebSocket's 101 takes no header).
app.use(
  except(
    (c) => c.req.header("upgrade")?.toLowerCase() === "websocket",
    async (c, next) => serverTiming(c, async () => {
      mark(c, "arrived");
      await next();
    }),
  ),
);
// Every answer of the Worker's (the API, webhooks, /metrics, the chunks) is JSON, text or JavaScript, never a page:
// its CSP lets it load nothing and be framed by nobody. The other headers are the static assets' own
// (scripts/build-ui.mjs writes them into dist/ui/_headers; docs/operations.md#security-headers).
// No Strict-Transport-Security: with includeSubDomains it would bind every subdomain of the operator's
// domain to HTTPS; that is the zone's setting (Cloudflare's SSL/TLS edge certificates), not this Worker's.
// A WebSocket handshake is left alone: its 101 comes from the coordinator with headers that cannot be
// changed, and none of these means anything on it.
app.use(
  except(
    // The dashboard's page (GET /, worker/routes/fleet-page.ts) keeps the page's own headers, its CSP among them.
    (c) => c.req.header("upgrade")?.toLowerCase() === "websocket" || c.req.path === "/",
    secureHeaders({
      contentSecurityPolicy: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
      xFrameOptions: "DENY",
      strictTransportSecurity: false,
    }),
  ),
);
// The marker the agent and `nixfleet doctor` tell the Worker's own answers by (common/protocol/errors.ts). Set after
// `next()` so refusals shaped by onError carry it too; a WebSocket's 101 has immutable headers.
app.use(
  except(
    (c) => c.req.header("upgrade")?.toLowerCase() === "websocket",
    async (c, next) => {
      await next();
      c.header(WORKER_MARKER_HEADER, "1");
    },
  ),
);
// The audit log reads the acting role from here (worker/db/audit.ts), whichever code writes the entry.
app.use(contextStorage());
app.use(async (c, next) => {
  c.set("db", openDatabase(c.env.DB));
  await next();
});
// On every /api path, so a route added anywhere under /api is behind Access and needs a declared role.
app.use("/api/*", except(OWN_AUTH_PATHS, every(requireIdentity, requireSameOrigin, requireRouteRole(ROUTE_ROLES))));
app
  .route("/api/health", health)
  .route("/api/agent", agent)
  .route("/api/desired", desiredRoutes)
  .route("/api", dashboard)
  .route("/webhooks/github", webhooks)
  // Outside /api, so outside Access: Prometheus authenticates with METRICS_TOKEN.
  .route("/metrics", metricsRoutes)
  // The dashboard's lazily loaded code, public like the rest of its static assets.
  .route("/chunks", chunks)
  // The binary cache (docs/cache.md): outside /api, so outside Access; hosts read with their own tokens.
  .route("/cache/manifests", cacheManifestRoutes)
  .route("/cache", cacheRoutes)
  // The dashboard's page with the fleet table in it; its other paths are the static assets' single-page fallback.
  .route("/", fleetPage)
  .notFound((c) => c.json(errorBody("not_found", `no route for ${c.req.method} ${c.req.path}`), 404))
  .onError(handleError);

export default {
  fetch: app.fetch,
  // The Cron Trigger re-reads the repository in case a webhook was missed, then lets the automation
  // look at every update PR (a CI result it missed schedules the merge now); and it tells of hosts
  // offline and agents outdated (published every run; the Notifier delivers each fact once).
  scheduled(_controller, env, ctx) {
    const db = openDatabase(env.DB);
    ctx.waitUntil(
      refreshRepoState(env, db).then(() =>
        automation(env)
          .reconsiderAll()
          .catch((error: unknown) => console.error("automation: the scheduled reconsider failed", error)),
      ),
    );
    ctx.waitUntil(publishHostNotifications(env, db));
    // The binary cache's clean-up, a bounded step of its pass each run (docs/cache.md "Keeping it small").
    ctx.waitUntil(runCacheCleanUp(env, db).catch((error: unknown) => console.error("cache clean-up: the run failed", error)));
  },
} satisfies ExportedHandler<WorkerEnv>;
