import { zValidator } from "@hono/zod-validator";
import type { Context, Env, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { z } from "zod";
import { ApiError } from "./errors.ts";

export const MAX_JSON_BODY_BYTES = 256 * 1024;

/** "kind: Invalid option …; name: …" — zod's issues as one line a person can act on. */
export function describeIssues(error: { issues: readonly z.core.$ZodIssue[] }): string {
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

const JSON_MEDIA_TYPE = /^application\/([\w.-]+\+)?json$/i;

/**
 * A route's JSON body, read with Hono's `bodyLimit` and `@hono/zod-validator`;
 * the handler takes it from `c.req.valid("json")`. Spread it before the
 * handler: `.post("/", ...jsonBody(Schema), async (c) => …)`.
 *
 * The validator alone differs from our contract in three ways, evened out by
 * the step between them: it reads nothing unless the request says
 * `Content-Type: application/json` (agents and curl often send none, and
 * such a body must still be refused or accepted for what it is), it answers
 * malformed JSON with a bare 400 instead of `malformed_json`, and it knows
 * no "empty body means the defaults" (`emptyMeansDefaults`, the merge routes).
 */
export function jsonBody<T extends z.ZodType>(schema: T, options: { maxBytes?: number; emptyMeansDefaults?: boolean } = {}) {
  const maxBytes = options.maxBytes ?? MAX_JSON_BODY_BYTES;
  const limit: MiddlewareHandler = bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw tooLarge(maxBytes);
    },
  });
  const asJson: MiddlewareHandler<Env, string, { out: { json: unknown } }> = async (c, next) => {
    const text = await c.req.text();
    const body = options.emptyMeansDefaults && text.trim() === "" ? "{}" : text;
    const type = (c.req.header("content-type") ?? "").split(";")[0]!.trim();
    if (body !== text || !JSON_MEDIA_TYPE.test(type)) {
      const headers = new Headers(c.req.raw.headers);
      headers.set("content-type", "application/json");
      c.req.raw = new Request(c.req.raw, { headers, body });
      // Hono would otherwise hand the validator the text it read above.
      c.req.bodyCache = {};
    }
    await next();
    // Hono has already handed a thrown error to onError (and left it in c.error). Before the
    // validator has parsed anything, its only HTTPException is malformed JSON: answered as ours.
    if (c.error instanceof HTTPException && c.error.status === 400 && c.req.valid("json") === undefined) {
      throw new ApiError(400, "malformed_json", "request body is not valid JSON");
    }
  };
  const validate = zValidator("json", schema, (result) => {
    if (!result.success) {
      const issues = result.error.issues.slice(0, 20).map((issue) => ({ path: issue.path.filter((p) => typeof p !== "symbol"), message: issue.message }));
      throw new ApiError(400, "invalid_request", `invalid request body: ${describeIssues(result.error)}`, issues);
    }
  });
  return [limit, asJson, validate] as const;
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
