import { Hono, type Context } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { DesiredPublication } from "../../common/protocol.ts";
import { coordinator } from "../coordinator.ts";
import { savePublication } from "../db/desired.ts";
import { isServiceToken } from "../db/service-tokens.ts";
import { loadMainHead } from "../db/github.ts";
import { listHosts } from "../db/hosts.ts";
import type { AppEnv } from "../env.ts";
import { ApiError, errorBody } from "../errors.ts";
import { sha256Hex } from "../ids.ts";
import { jsonBody } from "../validation.ts";

const refused = (c: Context) => c.json(errorBody("unauthorized", "missing, malformed or unknown Authorization: Bearer <CI token> (an admin creates it in Settings)"), 401);

/** The CI token, and only it: an agent's token or anything else is refused here as the CI token is everywhere else. */
const ciToken = bearerAuth<AppEnv>({
  verifyToken: async (token, c) => /^[A-Za-z0-9_-]{16,200}$/.test(token) && (await isServiceToken(c.get("db"), "ci", await sha256Hex(token))),
  noAuthenticationHeader: { message: refused },
  invalidAuthenticationHeader: { message: refused },
  invalidToken: { message: refused },
});

/**
 * `POST /api/desired`: CI publishes the desired store paths of a commit of main for hosts too small to
 * evaluate their own (docs/api.md). Hosts whose desired source is "ci" take their System from it.
 */
export const desiredRoutes = new Hono<AppEnv>().use(ciToken).post("/", ...jsonBody(DesiredPublication), async (c) => {
  const publication = c.req.valid("json");
  const db = c.get("db");
  const known = new Set((await listHosts(db)).map((host) => host.name));
  const unknown = Object.keys(publication.hosts).filter((name) => !known.has(name));
  if (unknown.length > 0) throw new ApiError(400, "unknown_host", `no host named ${unknown.join(", ")}: publish only the fleet's hosts`);
  // The tree is known when the commit is main's head: a merge commit of the same tree finds the publication too.
  const main = await loadMainHead(db);
  await savePublication(db, { ...publication, tree: main?.commit === publication.commit ? main.tree : null, by: "ci" }, new Date().toISOString());
  try {
    await coordinator(c.env).notify({ type: "repo" });
  } catch (error) {
    // Dashboards read it on their next load; the publication itself is stored.
    console.warn("desired: could not notify dashboards", error);
  }
  return c.json({ commit: publication.commit, hosts: Object.keys(publication.hosts).length });
});
