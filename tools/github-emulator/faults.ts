/**
 * Failures GitHub gives now and then (a 500 from the API, a 502 or 503 from its front end), injected
 * by tests so a client's handling of them runs against real HTTP. Each fault answers the next
 * `count` API requests that match its method and path prefix, then is used up.
 */
export interface Fault {
  method: string;
  /** Matches a request whose path starts with it, e.g. `/repos/o/r/statuses/` or one commit's `/repos/o/r/statuses/<sha>`. */
  path: string;
  status: number;
  remaining: number;
}

/** The messages GitHub's error bodies carry for these statuses. */
const MESSAGES: Record<number, string> = { 500: "Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout" };

export const faultMessage = (status: number): string => MESSAGES[status] ?? "Server Error";

export class Faults {
  #faults: Fault[] = [];

  add(fault: { method: string; path: string; status?: number; count?: number }): void {
    this.#faults.push({ method: fault.method.toUpperCase(), path: fault.path, status: fault.status ?? 502, remaining: fault.count ?? 1 });
  }

  clear(): void {
    this.#faults = [];
  }

  /** The fault that answers this request (and is counted down), or null: the request is served. */
  take(method: string, path: string): Fault | null {
    const fault = this.#faults.find((f) => f.method === method.toUpperCase() && path.startsWith(f.path));
    if (!fault) return null;
    fault.remaining--;
    if (fault.remaining <= 0) this.#faults = this.#faults.filter((f) => f !== fault);
    return fault;
  }
}
