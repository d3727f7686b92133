-- The settings edited on the Settings page (worker/db/settings.ts). One row or none: without it the
-- `wrangler.toml` vars are the settings in force (version 0). `settings` is JSON whose notification
-- secrets are sealed with SETTINGS_ENCRYPTION_KEY (worker/settings-secrets.ts). `version` goes up by one on
-- every write, which is a compare-and-set on it; `write_id` tells the write that made this version.
CREATE TABLE settings (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  version INTEGER NOT NULL,
  settings TEXT NOT NULL,
  write_id TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  updated_by TEXT NOT NULL
);
