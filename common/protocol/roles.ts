import * as z from "zod";

// ---------------------------------------------------------------------------
// Roles (from the Cloudflare Access identity; see worker/roles.ts)

/** Each role may do everything the ones before it may. */
export const ROLES = ["viewer", "operator", "admin"] as const;
export const Role = z.enum(ROLES);
export type Role = z.infer<typeof Role>;

export const hasRole = (role: Role, needed: Role): boolean => ROLES.indexOf(role) >= ROLES.indexOf(needed);

/** `GET /api/me`: who the dashboard acts as, and with which role. */
export const MeResponse = z.object({ actor: z.string(), role: Role });
export type MeResponse = z.infer<typeof MeResponse>;
