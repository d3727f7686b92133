/**
 * Cloudflare Access on the real control plane: the Cf-Access-Jwt-Assertion JWT
 * checked against a locally served JWKS, with a locally generated key pair;
 * roles from ADMIN_EMAILS and from Access groups, read from a locally served
 * get-identity endpoint.
 */
import { createServer, type Server } from "node:http";
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorBody, MeResponse } from "../../common/protocol.ts";
import { startControlPlane, type ControlPlane } from "../support/control-plane.ts";

const TEAM = "https://myteam.cloudflareaccess.com";
const AUD = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2";

let cp: ControlPlane;
let jwksServer: Server;
let signingKey: CryptoKey;
let strangerKey: CryptoKey;

function token(claims: { aud?: string; iss?: string; exp?: number; email?: string }, options: { key?: CryptoKey; kid?: string } = {}) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ email: claims.email ?? "admin@example.com" })
    .setProtectedHeader({ alg: "RS256", kid: options.kid ?? "key-1" })
    .setIssuedAt(now - 10)
    .setIssuer(claims.iss ?? TEAM)
    .setAudience(claims.aud ?? AUD)
    .setExpirationTime(claims.exp ?? now + 600)
    .setSubject("user-1")
    .sign(options.key ?? signingKey);
}

const hosts = (jwt?: string) => fetch(`${cp.url}/api/hosts`, { headers: jwt ? { "cf-access-jwt-assertion": jwt } : {} });

beforeAll(async () => {
  ({ privateKey: signingKey } = await generateKeyPair("RS256", { extractable: true }).then(async (pair) => {
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: "key-1", alg: "RS256", use: "sig" };
    jwksServer = createServer((req, res) => {
      res.setHeader("content-type", "application/json");
      if (req.url === "/cdn-cgi/access/get-identity") {
        // Access reads the identity from the CF_Authorization cookie; this one trusts the JWT the Worker already verified.
        const jwt = /CF_Authorization=([^;]+)/.exec(req.headers.cookie ?? "")?.[1];
        const email = jwt ? decodeJwt(jwt).email : undefined;
        const groups = email === "oncall@example.com" ? [{ id: "g-1", name: "fleet-oncall", email: "oncall-list@example.com" }] : [];
        res.end(JSON.stringify({ email, groups }));
        return;
      }
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, "127.0.0.1", resolve));
    return pair;
  }));
  ({ privateKey: strangerKey } = await generateKeyPair("RS256"));
  const address = jwksServer.address();
  const port = typeof address === "object" && address ? address.port : 0;
  cp = await startControlPlane({
    vars: {
      ACCESS_AUD: AUD,
      ACCESS_TEAM_DOMAIN: TEAM,
      ACCESS_JWKS_URL: `http://127.0.0.1:${port}/cdn-cgi/access/certs`,
      ACCESS_IDENTITY_URL: `http://127.0.0.1:${port}/cdn-cgi/access/get-identity`,
      ADMIN_EMAILS: "alice@example.com",
      OPERATOR_GROUPS: "fleet-oncall",
    },
  });
}, 120_000);

afterAll(async () => {
  await cp?.stop();
  jwksServer?.close();
});

async function expectRefused(res: Response, status: number) {
  expect(res.status).toBe(status);
  return ErrorBody.parse(await res.json()).error;
}

describe("Cloudflare Access", () => {
  it("says the control plane runs behind Access", async () => {
    const health = await (await fetch(`${cp.url}/api/health`)).json();
    expect(health).toMatchObject({ ok: true, auth: "access" });
  });

  it("lets a valid token through and writes its email and role to the audit log", async () => {
    const jwt = await token({ email: "alice@example.com" });
    expect((await hosts(jwt)).status).toBe(200);
    const res = await fetch(`${cp.url}/api/hosts`, {
      method: "POST",
      headers: { "cf-access-jwt-assertion": jwt, origin: cp.url, "content-type": "application/json" },
      body: JSON.stringify({ name: "alice-box", platform: "nixos" }),
    });
    expect(res.status).toBe(201);
    const audit = await (await fetch(`${cp.url}/api/audit`, { headers: { "cf-access-jwt-assertion": jwt } })).json();
    expect(audit.entries[0]).toMatchObject({ actor: "alice@example.com", role: "admin", action: "host.create", target: "alice-box" });
  });

  const me = async (email: string) =>
    MeResponse.parse(await (await fetch(`${cp.url}/api/me`, { headers: { "cf-access-jwt-assertion": await token({ email }) } })).json());
  const addHost = async (email: string, name: string) =>
    fetch(`${cp.url}/api/hosts`, {
      method: "POST",
      headers: { "cf-access-jwt-assertion": await token({ email }), origin: cp.url, "content-type": "application/json" },
      body: JSON.stringify({ name, platform: "nixos" }),
    });

  it("makes anyone else who passed Access a viewer: reads, but may not add a host", async () => {
    expect(await me("bob@example.com")).toEqual({ actor: "bob@example.com", role: "viewer" });
    expect((await hosts(await token({ email: "bob@example.com" }))).status).toBe(200);
    const error = await expectRefused(await addHost("bob@example.com", "bob-box"), 403);
    expect(error).toMatchObject({ code: "role_required" });
    expect(error.message).toContain("needs the admin role");
    const list = await (await hosts(await token({ email: "alice@example.com" }))).text();
    expect(list).not.toContain("bob-box");
  });

  it("makes a member of an operator Access group an operator, read from Access's identity endpoint", async () => {
    expect(await me("oncall@example.com")).toEqual({ actor: "oncall@example.com", role: "operator" });
    expect((await expectRefused(await addHost("oncall@example.com", "oncall-box"), 403)).code).toBe("role_required");
  });

  it("refuses a missing assertion with 401, even from localhost (no fallback to open)", async () => {
    const error = await expectRefused(await hosts(), 401);
    expect(error.message).toContain("Cf-Access-Jwt-Assertion");
  });

  it.each([
    ["expired", () => token({ exp: Math.floor(Date.now() / 1000) - 60 }), "exp"],
    ["wrong audience", () => token({ aud: "someone-elses-app" }), "aud"],
    ["wrong issuer", () => token({ iss: "https://otherteam.cloudflareaccess.com" }), "iss"],
    ["bad signature", () => token({}, { key: strangerKey }), "signature"],
    ["unknown key id", () => token({}, { kid: "key-that-does-not-exist" }), "key"],
  ])("refuses an %s token with 403", async (_what, make, hint) => {
    const error = await expectRefused(await hosts(await make()), 403);
    expect(error.code).toBe("forbidden");
    expect(error.message.toLowerCase()).toContain(hint);
  });

  it("leaves the agent API and the webhook receiver to their own authentication", async () => {
    const poll = await fetch(`${cp.url}/api/agent/poll`, { method: "POST", body: "{}" });
    expect((await expectRefused(poll, 401)).code).toBe("unauthorized");
    const webhook = await fetch(`${cp.url}/webhooks/github`, { method: "POST", body: "{}" });
    expect(webhook.status).not.toBe(403);
  });
});
