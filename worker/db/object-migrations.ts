/**
 * Brings a Durable Object's own SQLite storage up to date. Each object keys
 * its migrations by schema version, 1, 2, … with none missing; the versions
 * applied are rows of the object's `schema_version` table. Synchronous, so an
 * object runs it in its constructor, before any request can read a table.
 */
export type ObjectMigrations = Readonly<Record<number, string>>;

/**
 * Applies, in order, every migration above the stored version, recording each
 * version once its SQL has run. A migration that throws records nothing for
 * its version: the error reaches the constructor, and the next start tries
 * that version again.
 */
export function applyObjectMigrations(sql: SqlStorage, migrations: ObjectMigrations): void {
  const latest = Object.keys(migrations).length;
  for (let version = 1; version <= latest; version++) {
    // A gap would leave a version that every start skips without a word.
    if (migrations[version] === undefined) throw new Error(`object migrations: version ${version} is missing (versions run 1 to ${latest})`);
  }
  sql.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
  const current = Number(sql.exec("SELECT coalesce(max(version), 0) AS v FROM schema_version").one().v);
  for (let version = current + 1; version <= latest; version++) {
    sql.exec(migrations[version]!);
    sql.exec("INSERT INTO schema_version (version) VALUES (?)", version);
  }
}
