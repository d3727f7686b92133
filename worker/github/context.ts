import { waitUntil } from "cloudflare:workers";
import { automation } from "../automation.ts";
import { coordinator } from "../coordinator.ts";
import type { Database } from "../db/client.ts";
import type { PullRequestRecord } from "../db/github.ts";
import { currentSettings } from "../db/settings.ts";
import { fleetBuildTrigger } from "../fleet-build/rules.ts";
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
  /** A stored update PR opened, moved or closed: its fleet build starts or stops (docs/fleet-build.md). */
  updatePrChanged(pr: PullRequestRecord): Promise<void>;
  /** Lets the automation look at one update PR again (null: every one); never fails the caller. */
  reconsiderAutomation(pr: number | null): Promise<void>;
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
    async updatePrChanged(pr) {
      try {
        // The settings are read only for a PR that may need them.
        if (!pr.isUpdatePr || pr.state === "merged") return;
        const trigger = fleetBuildTrigger(pr, await currentSettings(env, db));
        if (trigger === "cancel") await coordinator(env).cancelFleetBuilds(pr.number, `update PR #${pr.number} closed`);
        if (trigger !== "start") return;
        const started = await coordinator(env).startFleetBuild({ pr: pr.number, headSha: pr.headSha, actor: `update PR #${pr.number}` });
        if (!started.ok) console.warn(`github: no fleet build of #${pr.number}: ${started.message}`);
      } catch (error) {
        // The PR is stored either way; the cron's next look at it starts the build (once per head).
        console.warn("github: could not start or stop the fleet build", error);
      }
    },
    async reconsiderAutomation(pr) {
      try {
        if (pr === null) await automation(env).reconsiderAll();
        else await automation(env).reconsider(pr);
      } catch (error) {
        // The 5-minute cron reconsiders every update PR: a failed nudge is caught up there.
        console.warn("automation: could not reconsider", pr === null ? "the update PRs" : `#${pr}`, error);
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
