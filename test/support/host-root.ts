import { rm } from "node:fs/promises";

/**
 * Removes a directory real agents ran in. A switch's watchdog is a process of its own (detached, as on a
 * host) and may still be writing its decision under an agent's state directory when the agent has stopped:
 * it notices its record is gone within a fraction of a second and ends, so the removal retries until then
 * instead of failing with ENOTEMPTY.
 */
export async function removeHostRoot(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
}
