-- Desired systems found by git tree (docs/fleet-build.md "Builder hosts"): a builder publishes the systems it
-- built for an update PR's head, and the merge commit of the same tree finds them. Null where the tree is
-- not known (CI's publication of a commit that was not main's head when it arrived).
ALTER TABLE desired_publications ADD COLUMN tree TEXT;
CREATE INDEX desired_publications_tree ON desired_publications(tree);
