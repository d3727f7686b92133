import { Hono } from "hono";
import { coordinator } from "../coordinator.ts";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../errors.ts";

/** `GET /api/events`: the dashboard's WebSocket, held by the coordinator. */
export const events = new Hono<AppEnv>().get("/", async (c) => {
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
    throw new ApiError(426, "upgrade_required", "GET /api/events is a WebSocket endpoint");
  }
  const origin = c.req.header("origin");
  if (origin && origin !== new URL(c.req.url).origin) throw new ApiError(403, "cross_origin", "WebSocket from another origin");
  return coordinator(c.env).fetch(c.req.raw);
});
