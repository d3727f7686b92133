/** The scheduled fallback: re-reads everything a missed webhook would have told us. */
import type { RepoState, UpdatePr } from "../../common/protocol.ts";
import type { Database } from "../db/client.ts";
import { loadFleetTarget, pruneGitHubHistory, recordRepoError } from "../db/github.ts";
import type { WorkerEnv } from "../env.ts";
import { updatePrContext } from "./context.ts";
import { GitHubRateLimitError } from "../github/errors.ts";
import { refuse, type Refusal } from "../outcome.ts";
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
  const ctx = updatePrContext(env, db, { fetch: options.fetch });
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
    const after = await loadFleetTarget(db);
    // What was stored before the failure (a new head, say) is told as a whole refresh's would be.
    if (fingerprint(before) !== fingerprint(after)) await ctx.notifyRepoChanged();
    return { ok: false, reason: retryAt === null ? "github_error" : "rate_limited", message, retryAt, ...after };
  }
}

/**
 * What the dashboards show, without the timestamp every refresh moves. The coordinator's copy of the
 * target (worker/coordinator/fleet-target.ts) is dropped on the same nudge: `updatedAt` alone moves no
 * compartment's state or reason (it bounds which merges are unseen, and those are in `updatePrs`).
 */
function fingerprint(target: { repo: RepoState | null; updatePrs: UpdatePr[] }): string {
  return JSON.stringify({ repo: target.repo ? { ...target.repo, updatedAt: null, source: null } : null, updatePrs: target.updatePrs });
}

/** A failed refresh as the API answers it: 503 without a set-up, 429 with its wait, else 502. */
export function refreshRefusal(failed: Extract<RefreshResult, { ok: false }>, now = Date.now()): Refusal {
  if (failed.reason === "not_configured") return refuse(503, "github_not_configured", failed.message);
  if (failed.reason === "rate_limited" && failed.retryAt !== null) {
    return refuse(429, "github_rate_limited", failed.message, Math.max(1, Math.ceil((Date.parse(failed.retryAt) - now) / 1000)));
  }
  return refuse(502, "github_error", failed.message);
}
