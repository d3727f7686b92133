/**
 * Real agent processes (`bin/nixfleet-agent.js run --config FILE`) for the
 * browser tests, each with its own nixos-rebuild shim and state directory,
 * cloning the test fleet repository (a bare repository with a tiny flake).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { AgentConfigInput } from "../../common/agent-config.ts";
import { installRebuildShim, type RebuildShim } from "../../tools/fleet-kit/rebuild-shim.ts";

const AGENT_BIN = fileURLToPath(new URL("../../bin/nixfleet-agent.js", import.meta.url));

export interface RunningAgent {
  host: string;
  shim: RebuildShim;
  logs(): string;
  stop(): Promise<void>;
}

export async function startAgent(options: {
  root: string;
  host: string;
  token: string;
  url: string;
  /** The bare repository to clone (the GitHub emulator's). */
  repoUrl: string;
  env: NodeJS.ProcessEnv;
}): Promise<RunningAgent> {
  const dir = join(options.root, `agent-${options.host}`);
  await mkdir(dir, { recursive: true });
  const shim = await installRebuildShim(join(dir, "shim"));
  const tokenFile = join(dir, "token");
  await writeFile(tokenFile, `${options.token}\n`, { mode: 0o600 });
  const config: AgentConfigInput = {
    url: options.url,
    tokenFile,
    hostName: options.host,
    platform: "nixos",
    repoUrl: options.repoUrl,
    branch: "main",
    stateDir: join(dir, "state"),
    pollTimeoutSeconds: 5,
    tools: { nixosRebuild: shim.nixosRebuild, activateSystem: shim.activateSystem, detach: "setsid" },
    currentSystemLink: shim.currentSystemLink,
    bootedSystemLink: shim.bootedSystemLink,
    tests: { commands: [{ name: "system responds", command: "true" }] },
    logLevel: "debug",
    // Evaluates main the moment it moves (no fleet-wide spread): the System column is exact at once.
    desired: { evaluate: "local", maxDelaySeconds: 0 },
  };
  const configFile = join(dir, "agent.json");
  await writeFile(configFile, JSON.stringify(config, null, 2));
  const output: string[] = [];
  const child: ChildProcess = spawn(process.execPath, [AGENT_BIN, "run", "--config", configFile], {
    // Nix's caches of its own, as on a host of its own: agents that share one evaluate against one SQLite
    // eval cache, and a build then fails with "error (ignored): … eval-cache … is busy" as its first line.
    env: { ...options.env, XDG_CACHE_HOME: join(dir, "cache") },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.on("data", (data: Buffer) => output.push(data.toString()));
  child.stderr?.on("data", (data: Buffer) => output.push(data.toString()));
  return {
    host: options.host,
    shim,
    logs: () => output.join(""),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
