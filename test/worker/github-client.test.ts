/**
 * The GitHub client against a fake GitHub at the network layer: the fetch
 * Octokit uses is handed in, answers like api.github.com, and records what
 * was asked. Rate limits, refused merges, exact file bytes, App auth.
 */
import { jwtVerify } from "jose";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { flakeLockHash } from "../../common/lock-diff.ts";
import { clearInstallationTokens } from "../../worker/github/app-auth.ts";
import { GitHubClient } from "../../worker/github/client.ts";
import type { GitHubAuthConfig } from "../../worker/github/config.ts";
import { GitHubApiError, GitHubMergeRefusedError, GitHubRateLimitError } from "../../worker/github/errors.ts";

type Route = (request: Request) => Response | Promise<Response>;

/** A fake api.github.com: `routes` by "METHOD /path", every request recorded. */
function fakeGitHub(routes: Record<string, Route>) {
  const requests: Request[] = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    requests.push(request.clone());
    const url = new URL(request.url);
    const route = routes[`${request.method} ${url.pathname}`];
    if (!route) return Response.json({ message: "Not Found", documentation_url: "https://docs.github.com/rest" }, { status: 404 });
    return route(request);
  };
  return { fetch, requests };
}

const NOW = Date.parse("2025-06-01T12:00:00Z");
const repository = { owner: "example", name: "fleet", fullName: "example/fleet" };
const token: GitHubAuthConfig = { kind: "token", token: "github_pat_test" };
const client = (fetch: typeof globalThis.fetch, auth: GitHubAuthConfig = token, now = () => NOW) =>
  new GitHubClient({ apiUrl: "https://api.github.test", repository, auth, fetch, now });

const base64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));

describe("GitHub errors", () => {
  it("reports an exhausted rate limit with its reset time, after one request", async () => {
    const reset = Math.floor(NOW / 1000) + 1800;
    const github = fakeGitHub({
      "GET /repos/example/fleet/branches/main": () =>
        Response.json(
          { message: "API rate limit exceeded for user ID 1.", documentation_url: "https://docs.github.com/rest/rate-limit" },
          { status: 403, headers: { "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(reset) } },
        ),
    });
    const error = await client(github.fetch).branchHead("main").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GitHubRateLimitError);
    if (!(error instanceof GitHubRateLimitError)) return;
    expect(error.retryAt.getTime()).toBe(reset * 1000);
    expect(error.retryAfterSeconds(new Date(NOW))).toBe(1800);
    expect(error.message).toContain("API rate limit exceeded");
    expect(github.requests).toHaveLength(1);
  });

  it("honours Retry-After on a secondary rate limit (429)", async () => {
    const github = fakeGitHub({
      "GET /repos/example/fleet/pulls": () =>
        Response.json({ message: "You have exceeded a secondary rate limit." }, { status: 429, headers: { "retry-after": "30" } }),
    });
    const error = await client(github.fetch).openPulls("main").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GitHubRateLimitError);
    if (error instanceof GitHubRateLimitError) expect(error.retryAt.getTime()).toBe(NOW + 30_000);
    expect(github.requests).toHaveLength(1);
  });

  it("keeps a permission 403 a plain API error with GitHub's message", async () => {
    const github = fakeGitHub({
      "GET /repos/example/fleet/branches/main": () =>
        Response.json({ message: "Resource not accessible by personal access token" }, { status: 403, headers: { "x-ratelimit-remaining": "4999" } }),
    });
    const error = await client(github.fetch).branchHead("main").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GitHubApiError);
    expect(error).not.toBeInstanceOf(GitHubRateLimitError);
    if (error instanceof GitHubApiError) {
      expect(error.status).toBe(403);
      expect(error.githubMessage).toBe("Resource not accessible by personal access token");
    }
  });

  it.each([
    [405, "Required status check \"build\" is expected."],
    [409, "Head branch was modified. Review and try the merge again."],
    [422, "Validation Failed"],
  ])("reports a refused merge (%i) with GitHub's reason and does not retry", async (status, message) => {
    const github = fakeGitHub({ "PUT /repos/example/fleet/pulls/12/merge": () => Response.json({ message }, { status }) });
    const error = await client(github.fetch).mergePull(12, { method: "squash", sha: "a".repeat(40) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GitHubMergeRefusedError);
    if (error instanceof GitHubMergeRefusedError) {
      expect(error.status).toBe(status);
      expect(error.githubMessage).toBe(message);
    }
    expect(github.requests).toHaveLength(1);
    expect(await github.requests[0]!.json()).toEqual({ merge_method: "squash", sha: "a".repeat(40) });
  });

  it("turns an unreachable GitHub into an API error with status 0", async () => {
    const error = await client(async () => {
      throw new TypeError("fetch failed");
    })
      .branchHead("main")
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GitHubApiError);
    if (error instanceof GitHubApiError) expect(error.status).toBe(0);
  });
});

