import { Hono } from "hono";
import type { CacheUsageResponse } from "../../common/protocol.ts";
import { lastCleanUp } from "../cache/janitor.ts";
import type { AppEnv } from "../env.ts";

/** `GET /api/cache-usage`: the binary cache's size as its last clean-up counted it (one R2 read, no listing). */
export const cacheUsageRoutes = new Hono<AppEnv>().get("/", async (c) => c.json({ usage: await lastCleanUp(c.env.CACHE) } satisfies CacheUsageResponse));
