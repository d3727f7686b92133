/**
 * Server-Timing marks for the benchmarks (bench/dispatch.ts): when a request reached the Worker, when
 * its route began, when the coordinator answered (its audit entry stored with the command) — wall-clock
 * milliseconds a client on the same machine lines up with its own clock, so the time between a click and
 * the agent's answer splits into its parts. Sent only when SERVER_TIMING is "true" and Cloudflare Access
 * is not configured (a local deployment): a deployed Worker tells no client its clock or its internals.
 */
import type { Context } from "hono";
import { setMetric, timing } from "hono/timing";
import { authMode } from "./auth.ts";
import type { WorkerEnv } from "./env.ts";

export function serverTimingEnabled(env: WorkerEnv): boolean {
  return env.SERVER_TIMING === "true" && authMode(env).mode === "development";
}

/** The first middleware: it notes the arrival and, when enabled, writes the marks into the answer's Server-Timing header. */
export const serverTiming = timing({ total: false, enabled: (c) => serverTimingEnabled(c.env as WorkerEnv) });

/** A wall-clock mark (Date.now(): in workerd the time of the latest I/O, which is what each mark follows). */
export function mark(c: Context, name: string): void {
  setMetric(c, name, String(Date.now()));
}