describe("file content", () => {
  it("returns flake.lock's exact bytes (BOM and CRLF kept), so the hash is the agent's", async () => {
    const bytes = new TextEncoder().encode('\uFEFF{\r\n  "nodes": {},\r\n  "root": "root",\r\n  "version": 7\r\n}\r\n');
    const github = fakeGitHub({
      "GET /repos/example/fleet/contents/flake.lock": (request) => {
        expect(new URL(request.url).searchParams.get("ref")).toBe("main");
        const wrapped = base64(bytes).replace(/.{1,60}/g, "$&\n");
        return Response.json({ type: "file", sha: "f".repeat(40), size: bytes.length, encoding: "base64", content: wrapped });
      },
    });
    const read = await client(github.fetch).fileAt("flake.lock", "main");
    expect(read).toEqual(bytes);
    expect(await flakeLockHash(read!)).toBe(await flakeLockHash(bytes));
  });

  it("reads a file over 1 MB through the blob API", async () => {
    const bytes = new TextEncoder().encode("x".repeat(2048));
    const github = fakeGitHub({
      "GET /repos/example/fleet/contents/flake.lock": () =>
        Response.json({ type: "file", sha: "b".repeat(40), size: 2_000_000, encoding: "none", content: "" }),
      [`GET /repos/example/fleet/git/blobs/${"b".repeat(40)}`]: () => Response.json({ sha: "b".repeat(40), encoding: "base64", content: base64(bytes) }),
    });
    expect(await client(github.fetch).fileAt("flake.lock", "main")).toEqual(bytes);
  });

  it("answers null for a missing file", async () => {
    expect(await client(fakeGitHub({}).fetch).fileAt("flake.lock", "main")).toBeNull();
  });
});

// ---------------------------------------------------------------------------
// GitHub App

function pem(label: string, der: Uint8Array): string {
  return `-----BEGIN ${label}-----\n${base64(der).replace(/.{1,64}/g, "$&\n")}-----END ${label}-----\n`;
}

/** The RSAPrivateKey inside a PKCS#8 PrivateKeyInfo: what GitHub's "BEGIN RSA PRIVATE KEY" files hold. */
function pkcs1Of(pkcs8: Uint8Array): Uint8Array {
  let at = 0;
  const header = () => {
    const tag = pkcs8[at++]!;
    let length = pkcs8[at++]!;
    if (length & 0x80) {
      const n = length & 0x7f;
      length = 0;
      for (let i = 0; i < n; i++) length = length * 256 + pkcs8[at++]!;
    }
    return { tag, length };
  };
  header(); // SEQUENCE
  const version = header();
  at += version.length;
  const algorithm = header();
  at += algorithm.length;
  const key = header(); // OCTET STRING
  expect(key.tag).toBe(0x04);
  return pkcs8.slice(at, at + key.length);
}

async function appKeys() {
  const pair = await crypto.subtle.generateKey(
    { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
    true,
    ["sign", "verify"],
  );
  if (!("privateKey" in pair)) throw new Error("expected a key pair");
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey) as ArrayBuffer);
  return { publicKey: pair.publicKey, pkcs8Pem: pem("PRIVATE KEY", pkcs8), pkcs1Pem: pem("RSA PRIVATE KEY", pkcs1Of(pkcs8)) };
}

/** A fake GitHub that checks the App's JWT like GitHub does and hands out numbered installation tokens. */
function fakeAppGitHub(publicKey: CryptoKey, now: () => number) {
  const state = { minted: 0, jwts: [] as Awaited<ReturnType<typeof jwtVerify>>[] };
  const github = fakeGitHub({
    "POST /app/installations/777/access_tokens": async (request) => {
      const jwt = request.headers.get("authorization")?.replace(/^bearer /i, "") ?? "";
      state.jwts.push(await jwtVerify(jwt, publicKey, { currentDate: new Date(now()), issuer: "4242" }));
      state.minted++;
      return Response.json({ token: `ghs_token${state.minted}`, expires_at: new Date(now() + 3600_000).toISOString() }, { status: 201 });
    },
    "GET /repos/example/fleet/pulls": (request) => {
      expect(request.headers.get("authorization")).toBe(`token ghs_token${state.minted}`);
      return Response.json([]);
    },
  });
  return { ...github, state };
}

