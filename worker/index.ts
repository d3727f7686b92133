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
import { hostsRoutes } from "./routes/hosts.ts";
import { statsRoutes } from "./routes/stats.ts";

export { Coordinator } from "./objects/coordinator.ts";

/** Behind Cloudflare Access. The agent API and the webhook receiver have their own auth. */
const ADMIN_PATHS = ["/api/hosts", "/api/commands", "/api/audit", "/api/events", "/api/stats"];

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
  .notFound((c) => c.json(errorBody("not_found", `no route for ${c.req.method} ${c.req.path}`), 404))
  .onError(handleError);

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<WorkerEnv>;
