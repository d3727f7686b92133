import { Hono } from "hono";
import { z } from "zod";
import { writeAudit } from "../db/audit.ts";
import type { AppEnv } from "../env.ts";
import { ApiError, refused } from "../errors.ts";
import { notifier } from "../notifier.ts";
import { pageLimit, parseWith, readQuery } from "../validation.ts";

const ChannelId = z.string().regex(/^ch_[A-Za-z0-9_-]{4,40}$/, "not a channel id (ch_…)");
const ListQuery = z.object({ limit: pageLimit(100, 500) });

/** Notifications: the delivery log and Send test. The Notifier object delivers; channels are part of the settings. */
export const notificationsRoutes = new Hono<AppEnv>()
  .get("/deliveries", async (c) => {
    const { limit } = readQuery(c, ListQuery);
    return c.json({ deliveries: await notifier(c.env).deliveries(limit) });
  })
  .post("/channels/:id/test", async (c) => {
    const id = parseWith(ChannelId, c.req.param("id"), "invalid channel id");
    const actor = c.get("actor");
    const sent = await notifier(c.env).sendTest(id, actor);
    if (!sent.ok) throw refused(sent);
    const { delivery } = sent;
    await writeAudit(c.get("db"), {
      at: new Date().toISOString(),
      actor,
      action: "notification.test",
      target: id,
      details: { delivery: delivery.id, state: delivery.state, status: delivery.lastStatus, error: delivery.lastError },
      result: delivery.state === "failed" ? "failed" : "ok",
    });
    return c.json({ delivery });
  });
