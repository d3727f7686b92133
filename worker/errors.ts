import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ErrorBody, ErrorIssue } from "../common/protocol.ts";

/** An error the client caused or must know about: answered as `{error:{code,message}}`. */
export class ApiError extends Error {
  readonly status: ContentfulStatusCode;
  readonly code: string;
  /** For a refused request body: where each problem is (zod's paths). */
  readonly issues: ErrorIssue[] | undefined;
  constructor(status: ContentfulStatusCode, code: string, message: string, issues?: ErrorIssue[]) {
    super(message);
    this.status = status;
    this.code = code;
    this.issues = issues;
  }
}

export const errorBody = (code: string, message: string, issues?: ErrorIssue[]): ErrorBody => ({
  error: issues === undefined ? { code, message } : { code, message, issues },
});

/** The one place errors get their shape. Unknown errors are logged and answered generically. */
export function handleError(err: Error, c: Context): Response {
  if (err instanceof ApiError) return c.json(errorBody(err.code, err.message, err.issues), err.status);
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
