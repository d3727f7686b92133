/**
 * The effects a step may cause outside the object's own storage, as the outbox stores them: each one
 * parsed back with zod, never cast, and keyed so that carrying it out twice (a retry after an eviction)
 * does it once — one pending status post per build, one last-seen write per host, an audit entry and a
 * notification by their own ids.
 */
import { z } from "zod";
import { NotificationEvent, Role } from "../../common/protocol.ts";

export const Effect = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("audit"),
    /** The entry's own id: D1's audit_log keeps one row per key (migrations/0006), so a retry writes none. */
    key: z.string(),
    at: z.string(),
    actor: z.string(),
    action: z.string(),
    target: z.string(),
    details: z.record(z.string(), z.unknown()).nullable(),
    /** What came of the act ("queued", "refused: …"); the coordinator's own acts say "ok" (and effects stored before said nothing). */
    result: z.string().default("ok"),
    /** The role of the person who acted, when a request of theirs caused the entry; null for the coordinator's own acts. */
    role: Role.nullable().default(null),
  }),
  z.object({ type: z.literal("last-seen"), hostId: z.string(), at: z.string() }),
  /** The Notifier ignores an event id it has stored already. */
  z.object({ type: z.literal("notify"), event: NotificationEvent }),
  z.object({ type: z.literal("nudge-automation"), pr: z.number().int() }),
  /** The build's latest state is read when the post is carried out. */
  z.object({ type: z.literal("commit-status"), buildId: z.string() }),
  z.object({
    type: z.literal("revert"),
    rolloutId: z.string(),
    strategy: z.enum(["revert-pr", "revert-commit"]),
    commit: z.string(),
    pr: z.number().int().nullable(),
    /** The person who asked for it; null for the automatic revert after a failed rollout (and for effects stored before). */
    by: z.string().nullable().default(null),
  }),
  /** A builder's built systems, stored as the desired systems of the build's head and its tree (worker/db/desired.ts). */
  z.object({
    type: z.literal("publish-desired"),
    buildId: z.string(),
    commit: z.string(),
    tree: z.string().nullable(),
    builder: z.string(),
    hosts: z.record(z.string(), z.string()),
    at: z.string(),
  }),
  /** A host a rollout verifies, judged again by its latest report (read from D1 when carried out). */
  z.object({ type: z.literal("health-recheck"), hostId: z.string(), hostName: z.string() }),
]);
export type Effect = z.infer<typeof Effect>;
export type LastSeenEffect = Extract<Effect, { type: "last-seen" }>;
export type AuditEffect = Extract<Effect, { type: "audit" }>;

/** The key prefixes of the effects the outbox carries out in batches: last-seen writes, and audit entries (in the order written). */
export const LAST_SEEN_KEY_PREFIX = "last-seen:";
export const AUDIT_KEY_PREFIX = "audit:";

/** The outbox key: effects of one key replace each other while pending. */
export function effectKey(effect: Effect): string {
  switch (effect.type) {
    case "audit":
      return `${AUDIT_KEY_PREFIX}${effect.key}`;
    case "last-seen":
      return `${LAST_SEEN_KEY_PREFIX}${effect.hostId}`;
    case "notify":
      return `notify:${effect.event.id}`;
    case "nudge-automation":
      return `nudge:${effect.pr}`;
    case "commit-status":
      return `status:${effect.buildId}`;
    case "revert":
      return `revert:${effect.rolloutId}`;
    case "health-recheck":
      return `health:${effect.hostId}`;
    case "publish-desired":
      return `desired:${effect.buildId}:${effect.builder}`;
  }
}

/** An audit entry of one of the coordinator's own steps, written after the step (never between a check and its write). */
export function auditEffect(now: number, actor: string, action: string, target: string, details: Record<string, unknown> | null, person?: { result: string; role: Role | null }): AuditEffect {
  return { type: "audit", key: crypto.randomUUID(), at: new Date(now).toISOString(), actor, action, target, details, result: person?.result ?? "ok", role: person?.role ?? null };
}
