-- The desired system (docs/compartments.md "System"): main's git tree, CI's token and what CI published.

-- The head's git tree (the push webhook's tree_id, the commit API's tree): a desired system evaluated at
-- another commit with the same tree is main's. Null for a head read before this column existed.
ALTER TABLE github_repo_state ADD COLUMN head_tree TEXT;

-- The one token CI posts desired systems with (POST /api/desired and nothing else), stored as its
-- sha256 like the agent tokens. Rotating revokes the old one; the newest unrevoked row is in force.
CREATE TABLE ci_tokens (
  id TEXT PRIMARY KEY,
  token_hash TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL,
  created_by TEXT NOT NULL,
  revoked_at TEXT
);

-- The desired store path CI published for a host at a commit of main (hosts whose desired source is "ci").
CREATE TABLE desired_publications (
  commit_sha TEXT NOT NULL,
  host_name TEXT NOT NULL,
  out_path TEXT NOT NULL,
  published_at TEXT NOT NULL,
  PRIMARY KEY (commit_sha, host_name)
);
CREATE INDEX desired_publications_published ON desired_publications(published_at);
