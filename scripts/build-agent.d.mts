import type { BuildResult } from "esbuild";

/** Where the bundles go by default: dist/agent. */
export const defaultAgentOutdir: string;
/** Bundles the agent and the `nixfleet` CLI into `outdir` (default dist/agent): nixfleet-agent.mjs, nixfleet.mjs and node-flags. */
export function buildAgent(options?: { outdir?: string }): Promise<Array<BuildResult<{ metafile: true }>>>;
/** The Node flags the agent runs with (written to `node-flags` beside the bundles). */
export const AGENT_NODE_FLAGS: readonly string[];
