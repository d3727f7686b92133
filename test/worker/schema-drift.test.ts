/**
 * The drizzle schema (worker/db/schema*.ts) is hand-written beside the SQL
 * migrations, which are the truth: this holds them together. The migrations
 * are applied to the real local D1 (apply-migrations.ts) and every table and
 * column drizzle knows is compared with what SQLite reports, both ways.
 */
import { env } from "cloudflare:test";
import { is } from "drizzle-orm";
import { getTableConfig, SQLiteTable } from "drizzle-orm/sqlite-core";
import { describe, expect, it } from "vitest";
import { openDatabase } from "../../worker/db/client.ts";
import * as coreSchema from "../../worker/db/schema.ts";
import * as githubSchema from "../../worker/db/schema-github.ts";

const drizzleTables = [...Object.values(coreSchema), ...Object.values(githubSchema)]
  .filter((value) => is(value, SQLiteTable))
  .map((table) => getTableConfig(table));

interface ColumnInfo {
  name: string;
  type: string;
  notnull: number;
  dflt_value: string | null;
  pk: number;
}

async function sqliteTables(): Promise<string[]> {
  const { results } = await env.DB.prepare(
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name != 'd1_migrations' ORDER BY name",
  ).all<{ name: string }>();
  return results.map((row) => row.name);
}

async function tableSql(table: string): Promise<string> {
  const row = await env.DB.prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?").bind(table).first<{ sql: string }>();
  return row?.sql ?? "";
}

async function uniqueColumns(table: string): Promise<string[]> {
  const { results: indexes } = await env.DB.prepare(`PRAGMA index_list("${table}")`).all<{ name: string; unique: number; origin: string }>();
  const single: string[] = [];
  for (const index of indexes.filter((i) => i.unique === 1 && i.origin === "u")) {
    const { results: columns } = await env.DB.prepare(`PRAGMA index_info("${index.name}")`).all<{ name: string }>();
    if (columns.length === 1) single.push(columns[0]!.name);
  }
  return single.sort();
}

/** A drizzle default as SQLite prints it in PRAGMA table_info. */
function sqlDefault(value: unknown): string | null {
  if (value === undefined) return null;
  if (typeof value === "boolean") return value ? "1" : "0";
  if (typeof value === "number") return String(value);
  return `'${String(value).replaceAll("'", "''")}'`;
}

describe("drizzle schema and SQL migrations", () => {
  it("name the same tables", async () => {
    expect(drizzleTables.map((t) => t.name).sort()).toEqual(await sqliteTables());
  });

  for (const table of drizzleTables) {
    it(`agree on every column of ${table.name}: name, type, NOT NULL, default, primary key, UNIQUE and enum CHECK`, async () => {
      const { results } = await env.DB.prepare(`PRAGMA table_info("${table.name}")`).all<ColumnInfo>();
      const compositeKey = table.primaryKeys.flatMap((pk) => pk.columns.map((c) => c.name));
      const expected = table.columns
        .map((column) => ({
          name: column.name,
          type: column.getSQLType().toUpperCase(),
          notNull: column.notNull,
          default: sqlDefault(column.default),
          primaryKey: column.primary || compositeKey.includes(column.name),
        }))
        .sort((a, b) => a.name.localeCompare(b.name));
      const singleKey = results.filter((row) => row.pk > 0).length === 1;
      const actual = results
        .map((row) => ({
          name: row.name,
          type: row.type.toUpperCase(),
          // SQLite reports a one-column PRIMARY KEY without NOT NULL as nullable; drizzle calls it NOT NULL.
          notNull: row.notnull === 1 || (row.pk > 0 && singleKey),
          default: row.dflt_value,
          primaryKey: row.pk > 0,
        }))
        .sort((a, b) => a.name.localeCompare(b.name));
      expect(actual).toEqual(expected);

      const declaredUnique = table.columns.filter((c) => c.isUnique).map((c) => c.name).sort();
      expect(await uniqueColumns(table.name)).toEqual(declaredUnique);

      const sql = await tableSql(table.name);
      for (const column of table.columns) {
        const enumValues: readonly string[] = column.enumValues ?? [];
        if (enumValues.length === 0) continue;
        const values = enumValues.map((v) => `'${v}'`).join(", ");
        expect(sql, `${table.name}.${column.name}`).toContain(`CHECK (${column.name} IN (${values}))`);
      }
    });
  }
});

describe("openDatabase", () => {
  it("builds one drizzle object per D1 binding, which every later request gets and queries with", async () => {
    const first = openDatabase(env.DB);
    expect(openDatabase(env.DB)).toBe(first);
    // A copy of the env (as a test or a Durable Object may hold) still names the same binding.
    expect(openDatabase({ ...env }.DB)).toBe(first);
    expect(await first.select().from(coreSchema.hosts).limit(1)).toEqual([]);
  });
});
