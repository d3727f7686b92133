import { sqliteTable, text, integer } from "drizzle-orm/sqlite-core";
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
});
