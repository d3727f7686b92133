/** The scheduled fallback: re-reads everything a missed webhook would have told us. */
import type { RepoState, UpdatePr } from "../../common/protocol.ts";
import type { Database } from "../db/client.ts";
import { loadFleetTarget, pruneGitHubHistory, recordRepoError } from "../db/github.ts";
import type { WorkerEnv } from "../env.ts";
import { githubContext } from "./context.ts";
import { GitHubRateLimitError } from "./errors.ts";
import { syncPullRequests } from "./pull-sync.ts";
import { syncRepoHead } from "./repo-state.ts";

/** Deliveries and CI signals are kept this long (GitHub lets you redeliver for a few days). */
const HISTORY_DAYS = 30;

export type RefreshResult =
  | { ok: true; repo: RepoState | null; updatePrs: UpdatePr[] }
  | {
      ok: false;
      reason: "not_configured" | "github_error" | "rate_limited";
      message: string;
      /** For rate_limited: when GitHub accepts requests again. */
      retryAt: string | null;
      repo: RepoState | null;
      updatePrs: UpdatePr[];
    };

/**
 * Re-reads the followed branch's head, its flake.lock (only when the head
 * moved), the open pull requests with their lock diffs, mergeability and CI.
 * Never throws: the Worker's `scheduled()` handler calls it every 5 minutes,
 * and the dashboard's refresh button through `POST /api/repo/refresh`.
 */
export async function refreshRepoState(
  env: WorkerEnv,
  db: Database,
  options: { source?: "schedule" | "api"; fetch?: typeof fetch } = {},
): Promise<RefreshResult> {
  const ctx = githubContext(env, db, { fetch: options.fetch });
  const before = await loadFleetTarget(db);
  const repository = ctx.config.repository;
  if (repository === null || ctx.client === null) {
    const message = ctx.config.problems.filter((p) => !p.startsWith("GITHUB_WEBHOOK_SECRET")).join("; ");
    return { ok: false, reason: "not_configured", message, retryAt: null, ...before };
  }
  try {
    const head = await syncRepoHead(ctx, options.source ?? "schedule");
    await syncPullRequests(ctx);
    const cutoff = new Date(ctx.now().getTime() - HISTORY_DAYS * 86_400_000).toISOString();
    await pruneGitHubHistory(db, cutoff);
    const after = await loadFleetTarget(db);
    if (head.changed || fingerprint(before) !== fingerprint(after)) await ctx.notifyRepoChanged();
    return { ok: true, ...after };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    console.error("github: refresh failed:", message);
    await recordRepoError(db, { repository: repository.fullName, branch: ctx.config.branch }, message, ctx.now().toISOString());
    const retryAt = error instanceof GitHubRateLimitError ? error.retryAt.toISOString() : null;
    return { ok: false, reason: retryAt === null ? "github_error" : "rate_limited", message, retryAt, ...(await loadFleetTarget(db)) };
  }
}

/** What the dashboards show, without the timestamp every refresh moves. */
function fingerprint(target: { repo: RepoState | null; updatePrs: UpdatePr[] }): string {
  return JSON.stringify({ repo: target.repo ? { ...target.repo, updatedAt: null, source: null } : null, updatePrs: target.updatePrs });
}
