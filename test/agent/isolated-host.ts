// An agent's view of a host with nothing on it: no Nix, no clone, no control plane reachable, and no
// tool on the PATH, for tests that read what the agent reports (ReportCollector) without a real host.
import * as path from "node:path";
import { AgentConfig, type AgentConfigInput } from "../../common/agent-config.ts";
import { createNodeRunner, type HostRunner } from "../../agent/runner.ts";
import { isolatedHostEnv } from "../../tools/fleet-kit/host-env.ts";

/** A NixOS agent's config whose every path lies under `root`; `overrides` point the links a test sets up. */
export function isolatedAgentConfig(root: string, overrides: Partial<AgentConfigInput> = {}): AgentConfig {
  return AgentConfig.parse({
    url: "http://127.0.0.1:9",
    tokenFile: path.join(root, "token"),
    hostName: "web1",
    platform: "nixos",
    repoUrl: path.join(root, "nowhere.git"),
    stateDir: path.join(root, "state"),
    tools: { nix: path.join(root, "no-nix-here") },
    ...overrides,
  });
}

/** A runner that finds no tool at all, so each value the agent would read from one says why it is missing. */
export function toolLessRunner(root: string): HostRunner {
  return createNodeRunner({ env: { ...isolatedHostEnv(root), PATH: "/nonexistent" } });
}
