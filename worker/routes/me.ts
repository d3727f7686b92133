import { Hono } from "hono";
import type { MeResponse } from "../../common/protocol.ts";
import type { AppEnv } from "../env.ts";

/** `GET /api/me`: the identity the dashboard acts as and its role, so the UI can offer only what the role may do. */
export const meRoutes = new Hono<AppEnv>().get("/", (c) => c.json({ actor: c.get("actor"), role: c.get("role") } satisfies MeResponse));
