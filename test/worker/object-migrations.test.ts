/**
 * The one migration runner of the Durable Objects' own SQLite storage, inside workerd on a real
 * object's storage. Each test takes a scratch Notifier of its own and empties its storage first,
 * so the runner starts from nothing, as in a new object.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { applyObjectMigrations, type ObjectMigrations } from "../../worker/db/object-migrations.ts";

// Each migration logs its own version, so a migration run twice shows up (and the first one,
// creating the log, would fail if run again).
const migrations: ObjectMigrations = {
  1: "CREATE TABLE applied (version INTEGER NOT NULL); INSERT INTO applied VALUES (1)",
  2: "CREATE TABLE things (name TEXT NOT NULL); INSERT INTO applied VALUES (2)",
  3: "INSERT INTO things VALUES ('three'); INSERT INTO applied VALUES (3)",
};
const upTo = (version: number): ObjectMigrations =>
  Object.fromEntries(Object.entries(migrations).filter(([key]) => Number(key) <= version));

const versions = (sql: SqlStorage) => sql.exec("SELECT version FROM schema_version ORDER BY rowid").toArray().map((row) => row.version);
const applied = (sql: SqlStorage) => sql.exec("SELECT version FROM applied ORDER BY rowid").toArray().map((row) => row.version);
const tables = (sql: SqlStorage) =>
  sql.exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite%'").toArray().map((row) => row.name);

/** Runs `body` on the storage of a scratch object whose storage starts empty. */
async function onEmptyStorage(name: string, body: (sql: SqlStorage) => void): Promise<void> {
  await runInDurableObject(env.NOTIFIER.getByName(`object-migrations-${name}`), async (_instance, state) => {
    await state.storage.deleteAll();
    expect(tables(state.storage.sql)).toEqual([]);
    body(state.storage.sql);
  });
}

describe("applyObjectMigrations", () => {
  it("applies every migration in order to a new object and records each version", async () => {
    await onEmptyStorage("fresh", (sql) => {
      applyObjectMigrations(sql, migrations);
      expect(applied(sql)).toEqual([1, 2, 3]);
      expect(versions(sql)).toEqual([1, 2, 3]);
      expect(sql.exec("SELECT name FROM things").toArray()).toEqual([{ name: "three" }]);
    });
  });

  it("applies only the migrations above the version an object is at", async () => {
    await onEmptyStorage("at-version-1", (sql) => {
      applyObjectMigrations(sql, upTo(1));
      expect(versions(sql)).toEqual([1]);
      applyObjectMigrations(sql, migrations);
      expect(applied(sql)).toEqual([1, 2, 3]);
      expect(versions(sql)).toEqual([1, 2, 3]);
    });
  });

  it("applies nothing to an object already at the latest version", async () => {
    await onEmptyStorage("up-to-date", (sql) => {
      applyObjectMigrations(sql, migrations);
      applyObjectMigrations(sql, migrations);
      expect(applied(sql)).toEqual([1, 2, 3]);
      expect(versions(sql)).toEqual([1, 2, 3]);
    });
  });

  it("leaves the version where it was when a migration fails, and applies it at the next start", async () => {
    await onEmptyStorage("failing", (sql) => {
      const broken: ObjectMigrations = { ...upTo(1), 2: "INSERT INTO no_such_table VALUES (2)", 3: migrations[3]! };
      expect(() => applyObjectMigrations(sql, broken)).toThrow(/no_such_table/);
      expect(versions(sql)).toEqual([1]);
      expect(applied(sql)).toEqual([1]);

      applyObjectMigrations(sql, migrations);
      expect(applied(sql)).toEqual([1, 2, 3]);
      expect(versions(sql)).toEqual([1, 2, 3]);
    });
  });

  it("refuses migrations with a missing version and writes nothing", async () => {
    await onEmptyStorage("gap", (sql) => {
      const gap: ObjectMigrations = { 1: migrations[1]!, 3: migrations[3]! };
      expect(() => applyObjectMigrations(sql, gap)).toThrow(/version 2 is missing/);
      expect(tables(sql)).toEqual([]);
    });
  });
});

describe("the objects' own storage", () => {
  it.each([
    ["coordinator", () => env.COORDINATOR.getByName("fleet"), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]],
    ["automation", () => env.AUTOMATION.getByName("fleet"), [1]],
    ["notifier", () => env.NOTIFIER.getByName("fleet"), [1]],
  ] as const)("the %s records its schema versions in schema_version, each once", async (_name, stub, expected) => {
    const stored = await runInDurableObject(stub(), (_instance, state) => versions(state.storage.sql));
    expect(stored).toEqual(expected);
  });
});
