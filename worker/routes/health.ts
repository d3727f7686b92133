import { Hono } from "hono";
import { PROTOCOL_VERSION } from "../../common/protocol.ts";
import { NIXFLEET_VERSION } from "../../common/version.ts";
import { authMode } from "../auth.ts";
import type { AppEnv, WorkerEnv } from "../env.ts";

/** What GET /api/health answers; the fleet page carries it too (worker/routes/fleet-page.ts). */
export const healthAnswer = (env: WorkerEnv) => ({ ok: true, version: NIXFLEET_VERSION, protocol: PROTOCOL_VERSION, auth: authMode(env).mode });

export const health = new Hono<AppEnv>().get("/", (c) => c.json(healthAnswer(c.env)));
