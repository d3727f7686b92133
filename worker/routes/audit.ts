import { Hono } from "hono";
import { z } from "zod";
import { coordinator } from "../coordinator.ts";
import { listAudit } from "../db/audit.ts";
import type { AppEnv } from "../env.ts";
import { pageLimit, readQuery } from "../validation.ts";

const AuditQuery = z.object({
  limit: pageLimit(100, 500),
  before: z.coerce.number({ error: "before must be an audit entry id" }).int("before must be an audit entry id").positive().optional(),
});

export const auditRoutes = new Hono<AppEnv>().get("/", async (c) => {
  const { limit, before } = readQuery(c, AuditQuery);
  // The coordinator's entries reach D1 through its outbox, a moment after the answer that caused them:
  // carried now, so whoever reads the log right after a 202 sees that entry (docs/architecture.md, "The audit log").
  await coordinator(c.env).carryAudit();
  return c.json({ entries: await listAudit(c.get("db"), { limit, beforeId: before }) });
});
