import type { MiddlewareHandler } from "hono";
import { createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from "jose";
import type { AppEnv, WorkerEnv } from "./env.ts";
import { ApiError } from "./errors.ts";

/** The identity written to the audit log when no Access is configured and the request is local. */
export const DEVELOPMENT_ACTOR = "developer@localhost";

const LOCAL_HOSTNAMES = new Set(["localhost", "127.0.0.1", "[::1]"]);

/**
 * Both the URL and the Host header must name this machine. Locally, Miniflare
 * rebuilds the URL from its MF-Original-URL header, so the URL alone can be
 * made to say localhost while a DNS-rebinding page sends its own Host.
 */
export function isLocalRequest(url: string, hostHeader: string | undefined): boolean {
  if (!LOCAL_HOSTNAMES.has(new URL(url).hostname)) return false;
  if (hostHeader === undefined) return true;
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

/**
 * Dashboard and admin API: Cloudflare Access in production (the
 * Cf-Access-Jwt-Assertion JWT checked against the team's keys, AUD and issuer);
 * a fixed development identity only when Access is not configured AND the
 * request is to localhost. Never falls back to open.
 */
export const requireAdmin: MiddlewareHandler<AppEnv> = async (c, next) => {
  const mode = authMode(c.env);
  if (mode.mode === "development") {
    if (!isLocalRequest(c.req.url, c.req.header("host"))) {
      throw new ApiError(
        403,
        "access_not_configured",
        "Cloudflare Access is not configured (set ACCESS_AUD and ACCESS_TEAM_DOMAIN); only localhost may use development mode",
      );
    }
    c.set("actor", DEVELOPMENT_ACTOR);
  } else {
    const assertion = c.req.header("cf-access-jwt-assertion");
    if (!assertion) throw new ApiError(401, "unauthorized", "missing Cf-Access-Jwt-Assertion: sign in through Cloudflare Access");
    try {
      const { payload } = await jwtVerify(assertion, teamJwks(c.env, mode.teamDomain), {
        audience: mode.aud,
        issuer: mode.teamDomain,
        algorithms: ["RS256"],
      });
      const email = typeof payload.email === "string" ? payload.email : typeof payload.sub === "string" ? `service:${payload.sub}` : null;
      if (!email) throw new Error("the token names no identity");
      c.set("actor", email);
    } catch (err) {
      throw new ApiError(403, "forbidden", `Cloudflare Access token rejected: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  await next();
};

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
