import { Hono } from "hono";
import { CommandEvent, CommandId, PollRequest } from "../../common/protocol.ts";
import { coordinator } from "../coordinator.ts";
import type { AppEnv } from "../env.ts";
import { ApiError, errorBody } from "../errors.ts";
import { sha256Hex } from "../ids.ts";
import { parseWith, readJson } from "../validation.ts";

/** Reports can carry test output; nothing an agent sends is larger. */
const MAX_AGENT_BODY_BYTES = 512 * 1024;

async function tokenHashOf(authorization: string | undefined): Promise<string> {
  const token = /^Bearer ([A-Za-z0-9_-]{16,200})$/.exec(authorization ?? "")?.[1];
  if (!token) throw new ApiError(401, "unauthorized", "missing or malformed Authorization: Bearer <agent token>");
  return sha256Hex(token);
}

/** The agent's API: authenticated by the host's token, never by Cloudflare Access. */
export const agent = new Hono<AppEnv>()
  .post("/poll", async (c) => {
    const tokenHash = await tokenHashOf(c.req.header("authorization"));
    const body = await readJson(c, PollRequest, MAX_AGENT_BODY_BYTES);
    const maxWait = Number(c.env.POLL_TIMEOUT_SECONDS) || 90;
    const asked = Number(c.req.query("wait") ?? maxWait);
    const wait = Number.isFinite(asked) ? Math.max(0, Math.min(maxWait, Math.floor(asked))) : maxWait;
    const outcome = await coordinator(c.env).poll(tokenHash, body, wait);
    if (!outcome.ok) return c.json(errorBody(outcome.code, outcome.message), outcome.status);
    return c.json(outcome.response);
  })
  .post("/commands/:id/events", async (c) => {
    const tokenHash = await tokenHashOf(c.req.header("authorization"));
    const id = parseWith(CommandId, c.req.param("id"), "invalid command id");
    const event = await readJson(c, CommandEvent, MAX_AGENT_BODY_BYTES);
    const outcome = await coordinator(c.env).commandEvent(tokenHash, id, event);
    if (!outcome.ok) return c.json(errorBody(outcome.code, outcome.message), outcome.status);
    return c.json({ ok: true, state: outcome.state });
  });
