import { Hono } from "hono";
import { rotateServiceToken, serviceTokenInForce, type ServiceTokenKind } from "../db/service-tokens.ts";
import type { AppEnv } from "../env.ts";
import { newCacheToken, newCiToken, newId, sha256Hex } from "../ids.ts";

/**
 * A single-purpose token's routes: whether one is in force, and a new one (the old refused from then on),
 * shown once; only its hash is stored. The answer names the token by `field`.
 */
function serviceTokenRoutes(kind: ServiceTokenKind, field: string, mint: () => string, idPrefix: Parameters<typeof newId>[0]) {
  return new Hono<AppEnv>()
    .get("/", async (c) => c.json({ [field]: await serviceTokenInForce(c.get("db"), kind) }))
    .post("/", async (c) => {
      const token = mint();
      const at = new Date().toISOString();
      await rotateServiceToken(c.get("db"), kind, { id: newId(idPrefix), tokenHash: await sha256Hex(token), at, by: c.get("actor") });
      return c.json({ token, [field]: { createdAt: at, createdBy: c.get("actor") } }, 201);
    });
}

/** CI's token, good for publishing desired systems only (`POST /api/desired`). */
export const ciTokenRoutes = serviceTokenRoutes("ci", "ciToken", newCiToken, "ci");
/** The binary cache's upload token (`PUT` under /cache, docs/cache.md). */
export const cacheTokenRoutes = serviceTokenRoutes("cache", "cacheToken", newCacheToken, "ct");
