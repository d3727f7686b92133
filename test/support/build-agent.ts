// Vitest global setup: the end-to-end and browser tests run the agent through bin/nixfleet-agent.js,
// which runs the bundle when it is current, and test/e2e/bundled-agent.test.ts runs the bundle itself.
import { buildAgent } from "../../scripts/build-agent.mjs";

export default async function setup(): Promise<void> {
  await buildAgent();
}
