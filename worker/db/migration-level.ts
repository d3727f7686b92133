/**
 * Which migration the D1 database is at, against the one this code needs: `nixfleet doctor` reads both
 * from GET /api/deployment, so a deploy that skipped `wrangler d1 migrations apply --remote` is named.
 */
import { sql } from "drizzle-orm";
import type { Database } from "./client.ts";

/** The newest file in migrations/; test/worker/deployment.test.ts holds it to the folder. */
export const CODE_MIGRATION = "0009_desired_by_tree.sql";

/** The newest migration wrangler recorded in its d1_migrations table; null when it recorded none. */
export async function appliedMigration(db: Database): Promise<string | null> {
  try {
    const row = await db.get<{ name: string } | undefined>(sql`SELECT name FROM d1_migrations ORDER BY id DESC LIMIT 1`);
    return row?.name ?? null;
  } catch {
    // No d1_migrations table: the schema was never migrated by wrangler.
    return null;
  }
}
