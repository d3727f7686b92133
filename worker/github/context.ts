import { waitUntil } from "cloudflare:workers";
import { coordinator } from "../coordinator.ts";
import type { Database } from "../db/client.ts";
import type { WorkerEnv } from "../env.ts";
import { GitHubClient } from "./client.ts";
import { readGitHubConfig, type GitHubConfig, type RepositoryName } from "./config.ts";
import { GitHubNotConfiguredError } from "./errors.ts";

/** What every piece of GitHub processing needs, built once per request or cron run. */
export interface GitHubContext {
  config: GitHubConfig;
  db: Database;
  /** Null when no credentials are configured; `requireClient` says what to set. */
  client: GitHubClient | null;
  /** Tells every dashboard the repository state or the update PRs changed. */
  notifyRepoChanged(): Promise<void>;
  now(): Date;
}

export function githubContext(env: WorkerEnv, db: Database, options: { fetch?: typeof fetch } = {}): GitHubContext {
  const config = readGitHubConfig(env);
  const client =
    config.repository !== null && config.auth !== null
      ? new GitHubClient({
          apiUrl: config.apiUrl,
          repository: config.repository,
          auth: config.auth,
          fetch: options.fetch,
          // The coordinator keeps the latest for GET /metrics; recording it must never hold up or fail the GitHub call.
          onRateLimit: (rate) =>
            waitUntil(coordinator(env).recordGitHubRateLimit(rate).catch((error: unknown) => console.warn("github: could not record the rate limit", error))),
        })
      : null;
  return {
    config,
    db,
    client,
    async notifyRepoChanged() {
      try {
        await coordinator(env).notify({ type: "repo" });
      } catch (error) {
        // Dashboards refetch on their next load; a failed nudge must not fail the change itself.
        console.warn("github: could not notify dashboards", error);
      }
    },
    now: () => new Date(),
  };
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
