/**
 * A real agent process for the end-to-end fleets (`bin/nixfleet-agent.js run`), enrolled already:
 * its own nixos-rebuild shim, state directory and isolated environment under `dir`, cloning the
 * emulator's repository. Killed, not stopped, at the end: what is left of a test run does not matter.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import type { AgentConfigInput } from "../../common/agent-config.ts";
import { isolatedHostEnv } from "../../tools/fleet-kit/host-env.ts";
import { installRebuildShim } from "../../tools/fleet-kit/rebuild-shim.ts";

const AGENT_BIN = fileURLToPath(new URL("../../bin/nixfleet-agent.js", import.meta.url));

export interface E2eAgent {
  name: string;
  process: ChildProcess;
  /** Its stdout and stderr, chunk by chunk. */
  log: string[];
}

export async function spawnE2eAgent(options: {
  dir: string;
  name: string;
  token: string;
  url: string;
  repoUrl: string;
  pollTimeoutSeconds: number;
  /** Rollout priority: lower goes first (the canary). */
  priority: number;
}): Promise<E2eAgent> {
  const { dir, name } = options;
  const shim = await installRebuildShim(path.join(dir, "shim"));
  await fs.writeFile(path.join(dir, "token"), `${options.token}\n`, { mode: 0o600 });
  const config: AgentConfigInput = {
    url: options.url,
    tokenFile: path.join(dir, "token"),
    hostName: name,
    platform: "nixos",
    repoUrl: options.repoUrl,
    branch: "main",
    stateDir: path.join(dir, "state"),
    pollTimeoutSeconds: options.pollTimeoutSeconds,
    tools: { nixosRebuild: shim.nixosRebuild, detach: "setsid" },
    currentSystemLink: shim.currentSystemLink,
    rollout: { priority: options.priority },
  };
  const configFile = path.join(dir, "agent.json");
  await fs.writeFile(configFile, JSON.stringify(config));
  const child = spawn(process.execPath, [AGENT_BIN, "run", "--config", configFile], { env: isolatedHostEnv(dir), stdio: ["ignore", "pipe", "pipe"] });
  const log: string[] = [];
  child.stdout?.on("data", (data: Buffer) => log.push(data.toString()));
  child.stderr?.on("data", (data: Buffer) => log.push(data.toString()));
  return { name, process: child, log };
}

/** SIGKILL each agent still running, and wait for it to go. */
export async function killE2eAgents(agents: Iterable<E2eAgent>): Promise<void> {
  for (const agent of agents) {
    if (agent.process.exitCode !== null || agent.process.signalCode !== null) continue;
    const exited = new Promise((resolve) => agent.process.once("exit", resolve));
    agent.process.kill("SIGKILL");
    await exited;
  }
}
