/**
 * One test's world: a temp directory, an isolated host environment, the fleet
 * repository (bare origin + tiny flake), the nixos-rebuild shim, a fake
 * control plane, and the real Agent wired to all of them with the real
 * node runner. Agents can be stopped and started again on the same state dir.
 */
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import type { AgentConfigInput } from "../../common/agent-config.ts";
import { Agent } from "../../agent/agent.ts";
import { createLogger } from "../../agent/logger.ts";
import { createNodeRunner, type HostRunner } from "../../agent/runner.ts";
import { createFleetRepo, type FleetRepo } from "../../tools/fleet-kit/fleet-repo.ts";
import { isolatedHostEnv } from "../../tools/fleet-kit/host-env.ts";
import { installRebuildShim, type RebuildShim } from "../../tools/fleet-kit/rebuild-shim.ts";
import { FakeControlPlane } from "./fake-control-plane.ts";
import { removeHostRoot } from "../support/host-root.ts";

/** The agent's entry: the safety net's watchdog runs it as a process of its own, as the packaged agent does. */
export const AGENT_BIN = fileURLToPath(new URL("../../bin/nixfleet-agent.js", import.meta.url));

export interface HarnessOptions {
  host?: string;
  /** Lock the fleet flake with nix (needs nix). Default true. */
  lock?: boolean;
  config?: Partial<AgentConfigInput>;
  /** Host tools beside the rebuild shim the harness installs (a fake systemctl, say). */
  tools?: Partial<NonNullable<AgentConfigInput["tools"]>>;
  /** How long the fake control plane holds a poll at most. */
  holdCapSeconds?: number;
  /** Wraps the real runner the agent gets (to record what it runs on the host, say). */
  wrapRunner?: (runner: HostRunner) => HostRunner;
  /** How often the agent looks at a detached job's files. Default 50 ms. */
  jobPollIntervalMs?: number;
  /** Directories put first on the PATH of everything the agent runs (a recording `nix` wrapper, say). */
  pathFirst?: string[];
  /** Runs every nix command (the agent's and the test's) on a store of its own under this root, so a real gc collects only it. */
  nixStoreRoot?: string;
  /** More of nix.conf for every nix command (a binary cache as substituter, say), after the isolated host's. */
  nixConfig?: string;
  /** The agent's randomness (backoff jitter, the desired system's evaluation delay); Math.random unless told. */
  random?: () => number;
}

export interface Harness {
  root: string;
  env: NodeJS.ProcessEnv;
  runner: HostRunner;
  fleet: FleetRepo;
  shim: RebuildShim;
  plane: FakeControlPlane;
  config: AgentConfigInput;
  stateDir: string;
  logs: string[];
  agent: Agent | null;
  restarts: number;
  /** Starts a new Agent on the same state dir (stop the previous one first). */
  startAgent(config?: Partial<AgentConfigInput>): Promise<Agent>;
  stopAgent(): Promise<void>;
  /** Queues a command and waits for its finished event. */
  run(kind: Parameters<FakeControlPlane["queue"]>[0], options?: Parameters<FakeControlPlane["queue"]>[1] & { timeoutMs?: number }): Promise<{ id: string; finished: NonNullable<ReturnType<FakeControlPlane["finished"]>> }>;
  cleanup(): Promise<void>;
}

/** A `wrapRunner` that records, in order, the argv of every command the agent runs on the host into `ran`. */
export const recordingRuns =
  (ran: string[][]) =>
  (runner: HostRunner): HostRunner => ({
    ...runner,
    run: (argv, options) => {
      ran.push([...argv]);
      return runner.run(argv, options);
    },
  });

