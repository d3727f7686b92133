import { Hono } from "hono";
import { listAudit } from "../db/audit.ts";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../errors.ts";

export const auditRoutes = new Hono<AppEnv>().get("/", async (c) => {
  const limit = Math.max(1, Math.min(500, Number(c.req.query("limit") ?? 100) || 100));
  const beforeRaw = c.req.query("before");
  const before = beforeRaw === undefined ? undefined : Number(beforeRaw);
  if (before !== undefined && !Number.isInteger(before)) throw new ApiError(400, "invalid_request", "before must be an audit entry id");
  return c.json({ entries: await listAudit(c.get("db"), { limit, beforeId: before }) });
});
