/**
 * The start of every browser test that goes through GitHub: the fleet repository seeded into the
 * emulator, the dashboard's control plane told of it, one real browser agent per host cloning from
 * the emulator, every host reporting, then a Chromium page.
 */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { z } from "zod";
import type { FleetRepo } from "../../tools/fleet-kit/fleet-repo.ts";
import { createFleetRepo } from "../../tools/fleet-kit/fleet-repo.ts";
import { isolatedHostEnv } from "../../tools/fleet-kit/host-env.ts";
import type { GitHubEmulator } from "../../tools/github-emulator/emulator.ts";
import { seedFromFleetRepo, startWithGitHub } from "../support/github-fleet.ts";
import { startAgent, type RunningAgent } from "./agents.ts";
import { openBrowser, type BrowserSession } from "./browser.ts";
import { startDashboard, type Dashboard } from "./dashboard.ts";
import { addHostThroughApi, eventually } from "./helpers.ts";
import { removeHostRoot } from "../support/host-root.ts";

export interface GitHubDashboard {
  root: string;
  fleet: FleetRepo;
  github: GitHubEmulator;
  dashboard: Dashboard;
  /** In `hosts`' order. */
  agents: RunningAgent[];
  /** The commit the emulator's main was seeded with. */
  seed: string;
  session: BrowserSession;
  page: Page;
  stop(): Promise<void>;
}

const HostsAnswer = z.object({ hosts: z.array(z.object({ online: z.boolean(), report: z.unknown() })) });
const CommandsAnswer = z.object({ commands: z.array(z.object({ kind: z.string(), state: z.string() })) });

export async function startGitHubDashboard(options: {
  /** Names the temporary folder and the webhook secret and token. */
  name: string;
  hosts: readonly string[];
  /** More of the control plane's variables (rollout sizes, rollback strategy). */
  vars?: Record<string, string>;
  /** The fleet repository's packages (`createFleetRepo`'s default unless told; `{}` for none). */
  packages?: Record<string, string>;
}): Promise<GitHubDashboard> {
  const root = await mkdtemp(join(tmpdir(), `nixfleet-browser-${options.name}-`));
  const env = isolatedHostEnv(root);
  const fleet = await createFleetRepo({ root: join(root, "fleet"), hosts: [...options.hosts], env, ...(options.packages ? { packages: options.packages } : {}) });
  const { emulator: github, controlPlane: dashboard } = await startWithGitHub(
    { workDir: join(root, "github"), webhookSecret: `${options.name}-secret`, token: `github_pat_${options.name.replaceAll("-", "_")}` },
    (githubVars) => startDashboard({ ...githubVars, ...options.vars }),
  );
  const agents: RunningAgent[] = [];
  let session: BrowserSession | undefined;
  const stop = async () => {
    await Promise.all(agents.map((agent) => agent.stop()));
    await session?.close();
    await github.stop();
    await dashboard.stop();
    await removeHostRoot(root);
  };
  try {
    const seed = await seedFromFleetRepo(github, fleet, "initial fleet");
    await eventually("the seed commit to be read", async () => JSON.stringify((await dashboard.api("/api/hosts")).json).includes(`"sha":"${seed}"`));
    for (const host of options.hosts) {
      const { token } = await addHostThroughApi(dashboard, host);
      agents.push(await startAgent({ root, host, token, url: dashboard.url, repoUrl: github.cloneUrl, env }));
    }
    await eventually(`${options.hosts.length} hosts to report`, async () => {
      const { hosts } = HostsAnswer.parse((await dashboard.api("/api/hosts")).json);
      return hosts.length === options.hosts.length && hosts.every((h) => h.online && h.report !== null);
    }, 60_000);
    session = await openBrowser();
    return { root, fleet, github, dashboard, agents, seed, session, page: session.page, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Sends `kind` to every host and waits until each has succeeded; a host whose command fails throws with its agent's log. */
export async function onEveryHost(fleet: Pick<GitHubDashboard, "dashboard" | "agents">, kind: "pull" | "pull-switch", timeoutMs: number): Promise<void> {
  for (const agent of fleet.agents) {
    const sent = await fleet.dashboard.api(`/api/hosts/${agent.host}/commands`, { method: "POST", body: { kind } });
    if (sent.status !== 202) throw new Error(`${kind} on ${agent.host}: ${sent.status} ${JSON.stringify(sent.json)}`);
  }
  await eventually(`${kind} to succeed on every host`, async () => {
    for (const agent of fleet.agents) {
      const { commands } = CommandsAnswer.parse((await fleet.dashboard.api(`/api/hosts/${agent.host}/commands?limit=5`)).json);
      const state = commands.find((command) => command.kind === kind)?.state;
      if (state === "failed" || state === "timed-out") throw new Error(`${kind} on ${agent.host} ${state}:\n${agent.logs().slice(-2000)}`);
      if (state !== "succeeded") return false;
    }
    return true;
  }, timeoutMs);
}
