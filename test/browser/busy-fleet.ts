/**
 * A fleet with everything on show at once, for the layout and accessibility
 * browser tests: the real control plane, the GitHub emulator and three real
 * agents with real Nix; an open update PR whose fleet build failed on one host
 * (nix's long error lines), and a rollout of main held in progress by a
 * canary soak that outlasts any test.
 */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import type { GitHubEmulator } from "../../tools/github-emulator/emulator.ts";
import { createFleetRepo } from "../../tools/fleet-kit/fleet-repo.ts";
import { isolatedHostEnv } from "../../tools/fleet-kit/host-env.ts";
import { everyHostReporting } from "../support/e2e-agent.ts";
import { seedFromFleetRepo, startWithGitHub } from "../support/github-fleet.ts";
import { startAgent, type RunningAgent } from "./agents.ts";
import { startDashboard, type Dashboard } from "./dashboard.ts";
import { addHostThroughApi, eventually } from "./helpers.ts";
import { removeHostRoot } from "../support/host-root.ts";

/** The host whose build of the update fails; a long name, as real fleets have. */
export const FAILING_HOST = "postgres-primary-frankfurt-01";
export const BUSY_HOSTS = ["web1", "web2", FAILING_HOST];

const SECRET = "busy-fleet-browser-secret";
const TOKEN = "github_pat_busy_fleet_browser";

const UpdatePrsAnswer = z.object({
  updatePrs: z.array(
    z.object({
      number: z.number(),
      fleetBuild: z.object({ hosts: z.array(z.object({ name: z.string(), state: z.string(), commandId: z.string().optional() })) }).nullable(),
    }),
  ),
});
const Rollout = z.object({ id: z.string(), state: z.string() });

export interface BusyFleet {
  dashboard: Dashboard;
  /** The failed build's command on FAILING_HOST: its log holds nix's error lines. */
  failedBuildCommand: string;
  stop(): Promise<void>;
}

export async function startBusyFleet(): Promise<BusyFleet> {
  const root = await mkdtemp(join(tmpdir(), "nixfleet-browser-busy-"));
  const agents: RunningAgent[] = [];
  let dashboard: Dashboard | undefined;
  let github: GitHubEmulator | undefined;
  const stop = async () => {
    await Promise.all(agents.map((agent) => agent.stop()));
    await github?.stop();
    await dashboard?.stop();
    await removeHostRoot(root);
  };
  try {
    const env = isolatedHostEnv(root);
    const fleet = await createFleetRepo({ root: join(root, "fleet"), hosts: BUSY_HOSTS, env });
    ({ emulator: github, controlPlane: dashboard } = await startWithGitHub({ workDir: join(root, "github"), webhookSecret: SECRET, token: TOKEN }, (githubVars) =>
      startDashboard({
        ...githubVars,
        // The canary soaks for an hour: the rollout stays in progress for as long as the tests look at it.
        ROLLOUT_CANARY_SOAK_SECONDS: "3600",
        ROLLOUT_WAVE_SIZE: "2",
      }),
    ));
    const plane = dashboard;
    const seed = await seedFromFleetRepo(github, fleet, "initial fleet");
    await eventually("the seed commit to be read", async () => JSON.stringify((await plane.api("/api/hosts")).json).includes(`"sha":"${seed}"`));
    for (const host of BUSY_HOSTS) {
      const { token } = await addHostThroughApi(plane, host);
      agents.push(await startAgent({ root, host, token, url: plane.url, repoUrl: github.cloneUrl, env }));
    }
    await eventually("every host to report", everyHostReporting(plane.url, BUSY_HOSTS.length), 60_000);

    const pr = await github.openPullRequest({
      head: "update_flake_lock_action",
      title: "flake.lock: Update nixpkgs and home-manager to their latest revisions",
      labels: ["automated"],
      files: { "packages/hello.txt": "1.1 40\n", [`hosts/${FAILING_HOST}.txt`]: "fail: the postgresql module refuses to start with the configuration /etc/postgresql/16/main/postgresql.conf" },
      message: "flake.lock: Update",
    });
    await github.setCheckRun(pr.head.sha, { name: "build", status: "completed", conclusion: "failure" });
    await github.flushWebhooks();
    let failedBuildCommand = "";
    await eventually("the update's build to fail on the failing host and pass on the others", async () => {
      const { updatePrs } = UpdatePrsAnswer.parse((await plane.api("/api/update-prs")).json);
      const hosts = updatePrs.find((p) => p.number === pr.number)?.fleetBuild?.hosts ?? [];
      const failed = hosts.find((h) => h.name === FAILING_HOST && h.state === "failed");
      failedBuildCommand = failed?.commandId ?? "";
      return failedBuildCommand !== "" && hosts.filter((h) => h.state === "built").length === BUSY_HOSTS.length - 1;
    }, 120_000);

    const started = await plane.api("/api/rollouts", { method: "POST", body: {} });
    if (started.status !== 201) throw new Error(`starting the rollout of main: ${started.status} ${JSON.stringify(started.json)}`);
    const { rollout } = z.object({ rollout: Rollout }).parse(started.json);
    await eventually("the rollout's canary to soak", async () => {
      const { rollout: now } = z.object({ rollout: Rollout }).parse((await plane.api(`/api/rollouts/${rollout.id}`)).json);
      if (now.state !== "running" && now.state !== "soaking") throw new Error(`the rollout ended: ${now.state}`);
      return now.state === "soaking";
    }, 90_000);
    return { dashboard: plane, failedBuildCommand, stop };
  } catch (error) {
    const logs = agents.map((agent) => `${agent.host}:\n${agent.logs().slice(-1500)}`).join("\n");
    await stop();
    throw new Error(`the busy fleet did not come up: ${error instanceof Error ? error.message : String(error)}\n${logs}`, { cause: error });
  }
}
