import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ErrorBody, ErrorIssue } from "../common/protocol.ts";
import type { Refusal } from "./outcome.ts";

/** An error the client caused or must know about: answered as `{error:{code,message}}`. */
export class ApiError extends Error {
  readonly status: ContentfulStatusCode;
  readonly code: string;
  /** For a refused request body: where each problem is (zod's paths). */
  readonly issues: ErrorIssue[] | undefined;
  /** A rate limit's wait, answered as Retry-After. */
  readonly retryAfterSeconds: number | undefined;
  constructor(status: ContentfulStatusCode, code: string, message: string, issues?: ErrorIssue[], retryAfterSeconds?: number) {
    super(message);
    this.status = status;
    this.code = code;
    this.issues = issues;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** The one conversion of a refusal (worker/outcome.ts) to the HTTP answer: thrown, it is shaped by `handleError`. */
export const refused = (refusal: Refusal): ApiError =>
  new ApiError(refusal.status, refusal.code, refusal.message, undefined, refusal.retryAfterSeconds);

export const errorBody = (code: string, message: string, issues?: ErrorIssue[]): ErrorBody => ({
  error: issues === undefined ? { code, message } : { code, message, issues },
});

/** The one place errors get their shape. Unknown errors are logged and answered generically. */
export function handleError(err: Error, c: Context): Response {
  if (err instanceof ApiError) {
    const headers = err.retryAfterSeconds === undefined ? undefined : { "retry-after": String(err.retryAfterSeconds) };
    return c.json(errorBody(err.code, err.message, err.issues), err.status, headers);
  }
  // A middleware that was handed our answer (bearerAuth's refusals) keeps it, with the headers it added.
  if (err instanceof HTTPException && err.res?.headers.get("content-type")?.startsWith("application/json")) return err.getResponse();
  if (err instanceof HTTPException) {
    // One that carries its own answer (bearerAuth's on /metrics: our shape, plus WWW-Authenticate) is sent as it is.
    if (err.res) return err.getResponse();
    const code = err.status === 401 ? "unauthorized" : err.status === 403 ? "forbidden" : "http_error";
    return c.json(errorBody(code, err.message || "request refused"), err.status);
  }
  console.error("unhandled error", c.req.method, c.req.path, err);
  return c.json(errorBody("internal", "internal error; see the worker logs"), 500);
}
