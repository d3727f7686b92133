/**
 * The real control plane (wrangler dev, local D1, Durable Objects) serving the
 * dashboard that test/support/build-ui.ts (vitest's global setup) built, plus
 * the admin API calls tests use to set up and check state behind the UI's back.
 */
import { startControlPlane, type ControlPlane } from "../support/control-plane.ts";

export interface Dashboard {
  url: string;
  plane: ControlPlane;
  /** Calls the admin API as a script would (no Origin header). */
  api(path: string, init?: { method?: string; body?: unknown }): Promise<{ status: number; json: unknown }>;
  stop(): Promise<void>;
}

export async function startDashboard(vars: Record<string, string> = {}): Promise<Dashboard> {
  const plane = await startControlPlane({ vars: { POLL_TIMEOUT_SECONDS: "5", ...vars } });
  return {
    url: plane.url,
    plane,
    async api(path, init = {}) {
      const response = await fetch(`${plane.url}${path}`, {
        method: init.method ?? "GET",
        headers: init.body === undefined ? {} : { "content-type": "application/json" },
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
      });
      const text = await response.text();
      return { status: response.status, json: text ? JSON.parse(text) : null };
    },
    stop: () => plane.stop(),
  };
}
