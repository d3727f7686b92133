import { integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

// Mirrors migrations/0002_github.sql, which is the source of truth for these tables.

export const githubDeliveries = sqliteTable("github_deliveries", {
  id: text("id").primaryKey(),
  event: text("event").notNull(),
  action: text("action"),
  receivedAt: text("received_at").notNull(),
  outcome: text("outcome", { enum: ["processing", "processed", "ignored", "rejected", "failed"] }).notNull(),
  error: text("error"),
  attempts: integer("attempts").notNull().default(1),
});

export const githubRepoState = sqliteTable(
  "github_repo_state",
  {
    repository: text("repository").notNull(),
    branch: text("branch").notNull(),
    headSha: text("head_sha"),
    headMessage: text("head_message"),
    headAuthor: text("head_author"),
    headCommittedAt: text("head_committed_at"),
    headTree: text("head_tree"),
    lockHash: text("lock_hash"),
    lockLastModified: text("lock_last_modified").notNull().default("{}"),
    lockProblem: text("lock_problem"),
    updatedAt: text("updated_at").notNull(),
    source: text("source", { enum: ["webhook", "schedule", "api"] }).notNull(),
    lastError: text("last_error"),
    lastErrorAt: text("last_error_at"),
  },
  (table) => [primaryKey({ columns: [table.repository, table.branch] })],
);

export const githubPullRequests = sqliteTable(
  "github_pull_requests",
  {
    repository: text("repository").notNull(),
    number: integer("number").notNull(),
    title: text("title").notNull(),
    url: text("url").notNull(),
    state: text("state", { enum: ["open", "closed", "merged"] }).notNull(),
    draft: integer("draft", { mode: "boolean" }).notNull().default(false),
    headSha: text("head_sha").notNull(),
    headRef: text("head_ref").notNull(),
    baseRef: text("base_ref").notNull(),
    labels: text("labels").notNull().default("[]"),
    isUpdatePr: integer("is_update_pr", { mode: "boolean" }).notNull(),
    mergeable: integer("mergeable", { mode: "boolean" }),
    createdAt: text("created_at").notNull(),
    updatedAt: text("updated_at").notNull(),
    mergedAt: text("merged_at"),
    mergeCommitSha: text("merge_commit_sha"),
    lockChanges: text("lock_changes"),
    lockHeadSha: text("lock_head_sha"),
    lockBaseHash: text("lock_base_hash"),
    lockProblem: text("lock_problem"),
    syncedAt: text("synced_at").notNull(),
  },
  (table) => [primaryKey({ columns: [table.repository, table.number] })],
);

export const githubCommitChecks = sqliteTable(
  "github_commit_checks",
  {
    repository: text("repository").notNull(),
    sha: text("sha").notNull(),
    kind: text("kind", { enum: ["check_run", "check_suite", "status", "workflow_run"] }).notNull(),
    name: text("name").notNull(),
    outcome: text("outcome", { enum: ["pending", "success", "failure"] }).notNull(),
    ordinal: integer("ordinal").notNull(),
    updatedAt: text("updated_at").notNull(),
  },
  (table) => [primaryKey({ columns: [table.repository, table.sha, table.kind, table.name] })],
);
