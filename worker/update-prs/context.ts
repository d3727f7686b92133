/**
 * What the update-PR service works with: the GitHub adapter (worker/github/), the database, the
 * clock, and the two objects it tells about changes — the coordinator (dashboards, fleet builds,
 * rollouts) and the automation. Every call to either object from this service goes through here,
 * so the Automation object reaches the coordinator only through the service.
 */
import type { FleetBuildVerdict, RolloutView, Settings } from "../../common/protocol.ts";
import { automation } from "../automation.ts";
import { coordinator } from "../coordinator.ts";
import type { Database } from "../db/client.ts";
import type { PullRequestRecord } from "../db/github.ts";
import { currentSettings } from "../db/settings.ts";
import type { WorkerEnv } from "../env.ts";
import { fleetBuildTrigger } from "../fleet-build/rules.ts";
import { githubContext, type GitHubContext, type GitHubContextOptions } from "../github/context.ts";
import type { Outcome } from "../outcome.ts";

/** The rollout of a merge commit as the service asks the coordinator for it. */
export type RolloutRequest = Parameters<ReturnType<typeof coordinator>["startRollout"]>[0];
/** A rollout planned, nothing sent: what Merge & Deploy checks the fleet build against. */
export type PlanRequest = Parameters<ReturnType<typeof coordinator>["planRollout"]>[0];
export type PlanAnswer = Awaited<ReturnType<ReturnType<typeof coordinator>["planRollout"]>>;

export interface UpdatePrContext extends GitHubContext {
  db: Database;
  /** Tells every dashboard the repository state or the update PRs changed. */
  notifyRepoChanged(): Promise<void>;
  /** A stored update PR opened, moved or closed: its fleet build starts or stops (docs/fleet-build.md). */
  updatePrChanged(pr: PullRequestRecord): Promise<void>;
  /** Lets the automation look at one update PR again (null: every one); never fails the caller. */
  reconsiderAutomation(pr: number | null): Promise<void>;
  /** The fleet build's verdict on this PR's head; null when no build of that head exists. */
  fleetBuildVerdict(pr: PullRequestRecord): Promise<FleetBuildVerdict | null>;
  /** A rollout of this commit among the recent ones (a merge's rollout started before an interruption). */
  rolloutOf(commit: string): Promise<RolloutView | null>;
  startRollout(request: RolloutRequest): Promise<Outcome<{ rollout: RolloutView }>>;
  planRollout(request: PlanRequest): Promise<PlanAnswer>;
  /** The settings in force (D1's saved ones, or the Worker's vars). */
  settings(): Promise<Settings>;
  now(): Date;
}

/** A commit's git tree through the API; null when it cannot be read (the hosts' build results may still say it). */
export async function treeOf(client: GitHubContext["client"], sha: string): Promise<string | null> {
  if (client === null) return null;
  try {
    return (await client.commit(sha)).commit.tree?.sha ?? null;
  } catch (error) {
    console.warn(`github: could not read the tree of ${sha}`, error);
    return null;
  }
}

/** How many recent rollouts are searched for a merge commit's own. */
const RECENT_ROLLOUTS = 50;

export function updatePrContext(env: WorkerEnv, db: Database, options: GitHubContextOptions = {}): UpdatePrContext {
  const github = githubContext(env, db, options);
  return {
    ...github,
    db,
    async notifyRepoChanged() {
      try {
        await coordinator(env).notify({ type: "repo" });
      } catch (error) {
        // Dashboards refetch on their next load; a failed nudge must not fail the change itself.
        console.warn("github: could not notify dashboards", error);
      }
    },
    async updatePrChanged(pr) {
      try {
        // The settings are read only for a PR that may need them.
        if (!pr.isUpdatePr || pr.state === "merged") return;
        const trigger = fleetBuildTrigger(pr, await currentSettings(env, db));
        if (trigger === "cancel") await coordinator(env).cancelFleetBuilds(pr.number, `update PR #${pr.number} closed`);
        if (trigger !== "start") return;
        const headTree = await treeOf(github.client, pr.headSha);
        const started = await coordinator(env).startFleetBuild({ pr: pr.number, headSha: pr.headSha, headTree, actor: `update PR #${pr.number}` });
        if (!started.ok) console.warn(`github: no fleet build of #${pr.number}: ${started.message}`);
      } catch (error) {
        // The PR is stored either way; the cron's next look at it starts the build (once per head).
        console.warn("github: could not start or stop the fleet build", error);
      }
    },
    async reconsiderAutomation(pr) {
      try {
        if (pr === null) await automation(env).reconsiderAll();
        else await automation(env).reconsider(pr);
      } catch (error) {
        // The 5-minute cron reconsiders every update PR: a failed nudge is caught up there.
        console.warn("automation: could not reconsider", pr === null ? "the update PRs" : `#${pr}`, error);
      }
    },
    async fleetBuildVerdict(pr) {
      const build = (await coordinator(env).fleetBuildsFor([pr.number]))[pr.number];
      return build !== undefined && build.headSha === pr.headSha ? build.verdict : null;
    },
    async rolloutOf(commit) {
      const listed = await coordinator(env).listRollouts(RECENT_ROLLOUTS, null);
      return (listed.ok ? listed.rollouts.find((r) => r.commit === commit) : undefined) ?? null;
    },
    startRollout: (request) => coordinator(env).startRollout(request),
    planRollout: (request) => coordinator(env).planRollout(request),
    settings: () => currentSettings(env, db),
    now: () => new Date(),
  };
}

