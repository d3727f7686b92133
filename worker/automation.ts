import type { WorkerEnv } from "./env.ts";

/** The fleet has exactly one automation object: it schedules and merges update PRs. */
export const automation = (env: WorkerEnv) => env.AUTOMATION.getByName("fleet");
