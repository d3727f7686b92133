/**
 * Roles from the Cloudflare Access identity, enforced on the real Worker app:
 * every route the app registers × every role, the route list taken from the
 * app itself (`app.routes`), so a route added later cannot be left out. The
 * Access JWTs are signed with a key generated here; the team's key set is
 * served at the network layer (the global fetch jose uses), the rest of the
 * outbound fetches pass through.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { Hono } from "hono";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from "jose";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { AuditResponse } from "../../ui/data/schemas.ts";
import { ErrorBody, hasRole, MeResponse, ROLES, type Role } from "../../common/protocol.ts";
import { requireRouteRole, routeKey } from "../../worker/auth.ts";
import type { AppEnv } from "../../worker/env.ts";
import { handleError } from "../../worker/errors.ts";
import { app, OWN_AUTH_PATHS, ROUTE_ROLES } from "../../worker/index.ts";
import { emailMatches, readRoleRules, roleFor } from "../../worker/roles.ts";

const ORIGIN = "https://fleet.example.com";
const TEAM = "https://matrix.cloudflareaccess.test";
const AUD = "matrix-aud";
const accessEnv = {
  ...env,
  ACCESS_AUD: AUD,
  ACCESS_TEAM_DOMAIN: TEAM,
  ADMIN_EMAILS: "admin@example.com",
  OPERATOR_EMAILS: "*@ops.example.com, someone@example.com",
};
const IDENTITY: Record<Role, string> = { viewer: "viewer@example.com", operator: "oncall@ops.example.com", admin: "admin@example.com" };

let signingKey: CryptoKey;

function assertion(email: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ email })
    .setProtectedHeader({ alg: "RS256", kid: "matrix-key" })
    .setIssuedAt(now - 10)
    .setIssuer(TEAM)
    .setAudience(AUD)
    .setExpirationTime(now + 600)
    .setSubject(`user-${email}`)
    .sign(signingKey);
}

beforeAll(async () => {
  const pair = await generateKeyPair("RS256", { extractable: true });
  signingKey = pair.privateKey;
  const jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: "matrix-key", alg: "RS256", use: "sig" }] };
  const realFetch = globalThis.fetch;
  vi.stubGlobal("fetch", (input: RequestInfo | URL, init?: RequestInit) => {
    const url = new Request(input, init).url;
    if (url === `${TEAM}/cdn-cgi/access/certs`) return Promise.resolve(Response.json(jwks));
    return realFetch(input, init);
  });
});
afterAll(() => vi.unstubAllGlobals());

async function send(method: string, path: string, email: string | null, body?: unknown): Promise<Response> {
  const headers = new Headers({ origin: ORIGIN });
  if (email !== null) headers.set("cf-access-jwt-assertion", await assertion(email));
  if (body !== undefined) headers.set("content-type", "application/json");
  const ctx = createExecutionContext();
  const response = await app.fetch(
    new Request(`${ORIGIN}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) }),
    accessEnv,
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return response;
}

/**
 * What each role may do, written out here on purpose: a change to
 * worker/index.ts's ROUTE_ROLES, or a new route, fails this file until the
 * expectation is changed too. viewer reads (and previews a rollout's plan);
 * operator runs commands, syncs, merges update PRs, runs rollouts and holds
 * hosts; admin adds and removes hosts, rotates their tokens and changes the settings.
 */
