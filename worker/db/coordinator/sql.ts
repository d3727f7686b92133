/** Small readers shared by the coordinator's tables: SQLite cells to values, stored JSON parsed, never cast. */
import type { z } from "zod";

export type Row = Record<string, SqlStorageValue>;
type Cell = SqlStorageValue | undefined;

export const text = (value: Cell): string => String(value);
export const textOrNull = (value: Cell): string | null => (value === null || value === undefined ? null : String(value));
export const number = (value: Cell): number => Number(value);

export function readJson<T extends z.ZodType>(schema: T, value: string): z.infer<T> | null {
  try {
    const parsed = schema.safeParse(JSON.parse(value));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
