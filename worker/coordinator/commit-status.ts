/**
 * The commit status `nixfleet/fleet-build` on an update PR's head. The fleet-build runner writes a
 * `commit-status` effect when a build's summary differs from the last one GitHub took; the outbox
 * carries the effects out one after another, so GitHub never receives an older state last. The post
 * reads the build when it is carried out, and its outcome is stored on the build read again afterwards.
 */
import type { WorkerEnv } from "../env.ts";
import type { Database } from "../db/client.ts";
import type { FleetBuildStore } from "../db/coordinator/fleet-builds.ts";
import { FLEET_BUILD_CONTEXT, statusToPost, toFleetBuildView, type FleetBuildRecord, type GitHubStatusRecord } from "../fleet-build/rules.ts";
import { githubContext, requireClient } from "../github/context.ts";
import type { CoordinatorHost } from "./host.ts";
import { step, type Step } from "./step.ts";

export class CommitStatus {
  private readonly host: CoordinatorHost;
  private readonly store: FleetBuildStore;

  constructor(host: CoordinatorHost, store: FleetBuildStore) {
    this.host = host;
    this.store = store;
  }

  /** The build and the status it needs GitHub to show, or null when GitHub shows it already. */
  due(buildId: string): { build: FleetBuildRecord; status: NonNullable<ReturnType<typeof statusToPost>> } | null {
    const build = this.store.fleetBuild(buildId);
    const status = build ? statusToPost(build) : null;
    return build && status ? { build, status } : null;
  }

  /** Read again: the build may have moved while the post was out; a move wrote its own post. */
  record(buildId: string, outcome: GitHubStatusRecord): Step<undefined> {
    const latest = this.store.fleetBuild(buildId);
    if (!latest) return step();
    const next = { ...latest, githubStatus: outcome };
    this.store.saveFleetBuild(next);
    this.host.broadcast({ type: "fleet-build", build: toFleetBuildView(next) });
    return step();
  }
}

/** Posts the status; the outcome says when GitHub took it, or why not (kept on the build for the dashboard). */
export async function postCommitStatus(
  env: WorkerEnv,
  db: Database,
  due: { build: FleetBuildRecord; status: NonNullable<ReturnType<typeof statusToPost>> },
): Promise<GitHubStatusRecord> {
  const { build, status } = due;
  try {
    const client = requireClient(githubContext(env, db));
    const dashboard = env.DASHBOARD_URL?.trim();
    await client.createCommitStatus(build.headSha, {
      state: status.state,
      context: FLEET_BUILD_CONTEXT,
      description: status.description,
      ...(dashboard ? { targetUrl: `${dashboard.replace(/\/+$/, "")}/` } : {}),
    });
    return { ...status, postedAt: new Date().toISOString(), error: null };
  } catch (error) {
    return { ...status, postedAt: build.githubStatus?.postedAt ?? null, error: error instanceof Error ? error.message : String(error) };
  }
}
