/**
 * GitHub App authentication: an RS256 JWT signed with the App's private key
 * buys an installation access token (valid one hour), which is cached per
 * isolate and renewed shortly before it expires.
 * https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/generating-an-installation-access-token-for-a-github-app
 */
import { Octokit } from "@octokit/core";
import { SignJWT } from "jose";
import { z } from "zod";
import { GitHubApiError } from "./errors.ts";

/** Renew this long before GitHub's `expires_at`, so a token never dies mid-request. */
const RENEW_BEFORE_MS = 5 * 60_000;

const InstallationToken = z.object({ token: z.string().min(1), expires_at: z.string() });

interface CachedToken {
  token: string;
  expiresAt: number;
}

// Per isolate: a Worker isolate serves many requests, so most of them reuse one token.
const tokens = new Map<string, CachedToken>();
const pending = new Map<string, Promise<CachedToken>>();

export interface AppCredentials {
  appId: string;
  privateKey: string;
  installationId: string;
}

export interface AppAuthOptions {
  apiUrl: string;
  fetch?: typeof fetch;
  now?: () => number;
}

/** Forgets every cached installation token (tests; a rotated key). */
export function clearInstallationTokens(): void {
  tokens.clear();
  pending.clear();
}

/** A valid installation token, from the cache or freshly minted. */
export async function installationToken(credentials: AppCredentials, options: AppAuthOptions): Promise<string> {
  const now = options.now ?? Date.now;
  const key = `${options.apiUrl}|${credentials.appId}|${credentials.installationId}`;
  const cached = tokens.get(key);
  if (cached && cached.expiresAt - RENEW_BEFORE_MS > now()) return cached.token;
  let minting = pending.get(key);
  if (!minting) {
    minting = mintInstallationToken(credentials, options, now).finally(() => pending.delete(key));
    pending.set(key, minting);
  }
  const fresh = await minting;
  tokens.set(key, fresh);
  return fresh.token;
}

async function mintInstallationToken(credentials: AppCredentials, options: AppAuthOptions, now: () => number): Promise<CachedToken> {
  const jwt = await appJwt(credentials, now());
  const octokit = new Octokit({ baseUrl: options.apiUrl, request: options.fetch ? { fetch: options.fetch } : {} });
  const what = `minting an installation token for GitHub App ${credentials.appId}`;
  let data: unknown;
  try {
    ({ data } = await octokit.request("POST /app/installations/{installation_id}/access_tokens", {
      installation_id: Number(credentials.installationId),
      headers: { authorization: `Bearer ${jwt}` },
    }));
  } catch (error) {
    // Octokit reports an unreachable host as a 500 without a response: that is "no answer" (0).
    const answered = typeof error === "object" && error !== null && "response" in error && error.response !== undefined;
    const status = answered && "status" in error && typeof error.status === "number" ? error.status : 0;
    throw new GitHubApiError(status, error instanceof Error ? error.message : String(error), what);
  }
  const parsed = InstallationToken.safeParse(data);
  if (!parsed.success) throw new GitHubApiError(200, "the answer has no token and expires_at", what);
  const expiresAt = Date.parse(parsed.data.expires_at);
  return { token: parsed.data.token, expiresAt: Number.isNaN(expiresAt) ? now() + 10 * 60_000 : expiresAt };
}

/** The App's JWT: issued a minute in the past against clock drift, valid nine minutes (GitHub allows ten). */
export async function appJwt(credentials: Pick<AppCredentials, "appId" | "privateKey">, nowMs: number): Promise<string> {
  const key = await importAppPrivateKey(credentials.privateKey);
  const seconds = Math.floor(nowMs / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: "RS256", typ: "JWT" })
    .setIssuer(credentials.appId)
    .setIssuedAt(seconds - 60)
    .setExpirationTime(seconds + 9 * 60)
    .sign(key);
}

/**
 * GitHub hands out the private key as PKCS#1 ("BEGIN RSA PRIVATE KEY"), which
 * WebCrypto cannot import; it is wrapped into PKCS#8 here. Secrets pasted into
 * one line with literal `\n` are accepted too.
 */
export async function importAppPrivateKey(pem: string): Promise<CryptoKey> {
  const text = pem.includes("\\n") ? pem.replaceAll("\\n", "\n") : pem;
  const match = /-----BEGIN (RSA )?PRIVATE KEY-----([\s\S]+?)-----END (RSA )?PRIVATE KEY-----/.exec(text);
  if (!match) throw new Error("GITHUB_APP_PRIVATE_KEY is not a PEM private key (expected -----BEGIN RSA PRIVATE KEY-----)");
  const der = base64ToBytes(match[2]!.replace(/\s+/g, ""));
  const pkcs8 = match[1] ? wrapPkcs1(der) : der;
  return crypto.subtle.importKey("pkcs8", pkcs8, { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, false, ["sign"]);
}

// AlgorithmIdentifier { rsaEncryption (1.2.840.113549.1.1.1), NULL }
const RSA_ALGORITHM = [0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00];

/** PrivateKeyInfo ::= SEQUENCE { INTEGER 0, AlgorithmIdentifier, OCTET STRING pkcs1 } (RFC 5208). */
function wrapPkcs1(pkcs1: Uint8Array): Uint8Array<ArrayBuffer> {
  const octetString = [0x04, ...derLength(pkcs1.length)];
  const bodyLength = 3 + RSA_ALGORITHM.length + octetString.length + pkcs1.length;
  const header = [0x30, ...derLength(bodyLength), 0x02, 0x01, 0x00, ...RSA_ALGORITHM, ...octetString];
  const out = new Uint8Array(header.length + pkcs1.length);
  out.set(header, 0);
  out.set(pkcs1, header.length);
  return out;
}

function derLength(length: number): number[] {
  if (length < 0x80) return [length];
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return [0x80 | bytes.length, ...bytes];
}

export function base64ToBytes(base64: string): Uint8Array<ArrayBuffer> {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
