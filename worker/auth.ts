import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import { timingSafeEqual } from "hono/utils/buffer";
import { createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from "jose";
import { z } from "zod";
import { hasRole, type Role } from "../common/protocol.ts";
import type { AppEnv, WorkerEnv } from "./env.ts";
import { ApiError } from "./errors.ts";
import { readRoleRules, roleFor, rulesUseGroups } from "./roles.ts";

/** Set by the local front of `npm start` and the demo (scripts/local-dev-front.mjs) to LOCAL_FRONT_SECRET. */
const LOCAL_FRONT_HEADER = "x-nixfleet-local-front";

/** The identity written to the audit log when no Access is configured and the request is local. */
export const DEVELOPMENT_ACTOR = "developer@localhost";
/** The development identity owns its own machine. */
export const DEVELOPMENT_ROLE: Role = "admin";

const LOCAL_HOSTNAMES = new Set(["localhost", "127.0.0.1", "[::1]"]);

/**
 * Both the URL and the Host header must name this machine. Locally, Miniflare
 * rebuilds the URL from its MF-Original-URL header, so the URL alone can be
 * made to say localhost while a DNS-rebinding page sends its own Host.
 */
export function isLocalRequest(url: string, hostHeader: string | undefined): boolean {
  if (!LOCAL_HOSTNAMES.has(new URL(url).hostname)) return false;
  if (hostHeader === undefined) return true;
  // Two Host headers arrive joined by a comma, which no host name contains: ambiguous, so not local.
  if (hostHeader.includes(",")) return false;
  try {
    return LOCAL_HOSTNAMES.has(new URL(`http://${hostHeader}`).hostname);
  } catch {
    return false;
  }
}

// One JWKS cache per team domain, kept across requests by the isolate (jose caches and refreshes keys).
const jwksByTeam = new Map<string, JWTVerifyGetKey>();

function teamJwks(env: WorkerEnv, teamDomain: string): JWTVerifyGetKey {
  const url = env.ACCESS_JWKS_URL ?? `${teamDomain}/cdn-cgi/access/certs`;
  let jwks = jwksByTeam.get(url);
  if (!jwks) {
    jwks = createRemoteJWKSet(new URL(url));
    jwksByTeam.set(url, jwks);
  }
  return jwks;
}

export type AuthMode = { mode: "access"; teamDomain: string; aud: string } | { mode: "development" };

export function authMode(env: WorkerEnv): AuthMode {
  if (env.ACCESS_AUD && env.ACCESS_TEAM_DOMAIN) {
    return { mode: "access", aud: env.ACCESS_AUD, teamDomain: env.ACCESS_TEAM_DOMAIN.replace(/\/+$/, "") };
  }
  return { mode: "development" };
}

const IdentityGroups = z.looseObject({
  groups: z.array(z.union([z.string(), z.looseObject({ name: z.string() })])).default([]),
});

// Per isolate, by assertion: Access asks the identity provider on every get-identity call.
const groupsByAssertion = new Map<string, { groups: string[]; until: number }>();
const GROUPS_TTL_MS = 5 * 60_000;

/**
 * The identity's Access groups, from the team's get-identity endpoint (the JWT
 * itself carries none). Unreachable or unreadable: no groups, so the e-mail
 * rules alone decide and nobody gains a role by an outage.
 */
async function accessGroups(env: WorkerEnv, teamDomain: string, assertion: string): Promise<string[]> {
  const now = Date.now();
  const cached = groupsByAssertion.get(assertion);
  if (cached && cached.until > now) return cached.groups;
  const url = env.ACCESS_IDENTITY_URL ?? `${teamDomain}/cdn-cgi/access/get-identity`;
  let groups: string[] = [];
  try {
    const response = await fetch(url, { headers: { cookie: `CF_Authorization=${assertion}` } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    groups = IdentityGroups.parse(await response.json()).groups.map((g) => (typeof g === "string" ? g : g.name));
  } catch (error) {
    console.warn("access: could not read the identity's groups; the e-mail rules decide", error);
    return [];
  }
  if (groupsByAssertion.size > 1000) groupsByAssertion.clear();
  groupsByAssertion.set(assertion, { groups, until: now + GROUPS_TTL_MS });
  return groups;
}

/**
 * Dashboard API: Cloudflare Access in production (the Cf-Access-Jwt-Assertion
 * JWT checked against the team's keys, AUD and issuer), its e-mail (and groups)
 * mapped to a role (worker/roles.ts); a fixed development identity, an admin,
 * only when Access is not configured AND the request is to localhost. Never
 * falls back to open.
 */
export const requireIdentity: MiddlewareHandler<AppEnv> = async (c, next) => {
  const mode = authMode(c.env);
  if (mode.mode === "development") {
    if (!isLocalRequest(c.req.url, c.req.header("host"))) {
      throw new ApiError(
        403,
        "access_not_configured",
        "Cloudflare Access is not configured (set ACCESS_AUD and ACCESS_TEAM_DOMAIN); only localhost may use development mode",
      );
    }
    // The port wrangler dev listens on behind the front takes any Host, and a rebinding page can find it.
    const frontSecret = c.env.LOCAL_FRONT_SECRET;
    if (frontSecret && !(await timingSafeEqual(frontSecret, c.req.header(LOCAL_FRONT_HEADER) ?? ""))) {
      throw new ApiError(403, "local_front_required", "this is the internal port of wrangler dev: open the address `npm start` or `npm run demo` printed (http://localhost:8787 unless PORT is set)");
    }
    c.set("actor", DEVELOPMENT_ACTOR);
    c.set("role", DEVELOPMENT_ROLE);
  } else {
    const assertion = c.req.header("cf-access-jwt-assertion");
    if (!assertion) throw new ApiError(401, "unauthorized", "missing Cf-Access-Jwt-Assertion: sign in through Cloudflare Access");
    let actor: string;
    let email: string | null;
    try {
      const { payload } = await jwtVerify(assertion, teamJwks(c.env, mode.teamDomain), {
        audience: mode.aud,
        issuer: mode.teamDomain,
        algorithms: ["RS256"],
      });
      email = typeof payload.email === "string" && payload.email !== "" ? payload.email : null;
      const name = email ?? (typeof payload.sub === "string" ? `service:${payload.sub}` : null);
      if (!name) throw new Error("the token names no identity");
      actor = name;
    } catch (err) {
      throw new ApiError(403, "forbidden", `Cloudflare Access token rejected: ${err instanceof Error ? err.message : String(err)}`);
    }
    const rules = readRoleRules(c.env);
    const groups = email !== null && rulesUseGroups(rules) ? await accessGroups(c.env, mode.teamDomain, assertion) : [];
    // A service token has no e-mail; its `service:<id>` name can be listed in the e-mail settings.
    c.set("actor", actor);
    c.set("role", roleFor({ email: email ?? actor, groups }, rules));
  }
  await next();
};

/** A registered handler, as `METHOD /path`; middleware (`use`, paths ending in `*`) is not one. */
export const routeKey = (route: { method: string; path: string }): string | null =>
  route.method === "ALL" && route.path.endsWith("*") ? null : `${route.method} ${route.path}`;

/**
 * Lets a request through only if the route that will answer it is in `roles`
 * and the identity's role is at least the one named there. A route nobody
 * declared is refused for everyone: forgetting the declaration closes a route,
 * it never opens one. A path no route answers falls through to the 404.
 */
export function requireRouteRole(roles: Readonly<Record<string, Role>>): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const key = handlerKey(c);
    if (key !== null) {
      const needed = roles[key];
      if (needed === undefined) throw new ApiError(403, "route_without_role", `${key} declares no role, so it is refused`);
      const role = c.get("role");
      if (!hasRole(role, needed)) {
        const article = role === "viewer" ? "a" : "an";
        throw new ApiError(403, "role_required", `${c.get("actor")} is ${article} ${role}; ${key} needs the ${needed} role`);
      }
    }
    await next();
  };
}

function handlerKey(c: Context<AppEnv>): string | null {
  for (const route of matchedRoutes(c)) {
    const key = routeKey(route);
    if (key !== null) return key;
  }
  return null;
}

const STATE_CHANGING = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/**
 * CSRF: a browser always sends Origin on a state-changing fetch; it must be
 * ours. A request with neither Origin nor Sec-Fetch-Site is not from a
 * browser page (curl, scripts with an Access service token) and passes.
 */
export const requireSameOrigin: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (STATE_CHANGING.has(c.req.method)) {
    const origin = c.req.header("origin");
    const own = new URL(c.req.url).origin;
    if (origin ? origin !== own : c.req.header("sec-fetch-site") !== undefined && c.req.header("sec-fetch-site") !== "same-origin") {
      throw new ApiError(403, "cross_origin", `state-changing requests must come from ${own}`);
    }
  }
  await next();
};
