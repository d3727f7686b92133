import { Hono } from "hono";
import { PROTOCOL_VERSION } from "../../common/protocol.ts";
import { NIXFLEET_VERSION } from "../../common/version.ts";
import { authMode } from "../auth.ts";
import type { AppEnv } from "../env.ts";

export const health = new Hono<AppEnv>().get("/", (c) =>
  c.json({ ok: true, version: NIXFLEET_VERSION, protocol: PROTOCOL_VERSION, auth: authMode(c.env).mode }),
);
