import { sqliteTable, text, integer, index, primaryKey, uniqueIndex } from "drizzle-orm/sqlite-core";
import { ROLES } from "../../common/protocol.ts";

// Mirrors migrations/*.sql, which are the source of truth for the database.

export const hosts = sqliteTable("hosts", {
  id: text("id").primaryKey(),
  name: text("name").notNull().unique(),
  platform: text("platform", { enum: ["nixos", "darwin", "home-manager"] }).notNull(),
  flakeAttr: text("flake_attr").notNull(),
  createdAt: text("created_at").notNull(),
  lastSeenAt: text("last_seen_at"),
});

export const agentTokens = sqliteTable("agent_tokens", {
  id: text("id").primaryKey(),
  hostId: text("host_id").notNull(),
  tokenHash: text("token_hash").notNull().unique(),
  createdAt: text("created_at").notNull(),
  revokedAt: text("revoked_at"),
});

export const reports = sqliteTable("reports", {
  hostId: text("host_id").primaryKey(),
  report: text("report").notNull(),
  reportHash: text("report_hash").notNull(),
  agentSession: text("agent_session").notNull(),
  receivedAt: text("received_at").notNull(),
});

export const auditLog = sqliteTable("audit_log", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  at: text("at").notNull(),
  actor: text("actor").notNull(),
  action: text("action").notNull(),
  target: text("target"),
  details: text("details"),
  result: text("result").notNull(),
  role: text("role", { enum: ROLES }),
  /** Set by the coordinator's outbox only: the entry's effect key, so a retry writes it once. */
  effectKey: text("effect_key"),
}, (table) => [uniqueIndex("audit_log_effect_key").on(table.effectKey)]);

/**
 * The stored settings (worker/db/settings.ts): one row, id 1, or none (the `wrangler.toml` vars are then in
 * force). `version` counts the writes; `write_id` names the write that made this version.
 */
export const settings = sqliteTable("settings", {
  id: integer("id").primaryKey(),
  version: integer("version").notNull(),
  settings: text("settings").notNull(),
  writeId: text("write_id").notNull(),
  updatedAt: text("updated_at").notNull(),
  updatedBy: text("updated_by").notNull(),
});

/** The token CI posts desired systems with (worker/db/service-tokens.ts): sha256 only; the newest unrevoked row is in force. */
export const ciTokens = sqliteTable("ci_tokens", {
  id: text("id").primaryKey(),
  tokenHash: text("token_hash").notNull().unique(),
  createdAt: text("created_at").notNull(),
  createdBy: text("created_by").notNull(),
  revokedAt: text("revoked_at"),
});

/** The token that uploads to the binary cache (worker/db/service-tokens.ts): sha256 only; the newest unrevoked row is in force. */
export const cacheTokens = sqliteTable("cache_tokens", {
  id: text("id").primaryKey(),
  tokenHash: text("token_hash").notNull().unique(),
  createdAt: text("created_at").notNull(),
  createdBy: text("created_by").notNull(),
  revokedAt: text("revoked_at"),
});

/** What CI (`POST /api/desired`) or a builder host (its fleet-build result) published: a host's desired store path at a commit and its tree. */
export const desiredPublications = sqliteTable(
  "desired_publications",
  {
    commitSha: text("commit_sha").notNull(),
    hostName: text("host_name").notNull(),
    outPath: text("out_path").notNull(),
    publishedAt: text("published_at").notNull(),
    tree: text("tree"),
  },
  (table) => [
    primaryKey({ columns: [table.commitSha, table.hostName] }),
    index("desired_publications_published").on(table.publishedAt),
    index("desired_publications_tree").on(table.tree),
  ],
);
