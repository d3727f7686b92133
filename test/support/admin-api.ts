/**
 * The control plane's admin API as its own dashboard calls it, for end-to-end tests and benchmarks:
 * local development lets an admin in without Access, and the CSRF check wants the control plane's own
 * Origin on a POST. JSON in; the answer parsed with the caller's schema; an error status throws with
 * the answer, so a failing step says what the control plane said.
 */
import type { z } from "zod";

export interface AdminRequest {
  /** GET without a body, POST with one, unless told. */
  method?: string;
  body?: unknown;
  /** A bearer token (the agent API, `/metrics`). */
  token?: string;
}

export type AdminApi = <T extends z.ZodType>(schema: T, pathname: string, request?: AdminRequest) => Promise<z.infer<T>>;

/** `url` may be a function: a test file's control plane starts in `beforeAll`, after the client is made. */
export function adminApi(url: string | (() => string)): AdminApi {
  const base = typeof url === "string" ? () => url : url;
  return async (schema, pathname, { method, body, token } = {}) => {
    const origin = base();
    const verb = method ?? (body === undefined ? "GET" : "POST");
    const res = await fetch(`${origin}${pathname}`, {
      method: verb,
      headers: { origin, "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${verb} ${pathname}: ${res.status} ${text}`);
    return schema.parse(JSON.parse(text));
  };
}
