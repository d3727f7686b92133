/**
 * GitHub App authentication through @octokit/auth-app, the Octokit client's
 * `authStrategy`: it signs the App's JWT, trades it for an installation token
 * and renews the token before GitHub expires it.
 */
import { createPrivateKey } from "node:crypto";
import { createAppAuth, type StrategyOptions } from "@octokit/auth-app";
import { Lru } from "toad-cache";
import type { GitHubAuthConfig } from "./types.ts";

// Per isolate, not per client: a Worker builds a client per request, and an
// isolate serves many requests, so they share one token. The TTL is the one
// auth-app uses for its own cache: a minute less than GitHub's hour.
const tokenCache = new Lru<string>(100, 59 * 60_000);

// The App's installation on a repository, found once per isolate when GITHUB_APP_INSTALLATION_ID is not set.
const installationIds = new Map<string, string>();

/** Forgets every cached installation token and found installation (tests; a rotated key). */
export function clearInstallationTokens(): void {
  tokenCache.clear();
  installationIds.clear();
}

/** The key a found installation is remembered under: the same App on the same repository at the same API. */
export const installationKey = (apiUrl: string, appId: string, repository: string): string => `${apiUrl} ${appId} ${repository.toLowerCase()}`;
export const knownInstallation = (key: string): string | undefined => installationIds.get(key);
export const rememberInstallation = (key: string, id: string): void => void installationIds.set(key, id);

/**
 * GitHub hands out the key as PKCS#1 ("BEGIN RSA PRIVATE KEY"), which
 * WebCrypto cannot import; auth-app converts it with node:crypto on Node only,
 * so the Worker (nodejs_compat) does the same here. Secrets pasted into one
 * line with literal `\n` are accepted too.
 */
function pkcs8Pem(pem: string): string {
  const text = pem.replaceAll("\\n", "\n");
  if (!text.includes("-----BEGIN RSA PRIVATE KEY-----")) return text;
  return createPrivateKey(text).export({ type: "pkcs8", format: "pem" }).toString();
}

/** The Octokit options that authenticate as the App's installation (`installationId`), or as the App itself (null). */
export function appAuthOptions(auth: Extract<GitHubAuthConfig, { kind: "app" }>, installationId: string | null = auth.installationId) {
  const common = installationId === null ? { appId: auth.appId, cache: tokenCache } : { appId: auth.appId, installationId, cache: tokenCache };
  let options: StrategyOptions;
  try {
    options = { ...common, privateKey: pkcs8Pem(auth.privateKey) };
  } catch (error) {
    // A key that does not parse fails the GitHub requests that need it, not the client's construction
    // (which every webhook and page load does).
    const reason = `GITHUB_APP_PRIVATE_KEY is not a usable private key: ${error instanceof Error ? error.message : String(error)}`;
    options = { ...common, createJwt: () => Promise.reject(new Error(reason)) };
  }
  return { authStrategy: createAppAuth, auth: options };
}
