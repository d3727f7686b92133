-- The key of an audit entry the coordinator writes from its outbox (worker/coordinator/outbox.ts): an
-- entry carried out again after an eviction finds its key taken and is not written twice. Null for
-- every other writer. A unique index, not a column constraint: SQLite cannot add a UNIQUE column.
ALTER TABLE audit_log ADD COLUMN effect_key TEXT;
CREATE UNIQUE INDEX audit_log_effect_key ON audit_log(effect_key);
