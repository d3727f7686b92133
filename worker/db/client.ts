import { drizzle } from "drizzle-orm/d1";
import * as schema from "./schema.ts";

const open = (d1: D1Database) => drizzle(d1, { schema });

export type Database = ReturnType<typeof open>;

/**
 * Building a drizzle object walks the whole schema's relations, about a twentieth of the Worker's CPU in
 * bench:dispatch's profile when every request built its own; it holds the binding and no request's state,
 * so each binding gets one for the isolate's life.
 */
const opened = new WeakMap<D1Database, Database>();

export function openDatabase(d1: D1Database): Database {
  let db = opened.get(d1);
  if (db === undefined) {
    db = open(d1);
    opened.set(d1, db);
  }
  return db;
}
