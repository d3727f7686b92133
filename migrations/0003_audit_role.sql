-- The role the actor acted with (viewer, operator, admin). Null for entries written before roles existed,
-- and for work no person started (the scheduled sync).
ALTER TABLE audit_log ADD COLUMN role TEXT CHECK (role IN ('viewer', 'operator', 'admin'));
