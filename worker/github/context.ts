import { waitUntil } from "cloudflare:workers";
import type { WorkerEnv } from "../env.ts";
import { GitHubClient, type GitHubRateLimit } from "./client.ts";
import { readGitHubConfig, type GitHubConfig, type RepositoryName } from "./config.ts";
import { GitHubNotConfiguredError } from "./errors.ts";

/** The GitHub side of a request or an alarm: the configuration and, when credentials exist, a client. */
export interface GitHubContext {
  config: GitHubConfig;
  /** Null when no credentials are configured; `requireClient` says what to set. */
  client: GitHubClient | null;
}

export interface GitHubContextOptions {
  /** Injected by tests; the runtime's fetch otherwise. */
  fetch?: typeof fetch;
}

/**
 * The configuration and a client for it. Every answer's rate limit goes to the coordinator, which
 * keeps the latest for GET /metrics; it is reached through its binding so that this adapter imports
 * no feature. (`_db` is what callers handed the GitHub context before it shrank to the adapter.)
 */
export function githubContext(env: WorkerEnv, _db?: unknown, options: GitHubContextOptions = {}): GitHubContext {
  const config = readGitHubConfig(env);
  const client =
    config.repository !== null && config.auth !== null
      ? new GitHubClient({
          apiUrl: config.apiUrl,
          repository: config.repository,
          auth: config.auth,
          fetch: options.fetch,
          onRateLimit: (rate) => recordRateLimit(env, rate),
        })
      : null;
  return { config, client };
}

/** Recording the rate limit must never hold up or fail the GitHub call. */
function recordRateLimit(env: WorkerEnv, rate: GitHubRateLimit): void {
  waitUntil(
    env.COORDINATOR.getByName("fleet")
      .recordGitHubRateLimit(rate)
      .catch((error: unknown) => console.warn("github: could not record the rate limit", error)),
  );
}

export function requireRepository(ctx: GitHubContext): RepositoryName {
  if (ctx.config.repository === null) {
    throw new GitHubNotConfiguredError(ctx.config.problems.find((p) => p.startsWith("GITHUB_REPOSITORY")) ?? "GITHUB_REPOSITORY is not configured");
  }
  return ctx.config.repository;
}

export function requireClient(ctx: GitHubContext): GitHubClient {
  if (ctx.client === null) {
    requireRepository(ctx);
    throw new GitHubNotConfiguredError(
      ctx.config.problems.find((p) => p.includes("credentials")) ?? "no GitHub API credentials configured",
    );
  }
  return ctx.client;
}
