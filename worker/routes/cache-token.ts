import { Hono } from "hono";
import { cacheTokenInForce, rotateCacheToken } from "../db/cache-tokens.ts";
import type { AppEnv } from "../env.ts";
import { newCacheToken, newId, sha256Hex } from "../ids.ts";

/**
 * The token that uploads to the binary cache (`PUT` under /cache, docs/cache.md): whether one is in force,
 * and a new one (the old refused from then on), shown once; only its hash is stored.
 */
export const cacheTokenRoutes = new Hono<AppEnv>()
  .get("/", async (c) => c.json({ cacheToken: await cacheTokenInForce(c.get("db")) }))
  .post("/", async (c) => {
    const token = newCacheToken();
    const at = new Date().toISOString();
    await rotateCacheToken(c.get("db"), { id: newId("ct"), tokenHash: await sha256Hex(token), at, by: c.get("actor") });
    return c.json({ token, cacheToken: { createdAt: at, createdBy: c.get("actor") } }, 201);
  });
