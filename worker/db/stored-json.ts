import type { z } from "zod";

/**
 * Reads JSON this code (or an older version of it) stored. A row that no
 * longer parses is logged and read as `null`, so one bad row costs its own
 * field, never a whole page: stored data is parsed leniently, wire data strictly.
 */
export function readStoredJson<T extends z.ZodType>(schema: T, text: string, where: string): z.infer<T> | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    console.error(`stored JSON in ${where} is not JSON; read as unknown`);
    return null;
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    console.error(`stored JSON in ${where} does not match today's schema; read as unknown:`, parsed.error.issues.slice(0, 3));
    return null;
  }
  return parsed.data;
}
