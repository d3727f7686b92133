/**
 * Merge (merge only) and Refresh from GitHub, as the dashboard calls them. Apart from api.ts so that
 * their schemas load with the dialog and the button that need them, not with the first paint.
 */
import { array, literal, object, string, type output } from "zod";
import { RepoState, UpdatePr } from "../../common/protocol.ts";
import type { DashboardApi } from "./api.ts";

/** `POST /api/update-prs/:number/merge`: the merge commit; no rollout. */
export const MergeResponse = object({ merged: literal(true), sha: string(), updatePr: UpdatePr });
/** `POST /api/repo/refresh`: the branch and the update PRs as GitHub has them now. */
export const RepoRefreshResponse = object({ repo: RepoState.nullable(), updatePrs: array(UpdatePr) });

/**
 * Merges the update PR on GitHub if its head is still `sha` (the server's merge method) and starts
 * nothing: hosts read "behind main" until it is deployed. Dashboards refetch on the `repo` event the
 * merge sends.
 */
export function mergeUpdatePr(api: DashboardApi, pr: number, request: { sha: string }): Promise<output<typeof MergeResponse>> {
  return api.request(MergeResponse, "POST", `/api/update-prs/${pr}/merge`, request);
}

/** Re-reads the branch, its flake.lock and the open PRs from GitHub now (429 with its wait, 503 without a set-up, 502 on GitHub's errors). */
export function refreshRepo(api: DashboardApi): Promise<output<typeof RepoRefreshResponse>> {
  return api.request(RepoRefreshResponse, "POST", "/api/repo/refresh", {});
}
