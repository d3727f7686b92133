import { Hono, type Context } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { CommandEvent, CommandId, PollRequest, SwitchConfirmation, type SwitchConfirmed } from "../../common/protocol.ts";
import { coordinator } from "../coordinator.ts";
import type { AppEnv } from "../env.ts";
import { errorBody } from "../errors.ts";
import { sha256Hex } from "../ids.ts";
import { mark } from "../server-timing.ts";
import { jsonBody, parseWith } from "../validation.ts";

/** Reports can carry test output; nothing an agent sends is larger. */
const MAX_AGENT_BODY_BYTES = 512 * 1024;

interface AgentEnv {
  Bindings: AppEnv["Bindings"];
  /** tokenHash: the hash of the bearer token; the coordinator decides whose it is, if anyone's. */
  Variables: AppEnv["Variables"] & { tokenHash: string };
}

const refused = (c: Context) => c.json(errorBody("unauthorized", "missing or malformed Authorization: Bearer <agent token>"), 401);

/**
 * Hono's bearerAuth reads the header; our token format is checked here, and
 * every refusal (a malformed header too, which bearerAuth would answer with
 * 400) is our 401 in the one error shape.
 */
const agentToken = bearerAuth<AgentEnv>({
  verifyToken: async (token, c) => {
    if (!/^[A-Za-z0-9_-]{16,200}$/.test(token)) return false;
    c.set("tokenHash", await sha256Hex(token));
    return true;
  },
  noAuthenticationHeader: { message: refused },
  invalidAuthenticationHeader: { message: refused },
  invalidToken: { message: refused },
});

/** The agent's API: authenticated by the host's token, never by Cloudflare Access. */
export const agent = new Hono<AgentEnv>()
  .use(agentToken)
  .post("/poll", ...jsonBody(PollRequest, { maxBytes: MAX_AGENT_BODY_BYTES }), async (c) => {
    const tokenHash = c.get("tokenHash");
    const body = c.req.valid("json");
    const maxWait = Number(c.env.POLL_TIMEOUT_SECONDS) || 90;
    const asked = Number(c.req.query("wait") ?? maxWait);
    const wait = Number.isFinite(asked) ? Math.max(0, Math.min(maxWait, Math.floor(asked))) : maxWait;
    const outcome = await coordinator(c.env).poll(tokenHash, body, wait);
    mark(c, "answered");
    if (!outcome.ok) return c.json(errorBody(outcome.code, outcome.message), outcome.status);
    return c.json(outcome.response);
  })
  .post("/confirm", ...jsonBody(SwitchConfirmation, { maxBytes: MAX_AGENT_BODY_BYTES }), async (c) => {
    const request = c.req.valid("json");
    const outcome = await coordinator(c.env).confirmSwitch(c.get("tokenHash"), request);
    if (!outcome.ok) return c.json(errorBody(outcome.code, outcome.message), outcome.status);
    const answer: SwitchConfirmed = { confirmed: true, commandId: outcome.commandId, system: request.system };
    return c.json(answer);
  })
  .post("/commands/:id/events", ...jsonBody(CommandEvent, { maxBytes: MAX_AGENT_BODY_BYTES }), async (c) => {
    const tokenHash = c.get("tokenHash");
    const id = parseWith(CommandId, c.req.param("id"), "invalid command id");
    const event = c.req.valid("json");
    mark(c, "routed");
    const outcome = await coordinator(c.env).commandEvent(tokenHash, id, event);
    mark(c, "answered");
    if (!outcome.ok) return c.json(errorBody(outcome.code, outcome.message), outcome.status);
    return c.json({ ok: true, state: outcome.state });
  });
