import type { IncomingMessage } from "node:http";

/** The header that carries the per-run secret from the front to the Worker (worker/auth.ts reads it). */
export const LOCAL_FRONT_HEADER: "x-nixfleet-local-front";

/** Why `req` must not reach the dev server, or null when it may. */
export function refusal(req: IncomingMessage, port: number, options?: { upgrade?: boolean }): { status: 400 | 403; code: string; message: string } | null;

/**
 * Listens on 127.0.0.1:`port` in front of `wrangler dev` on 127.0.0.1:`targetPort`: local Hosts pass through
 * unchanged with `secret` added in LOCAL_FRONT_HEADER, everything else gets a JSON 4xx.
 */
export function startLocalDevFront(options: { port: number; targetPort: number; secret: string; log?: (line: string) => void }): Promise<{ close(): Promise<void> }>;
