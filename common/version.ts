/**
 * The version this control plane ships, and so the agent version it expects
 * (Agent compartment). Kept equal to package.json's by test/common/version.test.ts.
 */
export const NIXFLEET_VERSION = "0.1.0";
