/**
 * A control plane wired to the local GitHub emulator for `example/fleet`, the fleet repository of
 * tools/fleet-kit seeded into it, and real agents cloning from it: the start of every end-to-end test,
 * browser fleet and benchmark that goes through GitHub.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { promisify } from "node:util";
import { z } from "zod";
import { RolloutView } from "../../common/protocol.ts";
import { createFleetRepo, type FleetRepo } from "../../tools/fleet-kit/fleet-repo.ts";
import { isolatedHostEnv } from "../../tools/fleet-kit/host-env.ts";
import { GitHubEmulator, type GitHubEmulatorOptions } from "../../tools/github-emulator/emulator.ts";
import { adminApi } from "./admin-api.ts";
import { startControlPlane, type ControlPlane } from "./control-plane.ts";
import { enrollE2eAgent, everyHostReporting, killE2eAgents, type E2eAgent } from "./e2e-agent.ts";
import type { Probe } from "./wait.ts";

const exec = promisify(execFile);

export interface GitHubSide {
  /** The emulator's repository and clones live here. */
  workDir: string;
  webhookSecret: string;
  token: string;
  /** How the emulator sends its webhooks (a test may lose some on the way). */
  fetch?: GitHubEmulatorOptions["fetch"];
}

/**
 * Starts the emulator, then the control plane `start` makes with the GitHub variables that point at
 * it, then tells the emulator where to send webhooks: the emulator binds its port before the control
 * plane is told its URL (a port merely found free could be taken meanwhile). A control plane that
 * does not start stops the emulator.
 */
export async function startWithGitHub<P extends { url: string }>(
  github: GitHubSide,
  start: (githubVars: Record<string, string>) => Promise<P>,
): Promise<{ emulator: GitHubEmulator; controlPlane: P }> {
  const emulator = new GitHubEmulator({ owner: "example", repo: "fleet", workDir: github.workDir, webhookSecret: github.webhookSecret, token: github.token, fetch: github.fetch });
  const apiUrl = await emulator.start();
  try {
    const controlPlane = await start({ GITHUB_REPOSITORY: "example/fleet", GITHUB_WEBHOOK_SECRET: github.webhookSecret, GITHUB_TOKEN: github.token, GITHUB_API_URL: apiUrl });
    emulator.setWebhookUrl(`${controlPlane.url}/webhooks/github`);
    return { emulator, controlPlane };
  } catch (error) {
    await emulator.stop();
    throw error;
  }
}

/** Seeds the emulator with every file of the fleet repository's working clone (flake, lock, hosts, packages); returns the seed commit. */
export async function seedFromFleetRepo(emulator: GitHubEmulator, fleet: FleetRepo, message?: string): Promise<string> {
  const { stdout } = await exec("git", ["ls-files", "-z"], { cwd: fleet.work, env: fleet.env });
  const names = stdout.split("\0").filter((name) => name !== "");
  const files = Object.fromEntries(await Promise.all(names.map(async (name) => [name, await fs.readFile(path.join(fleet.work, name), "utf8")] as const)));
  return emulator.seed(files, message);
}

export interface GitHubFleetOptions {
  /** An empty directory for everything: the fleet repository, the emulator, each host. */
  root: string;
  hosts: readonly string[];
  webhookSecret: string;
  token: string;
  pollTimeoutSeconds: number;
  /** More of the control plane's variables (rollout sizes, notification channels, automation). */
  vars?: Record<string, string>;
  /** The fleet repository's packages (`createFleetRepo`'s default unless told; `{}` for none). */
  packages?: Record<string, string>;
  fetch?: GitHubSide["fetch"];
  /** The agents' log level (bench:rollout reads their debug lines). */
  agentLogLevel?: "debug" | "info";
}

/** What the fleet needs of a control plane: where it answers, and how to stop it. */
export interface Plane {
  url: string;
  stop(): Promise<void>;
}

export interface GitHubFleet<P extends Plane = ControlPlane> {
  cp: P;
  emulator: GitHubEmulator;
  fleet: FleetRepo;
  /** One agent per host, in `hosts`' order, which is also their rollout priority (the first is the canary). */
  agents: E2eAgent[];
  /** Kills the agents, stops the emulator and the control plane. */
  stop(): Promise<void>;
}

/**
 * The fleet the rollout, fleet-build and automation tests and the rollout benchmark start from: the
 * fleet repository seeded into the emulator, the control plane told of it, and one enrolled agent per
 * host cloning from the emulator. It returns once every agent runs; waiting for their first reports is
 * the caller's (with its own timeout). Anything that fails on the way stops what had started.
 */
export async function startGitHubFleet(options: GitHubFleetOptions): Promise<GitHubFleet> {
  return startGitHubFleetOn((vars) => startControlPlane({ vars }), options);
}

/** The same fleet on a control plane `start` makes from its variables (bench:rollout's workerd without the dev proxy). */
export async function startGitHubFleetOn<P extends Plane>(start: (vars: Record<string, string>) => Promise<P>, options: GitHubFleetOptions): Promise<GitHubFleet<P>> {
  const { root, hosts } = options;
  const fleet = await createFleetRepo({ root: path.join(root, "fleet"), hosts: [...hosts], env: isolatedHostEnv(path.join(root, "env")), ...(options.packages ? { packages: options.packages } : {}) });
  const { emulator, controlPlane: cp } = await startWithGitHub(
    { workDir: path.join(root, "github"), webhookSecret: options.webhookSecret, token: options.token, fetch: options.fetch },
    (github) => start({ ...github, POLL_TIMEOUT_SECONDS: String(options.pollTimeoutSeconds), ...options.vars }),
  );
  const agents: E2eAgent[] = [];
  const stop = async () => {
    await killE2eAgents(agents);
    await emulator.stop();
    await cp.stop();
  };
  try {
    await seedFromFleetRepo(emulator, fleet);
    await adminApi(cp.url)(z.unknown(), "/api/repo/refresh", { body: {} });
    for (const [index, name] of hosts.entries()) {
      agents.push(await enrollE2eAgent({ dir: path.join(root, name), name, url: cp.url, repoUrl: emulator.cloneUrl, pollTimeoutSeconds: options.pollTimeoutSeconds, priority: index, ...(options.agentLogLevel ? { logLevel: options.agentLogLevel } : {}) }));
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { cp, emulator, fleet, agents, stop };
}

/**
 * Waits for every agent's first report, then deploys main to the whole fleet and waits for that rollout to
 * succeed: each host runs the fleet's configuration, so what a test does next has a running system to change.
 */
export async function deployMainEverywhere(fleet: GitHubFleet, eventually: <T>(what: string, probe: Probe<T>) => Promise<T>): Promise<RolloutView> {
  const call = adminApi(fleet.cp.url);
  await eventually(`${fleet.agents.length} hosts to report`, everyHostReporting(fleet.cp.url, fleet.agents.length));
  const { rollout } = await call(z.object({ rollout: RolloutView }), "/api/rollouts", { body: {} });
  const done = await eventually(`the first deploy ${rollout.id} to end`, async () => {
    const view = (await call(z.object({ rollout: RolloutView }), `/api/rollouts/${rollout.id}`)).rollout;
    return view.finishedAt ? view : null;
  });
  if (done.state !== "succeeded") throw new Error(`the first deploy ${rollout.id} ended ${done.state}: ${JSON.stringify(done.failure ?? null)}`);
  return done;
}
