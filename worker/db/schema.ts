import { sqliteTable, text, integer, primaryKey } from "drizzle-orm/sqlite-core";
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

export const commands = sqliteTable("commands", {
  id: text("id").primaryKey(),
  hostId: text("host_id").notNull(),
  kind: text("kind").notNull(),
  state: text("state").notNull(),
  target: text("target"),
  actor: text("actor").notNull(),
  createdAt: text("created_at").notNull(),
  deliveredAt: text("delivered_at"),
  startedAt: text("started_at"),
  finishedAt: text("finished_at"),
  deadlineAt: text("deadline_at").notNull(),
  expiresAt: text("expires_at").notNull(),
  exitCode: integer("exit_code"),
  error: text("error"),
  result: text("result"),
  outputBytes: integer("output_bytes").notNull().default(0),
  outputTruncated: integer("output_truncated", { mode: "boolean" }).notNull().default(false),
});

export const commandOutput = sqliteTable(
  "command_output",
  {
    commandId: text("command_id").notNull(),
    seq: integer("seq").notNull(),
    stream: text("stream").notNull(),
    data: text("data").notNull(),
    at: text("at").notNull(),
  },
  (table) => [primaryKey({ columns: [table.commandId, table.seq] })],
);

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
