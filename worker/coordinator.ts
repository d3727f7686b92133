import type { WorkerEnv } from "./env.ts";

/** The fleet has exactly one coordinator. */
export const coordinator = (env: WorkerEnv) => env.COORDINATOR.getByName("fleet");
