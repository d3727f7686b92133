import type { BuildResult } from "esbuild";

/** Where the bundles go by default: dist/agent. */
export const defaultAgentOutdir: string;
/** Bundles the agent and the `nixfleet` CLI into `outdir` (default dist/agent): nixfleet-agent.mjs and nixfleet.mjs. */
export function buildAgent(options?: { outdir?: string }): Promise<Array<BuildResult<{ metafile: true }>>>;
