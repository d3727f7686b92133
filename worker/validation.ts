import type { Context } from "hono";
import { z } from "zod";
import { ApiError } from "./errors.ts";

export const MAX_JSON_BODY_BYTES = 256 * 1024;

/** "kind: Invalid option …; name: …" — zod's issues as one line a person can act on. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => (issue.path.length > 0 ? `${issue.path.join(".")}: ${issue.message}` : issue.message))
    .join("; ");
}

export function parseWith<T extends z.ZodType>(schema: T, value: unknown, what: string): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new ApiError(400, "invalid_request", `${what}: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

/** Reads a JSON body within a size limit and parses it with `schema`; never casts. */
export async function readJson<T extends z.ZodType>(
  c: Context,
  schema: T,
  maxBytes = MAX_JSON_BODY_BYTES,
): Promise<z.infer<T>> {
  const declared = Number(c.req.header("content-length") ?? "0");
  if (declared > maxBytes) throw tooLarge(maxBytes);
  const text = await c.req.text();
  if (new TextEncoder().encode(text).byteLength > maxBytes) throw tooLarge(maxBytes);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ApiError(400, "malformed_json", "request body is not valid JSON");
  }
  return parseWith(schema, value, "invalid request body");
}

const tooLarge = (maxBytes: number) =>
  new ApiError(413, "payload_too_large", `request body is larger than ${maxBytes} bytes`);

/** A page size in a query string: a whole number in range, or the default when absent. */
export const pageLimit = (fallback: number, max: number) =>
  z.coerce.number({ error: "limit must be a number" }).int("limit must be a whole number").min(1).max(max).default(fallback);

/** Parses the request's query string with `schema` (unknown parameters are ignored). */
export function readQuery<T extends z.ZodType>(c: Context, schema: T): z.infer<T> {
  return parseWith(schema, c.req.query(), "invalid query");
}
