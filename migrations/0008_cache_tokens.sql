-- The one token that uploads to the fleet's binary cache (PUT under /cache and its multipart routes, docs/cache.md)
-- and reads it, nothing else; stored as its sha256 like the agent and CI tokens. Rotating revokes the old one;
-- the newest unrevoked row is in force.
CREATE TABLE cache_tokens (
  id TEXT PRIMARY KEY,
  token_hash TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL,
  created_by TEXT NOT NULL,
  revoked_at TEXT
);
