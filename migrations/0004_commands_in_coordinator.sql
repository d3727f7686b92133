-- Commands and their output moved into the coordinator Durable Object's own SQLite storage
-- (worker/db/coordinator-storage.ts), their only home: no command fact has two writers.
-- Commands still queued or running when this migration is applied are not carried over.
DROP TABLE IF EXISTS command_output;
DROP TABLE IF EXISTS commands;
