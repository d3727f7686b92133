import type { WorkerEnv } from "./env.ts";

/** The fleet has exactly one notifier: every delivery and its retries in one place. */
export const notifier = (env: WorkerEnv) => env.NOTIFIER.getByName("fleet");
