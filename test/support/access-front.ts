/**
 * A local stand-in for Cloudflare Access in front of a control plane: requests
 * to a bypassed path go through untouched; others need the service token's
 * CF-Access-Client-Id/-Secret headers and reach the Worker with a
 * Cf-Access-Jwt-Assertion signed by a local RS256 key (served as the team's
 * JWKS, as test/e2e/access.test.ts does); anything else gets Access's login
 * redirect to the team domain. Nothing follows that redirect: it names a host
 * that is never contacted.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createProxyServer } from "http-proxy-3";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from "jose";

export const ACCESS_TEAM = "https://myteam.cloudflareaccess.com";
export const ACCESS_AUD = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2";
export const SERVICE_TOKEN = { clientId: "doctor.access", clientSecret: "s3cret-of-the-service-token" };

/** The key Access signs with, and a server for its public half (the Worker's ACCESS_JWKS_URL). */
export interface AccessKeys {
  jwksUrl: string;
  sign(subject: string): Promise<string>;
  close(): Promise<void>;
}

export async function startAccessKeys(): Promise<AccessKeys> {
  const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: "key-1", alg: "RS256", use: "sig" };
  const server = createServer((_req, res) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: [jwk] })));
  await listen(server);
  return {
    jwksUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/cdn-cgi/access/certs`,
    sign: (subject) => signAssertion(privateKey, subject),
    close: () => close(server),
  };
}

function signAssertion(key: CryptoKey, subject: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  // A service token's assertion: no e-mail, its client id as the subject (worker/auth.ts: actor service:<id>).
  return new SignJWT({ common_name: subject })
    .setProtectedHeader({ alg: "RS256", kid: "key-1" })
    .setIssuedAt(now - 10)
    .setIssuer(ACCESS_TEAM)
    .setAudience(ACCESS_AUD)
    .setExpirationTime(now + 600)
    .setSubject(subject)
    .sign(key);
}

export interface AccessFront {
  url: string;
  close(): Promise<void>;
}

/** `bypass`: paths, a trailing `*` for a prefix, as in an Access policy. */
export async function startAccessFront(options: { target: string; bypass: readonly string[]; keys: AccessKeys }): Promise<AccessFront> {
  const proxy = createProxyServer({ target: options.target, xfwd: false });
  proxy.on("error", (_error, _req, res) => {
    if ("writeHead" in res && !res.headersSent) res.writeHead(502).end("bad gateway");
  });
  const bypassed = (path: string) =>
    options.bypass.some((pattern) => (pattern.endsWith("*") ? path.startsWith(pattern.slice(0, -1)) : path === pattern));
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0]!;
    // Access strips what a client claims about itself before deciding.
    delete req.headers["cf-access-jwt-assertion"];
    if (bypassed(path)) {
      proxy.web(req, res);
      return;
    }
    const id = req.headers["cf-access-client-id"];
    const secret = req.headers["cf-access-client-secret"];
    if (id === SERVICE_TOKEN.clientId && secret === SERVICE_TOKEN.clientSecret) {
      delete req.headers["cf-access-client-id"];
      delete req.headers["cf-access-client-secret"];
      void options.keys.sign(id).then((assertion) => {
        req.headers["cf-access-jwt-assertion"] = assertion;
        proxy.web(req, res);
      });
      return;
    }
    const host = req.headers.host ?? "fleet.example.com";
    res.writeHead(302, {
      location: `${ACCESS_TEAM}/cdn-cgi/access/login/${host}?kid=${ACCESS_AUD}&redirect_url=${encodeURIComponent(req.url ?? "/")}`,
      "set-cookie": "CF_AppSession=n0nce; Secure; HttpOnly; SameSite=None",
      "content-type": "text/html",
    });
    res.end("<html><body>Redirecting to Cloudflare Access…</body></html>");
  });
  await listen(server);
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      proxy.close();
      await close(server);
    },
  };
}

const listen = (server: Server) => new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const close = (server: Server) =>
  new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
