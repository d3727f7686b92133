/**
 * The one vocabulary for "no" across the worker: a command rule, the coordinator, the automation,
 * the notifier and the update-PR service answer an `Outcome<T>` — the result, or a `Refusal` that
 * says which HTTP status and error code it becomes. Values, not exceptions, because they cross
 * Durable Object RPC, where an error loses its class. worker/errors.ts turns one into the HTTP answer.
 */

/** The statuses a refusal may carry: the client's fault (4xx), or GitHub's or the set-up's (502, 503). */
export type RefusalStatus = 400 | 401 | 403 | 404 | 409 | 429 | 502 | 503;

export interface Refusal {
  ok: false;
  status: RefusalStatus;
  code: string;
  message: string;
  /** A rate limit's wait, answered as Retry-After. */
  retryAfterSeconds?: number;
}

export type Outcome<T> = ({ ok: true } & T) | Refusal;

export const refuse = (status: RefusalStatus, code: string, message: string, retryAfterSeconds?: number): Refusal =>
  retryAfterSeconds === undefined ? { ok: false, status, code, message } : { ok: false, status, code, message, retryAfterSeconds };
