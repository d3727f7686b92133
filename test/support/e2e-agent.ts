/**
 * Real agent processes for the end-to-end fleets and the benchmarks (`bin/nixfleet-agent.js run`):
 * each host with its own nixos-rebuild shim, state directory and isolated environment under `dir`,
 * cloning the fleet's repository. Killed, not stopped, at the end: what is left of a test run does not
 * matter.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import type { AgentConfigInput } from "../../common/agent-config.ts";
import { isolatedHostEnv } from "../../tools/fleet-kit/host-env.ts";
import { installRebuildShim, type RebuildShim } from "../../tools/fleet-kit/rebuild-shim.ts";
import { adminApi } from "./admin-api.ts";

const AGENT_BIN = fileURLToPath(new URL("../../bin/nixfleet-agent.js", import.meta.url));

export interface E2eAgentOptions {
  dir: string;
  name: string;
  token: string;
  /** The control plane the agent polls. */
  url: string;
  repoUrl: string;
  /** Default "main". */
  branch?: string;
  pollTimeoutSeconds: number;
  /** Rollout priority: lower goes first (the canary). */
  priority?: number;
  tests?: AgentConfigInput["tests"];
  autoTestAfterSwitch?: boolean;
  logLevel?: AgentConfigInput["logLevel"];
  safetyNet?: AgentConfigInput["safetyNet"];
  /** Anything else of the agent's config, over the defaults above (substitute mode, say). */
  config?: Partial<AgentConfigInput>;
}

/** A host's files, written: what any way of running its agent needs. */
export interface E2eHost {
  name: string;
  dir: string;
  configFile: string;
  /** The host's own environment (HOME, git, Nix). */
  env: NodeJS.ProcessEnv;
  shim: RebuildShim;
}

export interface E2eAgent extends E2eHost {
  /** The agent running now, or the last one, once it has ended. */
  process: ChildProcess;
  /** Its stdout and stderr, chunk by chunk, across restarts. */
  log: string[];
}

/** Writes the host's token file, config and nixos-rebuild shim under `dir`. */
export async function writeE2eHost(options: E2eAgentOptions): Promise<E2eHost> {
  const { dir, name } = options;
  const shim = await installRebuildShim(path.join(dir, "shim"));
  const tokenFile = path.join(dir, "token");
  await fs.writeFile(tokenFile, `${options.token}\n`, { mode: 0o600 });
  const config: AgentConfigInput = {
    url: options.url,
    tokenFile,
    hostName: name,
    platform: "nixos",
    repoUrl: options.repoUrl,
    branch: options.branch ?? "main",
    stateDir: path.join(dir, "state"),
    pollTimeoutSeconds: options.pollTimeoutSeconds,
    ...(options.tests === undefined ? {} : { tests: options.tests }),
    ...(options.autoTestAfterSwitch === undefined ? {} : { autoTestAfterSwitch: options.autoTestAfterSwitch }),
    tools: { nixosRebuild: shim.nixosRebuild, activateSystem: shim.activateSystem, detach: "setsid" },
    currentSystemLink: shim.currentSystemLink,
    bootedSystemLink: shim.bootedSystemLink,
    ...(options.priority === undefined ? {} : { rollout: { priority: options.priority } }),
    ...(options.logLevel === undefined ? {} : { logLevel: options.logLevel }),
    ...(options.safetyNet === undefined ? {} : { safetyNet: options.safetyNet }),
    // Evaluates main the moment it moves (no fleet-wide spread), so System is exact as soon as the test looks.
    desired: { evaluate: "local", maxDelaySeconds: 0 },
    ...options.config,
  };
  const configFile = path.join(dir, "agent.json");
  await fs.writeFile(configFile, JSON.stringify(config));
  return { name, dir, configFile, env: isolatedHostEnv(dir), shim };
}

function runAgent(host: E2eHost, log: string[]): ChildProcess {
  const child = spawn(process.execPath, [AGENT_BIN, "run", "--config", host.configFile], { env: host.env, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout?.on("data", (data: Buffer) => log.push(data.toString()));
  child.stderr?.on("data", (data: Buffer) => log.push(data.toString()));
  return child;
}

export async function spawnE2eAgent(options: E2eAgentOptions): Promise<E2eAgent> {
  const host = await writeE2eHost(options);
  const log: string[] = [];
  return { ...host, process: runAgent(host, log), log };
}

/** Adds the host through the admin API, then starts its agent with the token it got. */
export async function enrollE2eAgent(options: Omit<E2eAgentOptions, "token">): Promise<E2eAgent> {
  const { token } = await adminApi(options.url)(z.object({ token: z.string() }), "/api/hosts", { body: { name: options.name, platform: "nixos" } });
  return spawnE2eAgent({ ...options, token });
}

/** Starts the agent again with the same host files (a host coming back), once the last one has ended. */
export function restartE2eAgent(agent: E2eAgent): void {
  if (agent.process.exitCode === null && agent.process.signalCode === null) throw new Error(`${agent.name}'s agent is still running`);
  agent.process = runAgent(agent, agent.log);
}

/** Sends `signal` to each agent still running (SIGKILL unless told), and waits for it to go. */
export async function killE2eAgents(agents: Iterable<E2eAgent>, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
  for (const agent of agents) {
    if (agent.process.exitCode !== null || agent.process.signalCode !== null) continue;
    const exited = new Promise((resolve) => agent.process.once("exit", resolve));
    agent.process.kill(signal);
    await exited;
  }
}

/** The end of each agent's log, for a timed-out wait's message. */
export function tailOfLogs(agents: Iterable<Pick<E2eAgent, "name" | "log">>, chunks: number): string {
  return [...agents].map((agent) => `--- ${agent.name}\n${agent.log.slice(-chunks).join("")}`).join("\n");
}

/** A probe: every one of `count` hosts online and reporting. */
export const everyHostReporting = (url: string, count: number) => async () => {
  const { hosts } = await adminApi(url)(z.object({ hosts: z.array(z.object({ online: z.boolean(), report: z.unknown() })) }), "/api/hosts");
  return hosts.length === count && hosts.every((host) => host.online && Boolean(host.report));
};
