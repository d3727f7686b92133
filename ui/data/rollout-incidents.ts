/**
 * The Update history's links from a rollout to the hosts that turned red after it, as the history page
 * calls them. Apart from api.ts so that the schema loads with that page, not with the first paint.
 */
import { array, object } from "zod";
import { RolloutIncident } from "../../common/protocol.ts";
import type { DashboardApi } from "./api.ts";

export const RolloutIncidentsResponse = object({ incidents: array(RolloutIncident) });

/** The links of these rollouts (at most 100 ids), by rollout id; a rollout without one has no entry. */
export async function rolloutIncidents(api: DashboardApi, rolloutIds: readonly string[]): Promise<Record<string, RolloutIncident[]>> {
  if (rolloutIds.length === 0) return {};
  const { incidents } = await api.request(RolloutIncidentsResponse, "GET", `/api/rollouts/incidents?ids=${rolloutIds.map(encodeURIComponent).join(",")}`);
  const byRollout: Record<string, RolloutIncident[]> = {};
  for (const incident of incidents) (byRollout[incident.rolloutId] ??= []).push(incident);
  return byRollout;
}
