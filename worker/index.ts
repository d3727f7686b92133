import { Hono } from "hono";
import { requireAdmin, requireSameOrigin } from "./auth.ts";
import { openDatabase } from "./db/client.ts";
import type { AppEnv, WorkerEnv } from "./env.ts";
import { errorBody, handleError } from "./errors.ts";
import { agent } from "./routes/agent.ts";
import { auditRoutes } from "./routes/audit.ts";
import { commandsRoutes } from "./routes/commands.ts";
import { events } from "./routes/events.ts";
import { health } from "./routes/health.ts";
import { refreshRepoState } from "./github/refresh.ts";
import { hostsRoutes } from "./routes/hosts.ts";
import { repoRoutes, updatePrRoutes } from "./routes/repo.ts";
import { rolloutsRoutes } from "./routes/rollouts.ts";
import { webhooks } from "./routes/webhooks.ts";
import { statsRoutes } from "./routes/stats.ts";

export { Coordinator } from "./objects/coordinator.ts";

/** Behind Cloudflare Access. The agent API and the webhook receiver have their own auth. */
const ADMIN_PATHS = ["/api/hosts", "/api/commands", "/api/audit", "/api/events", "/api/stats", "/api/repo", "/api/update-prs", "/api/rollouts"];

export const app = new Hono<AppEnv>();
app.use(async (c, next) => {
  c.set("db", openDatabase(c.env.DB));
  await next();
});
for (const path of ADMIN_PATHS) app.use(`${path}/*`, requireAdmin, requireSameOrigin);
app
  .route("/api/health", health)
  .route("/api/agent", agent)
  .route("/api/hosts", hostsRoutes)
  .route("/api/commands", commandsRoutes)
  .route("/api/audit", auditRoutes)
  .route("/api/events", events)
  .route("/api/stats", statsRoutes)
  .route("/api/repo", repoRoutes)
  .route("/api/update-prs", updatePrRoutes)
  .route("/api/rollouts", rolloutsRoutes)
  .route("/webhooks/github", webhooks)
  .notFound((c) => c.json(errorBody("not_found", `no route for ${c.req.method} ${c.req.path}`), 404))
  .onError(handleError);

export default {
  fetch: app.fetch,
  // The Cron Trigger re-reads the repository in case a webhook was missed.
  scheduled(_controller, env, ctx) {
    ctx.waitUntil(refreshRepoState(env, openDatabase(env.DB)));
  },
} satisfies ExportedHandler<WorkerEnv>;
