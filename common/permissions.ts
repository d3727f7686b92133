/**
 * What the signed-in role may do, so the dashboard (and the fleet page the
 * Worker writes, worker/fleet-page.ts) disables what the server would refuse
 * and says why. The server decides (ROUTE_ROLES in worker/index.ts); this
 * mirrors it for the controls.
 */
import { hasRole, type MeResponse, type Role } from "./protocol.ts";

/** Queueing commands on hosts (one or many). */
export const COMMAND_ROLE: Role = "operator";
/** Merging update PRs (Merge & Deploy, Merge) and reading the repository from GitHub again. */
export const UPDATE_PR_ROLE: Role = "operator";
/** Adding and removing hosts, rotating their tokens. */
export const HOST_ADMIN_ROLE: Role = "admin";
/** Changing the fleet's settings (PUT /api/settings). */
export const SETTINGS_ROLE: Role = "admin";

/**
 * Why `me` may not do what needs `needed`, in words for a tooltip; null when
 * it may. While the identity is not known yet, nothing is disabled: the
 * server refuses whatever the role does not allow anyway.
 */
export function roleDenial(me: MeResponse | null, needed: Role): string | null {
  if (me === null || hasRole(me.role, needed)) return null;
  return `needs the ${needed} role: ${me.actor} is ${me.role === "admin" || me.role === "operator" ? "an" : "a"} ${me.role}`;
}

/** The fleet page's line under its title for a role that may not do everything; null for an admin or an unknown identity. */
export function roleNote(me: MeResponse | null): string | null {
  if (me === null || me.role === "admin") return null;
  return `${me.actor} · ${me.role}: ${me.role === "viewer" ? "read only" : "runs commands, cannot add or remove hosts"}`;
}