const appAuth = (privateKey: string): GitHubAuthConfig => ({ kind: "app", appId: "4242", privateKey, installationId: "777" });

describe("GitHub App authentication", () => {
  beforeEach(() => {
    clearInstallationTokens();
    vi.useFakeTimers({ toFake: ["Date"], now: NOW });
  });
  afterEach(() => vi.useRealTimers());

  it("signs an RS256 JWT GitHub can verify, from GitHub's PKCS#1 key file", async () => {
    const keys = await appKeys();
    const github = fakeAppGitHub(keys.publicKey, Date.now);
    await client(github.fetch, appAuth(keys.pkcs1Pem)).openPulls("main");
    expect(github.state.jwts).toHaveLength(1);
    const { payload, protectedHeader } = github.state.jwts[0]!;
    expect(protectedHeader.alg).toBe("RS256");
    expect(payload.iss).toBe("4242");
    expect(payload.iat).toBeLessThan(Math.floor(NOW / 1000));
    expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(600);
  });

  it("accepts a PKCS#8 key and a key pasted on one line with \\n escapes", async () => {
    const keys = await appKeys();
    for (const privateKey of [keys.pkcs8Pem, keys.pkcs1Pem.replaceAll("\n", "\\n")]) {
      clearInstallationTokens();
      const github = fakeAppGitHub(keys.publicKey, Date.now);
      await client(github.fetch, appAuth(privateKey)).openPulls("main");
      expect(github.state.minted).toBe(1);
    }
  });

  it("finds the App's installation on the repository itself when no installation id is configured, once per isolate", async () => {
    const keys = await appKeys();
    const github = fakeAppGitHub(keys.publicKey, Date.now);
    let lookups = 0;
    const found = fakeGitHub({
      "GET /repos/example/fleet/installation": async (request) => {
        // Asked as the App: with its JWT, not an installation token.
        const jwt = request.headers.get("authorization")?.replace(/^bearer /i, "") ?? "";
        await jwtVerify(jwt, keys.publicKey, { currentDate: new Date(NOW), issuer: "4242" });
        lookups++;
        return Response.json({ id: 777, app_id: 4242, account: { login: "example" } });
      },
    });
    const fetch = (input: RequestInfo | URL, init?: RequestInit) =>
      new URL(new Request(input).url).pathname.endsWith("/installation") ? found.fetch(input, init) : github.fetch(input, init);
    const withoutId: GitHubAuthConfig = { kind: "app", appId: "4242", privateKey: keys.pkcs1Pem, installationId: null };
    await client(fetch, withoutId).openPulls("main");
    await client(fetch, withoutId).openPulls("main");
    expect(lookups).toBe(1);
    expect(github.state.minted).toBe(1);
  });

  it("trades the JWT for an installation token, shares it between clients and renews it before the hour is up", async () => {
    const keys = await appKeys();
    const github = fakeAppGitHub(keys.publicKey, Date.now);
    // A Worker builds a client per request: the token must outlive the client.
    await client(github.fetch, appAuth(keys.pkcs1Pem)).openPulls("main");
    await client(github.fetch, appAuth(keys.pkcs1Pem)).openPulls("main");
    expect(github.state.minted).toBe(1);
    vi.setSystemTime(NOW + 59 * 60_000 + 1);
    await client(github.fetch, appAuth(keys.pkcs1Pem)).openPulls("main");
    expect(github.state.minted).toBe(2);
  });

  it("reports a refused installation token with GitHub's status", async () => {
    const keys = await appKeys();
    const github = fakeGitHub({
      "POST /app/installations/777/access_tokens": () => Response.json({ message: "A JSON web token could not be decoded" }, { status: 401 }),
    });
    const error = await client(github.fetch, appAuth(keys.pkcs1Pem)).openPulls("main").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GitHubApiError);
    if (error instanceof GitHubApiError) expect(error.status).toBe(401);
  });

  it("reports a key that does not parse when a request needs it, without asking GitHub", async () => {
    const github = fakeGitHub({});
    const garbled = "-----BEGIN RSA PRIVATE KEY-----\nbm90IGEga2V5\n-----END RSA PRIVATE KEY-----\n";
    const error = await client(github.fetch, appAuth(garbled)).openPulls("main").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GitHubApiError);
    if (error instanceof GitHubApiError) expect(error.message).toContain("GITHUB_APP_PRIVATE_KEY is not a usable private key");
    expect(github.requests).toHaveLength(0);
  });
});