const EXPECTED: Record<string, Role> = {
  "GET /api/me": "viewer",
  "GET /api/deployment": "viewer",
  "GET /api/hosts": "viewer",
  "GET /api/hosts/:name": "viewer",
  "GET /api/hosts/:name/commands": "viewer",
  "GET /api/commands/:id": "viewer",
  "GET /api/commands/:id/output": "viewer",
  "GET /api/audit": "viewer",
  "GET /api/events": "viewer",
  "GET /api/stats": "viewer",
  "GET /api/repo": "viewer",
  "GET /api/update-prs": "viewer",
  "GET /api/rollouts": "viewer",
  "GET /api/rollouts/incidents": "viewer",
  "GET /api/rollouts/:id": "viewer",
  "POST /api/rollouts/plan": "viewer",
  "GET /api/notifications/deliveries": "viewer",
  "POST /api/hosts/:name/commands": "operator",
  "POST /api/update-prs/:number/merge-and-deploy": "operator",
  "POST /api/update-prs/:number/build": "operator",
  "POST /api/update-prs/:number/merge-now": "operator",
  "POST /api/update-prs/:number/skip": "operator",
  "POST /api/rollouts": "operator",
  "POST /api/rollouts/:id/cancel": "operator",
  "POST /api/rollouts/:id/revert": "operator",
  "PUT /api/hosts/:name/hold": "operator",
  "DELETE /api/hosts/:name/hold": "operator",
  "POST /api/repo/refresh": "operator",
  "POST /api/update-prs/:number/merge": "operator",
  "POST /api/hosts": "admin",
  "DELETE /api/hosts/:name": "admin",
  "POST /api/hosts/:name/token": "admin",
  "GET /api/settings": "viewer",
  "PUT /api/settings": "admin",
  "POST /api/notifications/channels/:id/test": "admin",
  "GET /api/ci-token": "viewer",
  "POST /api/ci-token": "admin",
  "GET /api/cache-token": "viewer",
  "POST /api/cache-token": "admin",
  "GET /api/cache-usage": "viewer",
};

const ownAuth = (path: string) => OWN_AUTH_PATHS.some((p) => (p.endsWith("/*") ? path.startsWith(p.slice(0, -1)) : path === p));

/** Every handler the app registered under /api that goes through Access, as `METHOD /path`. */
const dashboardRoutes = [...new Set(app.routes.map(routeKey).filter((key) => key !== null))]
  .filter((key) => {
    const path = key.split(" ")[1]!;
    return path.startsWith("/api/") && !ownAuth(path);
  })
  .sort();

/** A concrete path for a route pattern; the named things need not exist (a 404 still proves the role check passed). */
const concrete = (path: string) =>
  path.replace(":name", "matrix-host").replace(":id", "cmd_matrixmatrix00").replace(":number", "4242");

describe("the role matrix over every route the app registers", () => {
  it("finds the dashboard's routes in the app, every one declaring the role expected of it", () => {
    expect(dashboardRoutes.length).toBeGreaterThan(10);
    expect(dashboardRoutes).toEqual(Object.keys(EXPECTED).sort());
    expect(ROUTE_ROLES).toEqual(EXPECTED);
  });

  for (const key of dashboardRoutes) {
    const [method, path] = key.split(" ") as [string, string];
    // A route missing from EXPECTED fails the test above; here it is expected to be refused for everyone.
    const needed: Role | undefined = EXPECTED[key];

    it(`${key} (${needed}): refused without an Access assertion`, async () => {
      const res = await send(method, concrete(path), null, method === "GET" ? undefined : {});
      expect(res.status).toBe(401);
    });

    for (const role of ROLES) {
      const allowed = needed !== undefined && hasRole(role, needed);
      it(`${key} (${needed ?? "undeclared"}): ${allowed ? "lets" : "refuses"} a ${role}`, async () => {
        const res = await send(method, concrete(path), IDENTITY[role], method === "GET" ? undefined : {});
        if (allowed) {
          expect([401, 403], `${key} as ${role}: ${res.status} ${await res.clone().text()}`).not.toContain(res.status);
        } else {
          expect(res.status).toBe(403);
          const { error } = ErrorBody.parse(await res.json());
          expect(error.code).toBe(needed === undefined ? "route_without_role" : "role_required");
          if (needed !== undefined) expect(error.message).toContain(`needs the ${needed} role`);
        }
      });
    }
  }
});

