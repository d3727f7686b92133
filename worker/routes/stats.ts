import { Hono } from "hono";
import { coordinator } from "../coordinator.ts";
import type { AppEnv } from "../env.ts";

/** `GET /api/stats`: the coordinator's counters (polls, events, alarms), for operators and the cost benchmark. */
export const statsRoutes = new Hono<AppEnv>().get("/", async (c) => c.json(await coordinator(c.env).stats()));
