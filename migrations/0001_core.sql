-- Hosts, their agent tokens, commands and their output, the latest report per host, the audit log.
CREATE TABLE hosts (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  platform TEXT NOT NULL CHECK (platform IN ('nixos', 'darwin', 'home-manager')),
  flake_attr TEXT NOT NULL,
  created_at TEXT NOT NULL,
  -- Flushed by the coordinator on online/offline transitions and at most every few hours, not per poll.
  last_seen_at TEXT
);

CREATE TABLE agent_tokens (
  id TEXT PRIMARY KEY,
  host_id TEXT NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
  -- sha256 hex of the token; the token itself is shown once and never stored.
  token_hash TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL,
  revoked_at TEXT
);
CREATE INDEX agent_tokens_host ON agent_tokens(host_id);

CREATE TABLE commands (
  id TEXT PRIMARY KEY,
  host_id TEXT NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
  kind TEXT NOT NULL,
  state TEXT NOT NULL,
  target TEXT,
  actor TEXT NOT NULL,
  created_at TEXT NOT NULL,
  delivered_at TEXT,
  started_at TEXT,
  finished_at TEXT,
  deadline_at TEXT NOT NULL,
  expires_at TEXT NOT NULL,
  exit_code INTEGER,
  error TEXT,
  result TEXT,
  output_bytes INTEGER NOT NULL DEFAULT 0,
  output_truncated INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX commands_host_created ON commands(host_id, created_at DESC);
CREATE INDEX commands_active ON commands(state) WHERE state IN ('queued', 'delivered', 'running');

CREATE TABLE command_output (
  command_id TEXT NOT NULL REFERENCES commands(id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  stream TEXT NOT NULL,
  data TEXT NOT NULL,
  at TEXT NOT NULL,
  PRIMARY KEY (command_id, seq)
);

CREATE TABLE reports (
  host_id TEXT PRIMARY KEY REFERENCES hosts(id) ON DELETE CASCADE,
  report TEXT NOT NULL,
  report_hash TEXT NOT NULL,
  agent_session TEXT NOT NULL,
  received_at TEXT NOT NULL
);

CREATE TABLE audit_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at TEXT NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT,
  details TEXT,
  result TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log(at DESC);
