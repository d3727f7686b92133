/**
 * Gives back what a finished command left behind. V8 keeps garbage until its
 * old generation fills, which on an agent that then idles for hours means
 * megabytes held for nothing (bench:agent, docs/hosts.md). The Nix package
 * runs the agent with `--expose-gc` (AGENT_NODE_FLAGS in
 * scripts/build-agent.mjs) so a full collection can run once the agent has
 * nothing left to do; without the flag (tests, a dev checkout) this does
 * nothing.
 */
export function releaseMemory(): void {
  const gc: unknown = Reflect.get(globalThis, "gc");
  if (typeof gc === "function") gc();
}