describe("roles on the real app", () => {
  it("GET /api/me names the identity and its role", async () => {
    for (const role of ROLES) {
      const res = await send("GET", "/api/me", IDENTITY[role]);
      expect(MeResponse.parse(await res.json())).toEqual({ actor: IDENTITY[role], role });
    }
  });

  it("gives the development identity on localhost the admin role", async () => {
    const ctx = createExecutionContext();
    const res = await app.fetch(new Request("http://localhost/api/me"), env, ctx);
    expect(MeResponse.parse(await res.json())).toEqual({ actor: "developer@localhost", role: "admin" });
  });

  it("writes the actor's role into the audit log with each entry", async () => {
    expect((await send("POST", "/api/hosts", IDENTITY.admin, { name: "role-audit", platform: "nixos" })).status).toBe(201);
    expect((await send("POST", "/api/hosts/role-audit/commands", IDENTITY.operator, { kind: "pull" })).status).toBeLessThan(500);
    const audit = AuditResponse.parse(await (await send("GET", "/api/audit", IDENTITY.viewer)).json());
    const [command, created] = audit.entries;
    expect(created).toMatchObject({ actor: IDENTITY.admin, role: "admin", action: "host.create", target: "role-audit" });
    expect(command).toMatchObject({ actor: IDENTITY.operator, role: "operator", action: "command.pull", target: "role-audit" });
  });

  it("answers an unknown /api path with 404 once the identity is known, and 401 before", async () => {
    expect((await send("GET", "/api/no-such-thing", IDENTITY.viewer)).status).toBe(404);
    expect((await send("GET", "/api/no-such-thing", null)).status).toBe(401);
  });

  it("leaves the agent API and health to their own authentication", async () => {
    expect((await send("GET", "/api/health", null)).status).toBe(200);
    expect(ErrorBody.parse(await (await send("POST", "/api/agent/poll", null, {})).json()).error.code).toBe("unauthorized");
  });
});

describe("a route that declares no role", () => {
  const sketch = new Hono<AppEnv>()
    .use(async (c, next) => {
      c.set("actor", "admin@example.com");
      c.set("role", "admin");
      await next();
    })
    .use("/api/*", requireRouteRole({ "GET /api/declared": "viewer" }))
    .get("/api/declared", (c) => c.json({ ok: true }))
    .get("/api/forgotten", (c) => c.json({ ok: true }))
    .onError(handleError);

  it("is refused even for an admin, while its declared neighbour answers", async () => {
    expect((await sketch.request("/api/declared")).status).toBe(200);
    const res = await sketch.request("/api/forgotten");
    expect(res.status).toBe(403);
    expect(ErrorBody.parse(await res.json()).error).toMatchObject({ code: "route_without_role" });
  });
});

describe("roleFor: ADMIN_EMAILS, OPERATOR_EMAILS and Access groups", () => {
  const rules = readRoleRules({
    ADMIN_EMAILS: "Root@Example.com, *@admins.example.com",
    OPERATOR_EMAILS: "*@example.com",
    ADMIN_GROUPS: "fleet-admins",
    OPERATOR_GROUPS: "fleet-operators,oncall",
  });
  it.each([
    ["an exact admin address, in any case", "root@EXAMPLE.com", [], "admin"],
    ["an admin domain pattern", "alice@admins.example.com", [], "admin"],
    ["an operator domain pattern", "bob@example.com", [], "operator"],
    ["a subdomain the pattern does not name", "carol@sub.example.com", [], "viewer"],
    ["a look-alike domain", "mallory@evilexample.com", [], "viewer"],
    ["anyone else who passed Access", "dave@elsewhere.org", [], "viewer"],
    ["an admin group", "dave@elsewhere.org", ["oncall", "fleet-admins"], "admin"],
    ["an operator group", "dave@elsewhere.org", ["oncall"], "operator"],
    ["the higher of e-mail and group", "bob@example.com", ["fleet-admins"], "admin"],
    ["group names compared exactly", "dave@elsewhere.org", ["Fleet-Admins"], "viewer"],
  ] as const)("%s", (_what, email, groups, role) => {
    expect(roleFor({ email, groups }, rules)).toBe(role);
  });

  it("makes everyone a viewer when nothing is configured", () => {
    expect(roleFor({ email: "root@example.com", groups: ["fleet-admins"] }, readRoleRules({}))).toBe("viewer");
  });

  it("matches `*@domain` on the whole domain only", () => {
    expect(emailMatches("a@example.com", "*@example.com")).toBe(true);
    expect(emailMatches("a@b@example.com", "*@example.com")).toBe(false);
    expect(emailMatches("a@xexample.com", "*@example.com")).toBe(false);
  });
});
