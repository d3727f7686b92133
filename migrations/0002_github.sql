-- GitHub: webhook deliveries, the repository state the fleet follows, its pull requests and their CI.
-- Only the configured repository's rows are kept (a change of GITHUB_REPOSITORY/GITHUB_BRANCH drops the others).
-- No secret is ever stored here.

-- One row per X-GitHub-Delivery: deduplicates redeliveries and shows what happened to each.
CREATE TABLE github_deliveries (
  id TEXT PRIMARY KEY,
  event TEXT NOT NULL,
  action TEXT,
  received_at TEXT NOT NULL,
  -- processing: accepted, slow work still running; failed and rejected may be redelivered and are tried again.
  outcome TEXT NOT NULL CHECK (outcome IN ('processing', 'processed', 'ignored', 'rejected', 'failed')),
  error TEXT,
  attempts INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX github_deliveries_received ON github_deliveries(received_at);

-- The head of the followed branch and the hash of its flake.lock: the fleet's target.
CREATE TABLE github_repo_state (
  repository TEXT NOT NULL,
  branch TEXT NOT NULL,
  head_sha TEXT,
  head_message TEXT,
  head_author TEXT,
  head_committed_at TEXT,
  -- sha256 hex of the flake.lock bytes at head_sha (null: not read yet, or no readable flake.lock).
  lock_hash TEXT,
  lock_last_modified TEXT NOT NULL DEFAULT '{}',
  lock_problem TEXT,
  updated_at TEXT NOT NULL,
  source TEXT NOT NULL CHECK (source IN ('webhook', 'schedule', 'api')),
  -- The last failed sync (GitHub unreachable, rate limited, bad credentials), cleared by the next good one.
  last_error TEXT,
  last_error_at TEXT,
  PRIMARY KEY (repository, branch)
);

-- Pull requests against the followed branch that are, or were, update PRs.
CREATE TABLE github_pull_requests (
  repository TEXT NOT NULL,
  number INTEGER NOT NULL,
  title TEXT NOT NULL,
  url TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('open', 'closed', 'merged')),
  draft INTEGER NOT NULL DEFAULT 0,
  head_sha TEXT NOT NULL,
  head_ref TEXT NOT NULL,
  base_ref TEXT NOT NULL,
  labels TEXT NOT NULL DEFAULT '[]',
  -- Decided when the PR was last seen, with the label/title rule configured then.
  is_update_pr INTEGER NOT NULL,
  mergeable INTEGER,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  merged_at TEXT,
  merge_commit_sha TEXT,
  -- The lock diff (JSON LockChange[]) against the base branch; null until computed.
  lock_changes TEXT,
  -- Which head commit and which base flake.lock (hash) the lock diff was computed for.
  lock_head_sha TEXT,
  lock_base_hash TEXT,
  lock_problem TEXT,
  synced_at TEXT NOT NULL,
  PRIMARY KEY (repository, number)
);
CREATE INDEX github_pull_requests_open ON github_pull_requests(state, is_update_pr);

-- CI results per commit: check runs, check suites, commit statuses and workflow runs.
CREATE TABLE github_commit_checks (
  repository TEXT NOT NULL,
  sha TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('check_run', 'check_suite', 'status', 'workflow_run')),
  -- The check run / suite / workflow run id, or the status context.
  name TEXT NOT NULL,
  outcome TEXT NOT NULL CHECK (outcome IN ('pending', 'success', 'failure')),
  -- Orders updates of one check: webhooks may arrive out of order, a lower ordinal never overwrites a higher one.
  ordinal INTEGER NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (repository, sha, kind, name)
);
CREATE INDEX github_commit_checks_updated ON github_commit_checks(updated_at);