export async function createHarness(options: HarnessOptions = {}): Promise<Harness> {
  const host = options.host ?? "web1";
  const root = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-agent-test-"));
  const hostEnv = isolatedHostEnv(root);
  const env: NodeJS.ProcessEnv = { ...hostEnv, PATH: [...(options.pathFirst ?? []), hostEnv.PATH].join(path.delimiter) };
  if (options.nixConfig !== undefined) env.NIX_CONFIG = `${env.NIX_CONFIG ?? ""}${options.nixConfig}`;
  if (options.nixStoreRoot !== undefined) env.NIX_CONFIG = `${env.NIX_CONFIG ?? ""}store = local?root=${options.nixStoreRoot}\n`;
  const realRunner = createNodeRunner({ env, killGraceMs: 2_000 });
  const runner = options.wrapRunner?.(realRunner) ?? realRunner;
  const fleet = await createFleetRepo({ root: path.join(root, "fleet"), hosts: [host, "db1"], env, lock: options.lock });
  const shim = await installRebuildShim(path.join(root, "shim"));
  const plane = await FakeControlPlane.start({ holdCapSeconds: options.holdCapSeconds ?? 2 });
  const tokenFile = path.join(root, "agent-token");
  await fs.writeFile(tokenFile, `${plane.token}\n`);
  const stateDir = path.join(root, "agent-state");
  const logs: string[] = [];

  const config: AgentConfigInput = {
    url: plane.url,
    tokenFile,
    hostName: host,
    platform: "nixos",
    repoUrl: fleet.origin,
    branch: fleet.branch,
    stateDir,
    pollTimeoutSeconds: 5,
    tools: { nixosRebuild: shim.nixosRebuild, activateSystem: shim.activateSystem, detach: "setsid", ...options.tools },
    currentSystemLink: shim.currentSystemLink,
    bootedSystemLink: shim.bootedSystemLink,
    logLevel: "debug",
    // Other behaviour's tests run no evaluation of main in the background (it would add to what they
    // count and time); test/agent/desired.test.ts sets "local".
    desired: { evaluate: "ci" },
    ...options.config,
  };

  const harness: Harness = {
    root,
    env,
    runner,
    fleet,
    shim,
    plane,
    config,
    stateDir,
    logs,
    agent: null,
    restarts: 0,
    async startAgent(overrides = {}) {
      const agent = new Agent({
        config: { ...config, ...overrides },
        runner,
        logger: createLogger({
          level: "debug",
          write: (line) => {
            logs.push(line);
            if (process.env.NIXFLEET_TEST_LOGS === "1") process.stderr.write(`${line}\n`);
          },
        }),
        backoff: { initialMs: 50, maxMs: 400 },
        jobPollIntervalMs: options.jobPollIntervalMs ?? 50,
        onRestartRequested: () => {
          harness.restarts++;
        },
        watchdogCommand: [process.execPath, AGENT_BIN],
        ...(options.random ? { random: options.random } : {}),
      });
      await agent.start();
      harness.agent = agent;
      return agent;
    },
    async stopAgent() {
      await harness.agent?.stop();
      harness.agent = null;
    },
    async run(kind, runOptions = {}) {
      const { timeoutMs: _timeoutMs, ...queueOptions } = runOptions;
      const id = plane.queue(kind, queueOptions);
      const finished = await plane.waitForFinished(id, runOptions.timeoutMs);
      return { id, finished };
    },
    async cleanup() {
      await harness.stopAgent();
      await plane.close();
      await removeHostRoot(root);
    },
  };
  return harness;
}

/**
 * Whether every process of a group is gone, judged as the agent judges a process-group job (zombies count as
 * gone). Its leader gone is not enough: the other members of a group killed at once may still be exiting.
 */
export async function groupGone(pgid: number): Promise<boolean> {
  return !(await createNodeRunner().isJobAlive({ mode: "process-group", pgid }));
}

/** Whether a process is gone (a zombie waiting for its reaper counts as gone). */
export async function processGone(pid: number): Promise<boolean> {
  try {
    const status = await fs.readFile(`/proc/${pid}/status`, "utf8");
    return /^State:\s+Z/m.test(status);
  } catch {
    return true;
  }
}
