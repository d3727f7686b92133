/**
 * Who may do what: the role an Access identity gets from ADMIN_EMAILS /
 * OPERATOR_EMAILS (and ADMIN_GROUPS / OPERATOR_GROUPS, Access group names).
 * Pure: the identity and the settings in, the role out.
 */
import type { Role } from "../common/protocol.ts";

export interface RoleRules {
  adminEmails: readonly string[];
  operatorEmails: readonly string[];
  adminGroups: readonly string[];
  operatorGroups: readonly string[];
}

export interface Identity {
  email: string | null;
  /** Access group names; empty unless groups are configured and Access's identity endpoint named some. */
  groups: readonly string[];
}

/** A comma- or whitespace-separated setting as a list; e-mail patterns compare case-insensitively. */
function list(value: string | undefined, lowercase: boolean): string[] {
  return (value ?? "")
    .split(/[\s,]+/)
    .map((item) => (lowercase ? item.toLowerCase() : item))
    .filter((item) => item !== "");
}

export function readRoleRules(env: {
  ADMIN_EMAILS?: string;
  OPERATOR_EMAILS?: string;
  ADMIN_GROUPS?: string;
  OPERATOR_GROUPS?: string;
}): RoleRules {
  return {
    adminEmails: list(env.ADMIN_EMAILS, true),
    operatorEmails: list(env.OPERATOR_EMAILS, true),
    adminGroups: list(env.ADMIN_GROUPS, false),
    operatorGroups: list(env.OPERATOR_GROUPS, false),
  };
}

export const rulesUseGroups = (rules: RoleRules): boolean => rules.adminGroups.length > 0 || rules.operatorGroups.length > 0;

/** `pattern` is an exact address or `*@domain` (the domain itself, not its subdomains). */
export function emailMatches(email: string, pattern: string): boolean {
  const address = email.toLowerCase();
  if (pattern.startsWith("*@")) return address.endsWith(pattern.slice(1)) && address.indexOf("@") === address.length - pattern.length + 1;
  return address === pattern;
}

/** The highest role any rule grants; everyone else who passed Access is a viewer. */
export function roleFor(identity: Identity, rules: RoleRules): Role {
  const byEmail = (patterns: readonly string[]) => identity.email !== null && patterns.some((p) => emailMatches(identity.email!, p));
  const byGroup = (groups: readonly string[]) => identity.groups.some((g) => groups.includes(g));
  if (byEmail(rules.adminEmails) || byGroup(rules.adminGroups)) return "admin";
  if (byEmail(rules.operatorEmails) || byGroup(rules.operatorGroups)) return "operator";
  return "viewer";
}
