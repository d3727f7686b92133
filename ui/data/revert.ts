/**
 * Reverting a rollout's commit (POST /api/rollouts/:id/revert), loaded with the revert dialog rather than in
 * the first paint. The rollout's new state also arrives as a rollout event, which updates the store.
 */
import type { RevertStrategy, RolloutView } from "../../common/protocol.ts";
import { RolloutResponse } from "./schemas.ts";
import type { FleetStore } from "./store.ts";

/** The reverted rollout as the answer left it: its `revert` says what GitHub did, or why it did not. */
export async function revertRollout(store: FleetStore, id: string, strategy: RevertStrategy): Promise<RolloutView> {
  return (await store.api.request(RolloutResponse, "POST", `/api/rollouts/${encodeURIComponent(id)}/revert`, { strategy })).rollout;
}
