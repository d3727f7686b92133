import { Hono } from "hono";
import { ciTokenInForce, rotateCiToken } from "../db/desired.ts";
import type { AppEnv } from "../env.ts";
import { newCiToken, newId, sha256Hex } from "../ids.ts";

/**
 * The token CI publishes desired systems with (`POST /api/desired`, its only use): whether one is in
 * force, and a new one (the old refused from then on), shown once; only its hash is stored.
 */
export const ciTokenRoutes = new Hono<AppEnv>()
  .get("/", async (c) => c.json({ ciToken: await ciTokenInForce(c.get("db")) }))
  .post("/", async (c) => {
    const token = newCiToken();
    const at = new Date().toISOString();
    await rotateCiToken(c.get("db"), { id: newId("ci"), tokenHash: await sha256Hex(token), at, by: c.get("actor") });
    return c.json({ token, ciToken: { createdAt: at, createdBy: c.get("actor") } }, 201);
  });
