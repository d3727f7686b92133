/**
 * The revert a failed rollout's rollback strategy asks for: a `revert` effect in the outbox, opened on
 * GitHub when carried out, its outcome fed back to the rollout as a step of its own. A rollout whose
 * revert is no longer `requested` (opened or failed) is not asked again, so a retry after an eviction
 * opens nothing twice once the outcome is stored.
 */
import { shortSha } from "../../common/text.ts";
import type { Database } from "../db/client.ts";
import type { WorkerEnv } from "../env.ts";
import { githubContext, requireClient, requireRepository } from "../github/context.ts";
import { revertEvent } from "../notifications/events.ts";
import type { RolloutEvent } from "../rollouts/engine.ts";
import { auditEffect, type Effect } from "./effects.ts";
import type { CoordinatorHost } from "./host.ts";
import { step, type Step } from "./step.ts";

type RevertEffect = Extract<Effect, { type: "revert" }>;

/** Opens the revert on GitHub; every failure becomes the rollout's `revert-failed`. */
export async function openRevert(env: WorkerEnv, db: Database, revert: RevertEffect): Promise<Extract<RolloutEvent, { type: "revert-opened" | "revert-failed" }>> {
  const ctx = githubContext(env, db);
  try {
    const client = requireClient(ctx);
    const repository = requireRepository(ctx);
    if (revert.strategy === "revert-pr") {
      const pull = await client.createRevertPull({
        commitSha: revert.commit,
        base: ctx.config.branch,
        title: `Revert ${revert.pr === null ? shortSha(revert.commit) : `#${revert.pr}`}: rollout ${revert.rolloutId} failed`,
      });
      if (pull.labelProblem !== null) console.warn(`github: revert PR #${pull.number} has no label of its own (its branch still marks it): ${pull.labelProblem}`);
      return { type: "revert-opened", kind: "revert-pr", url: pull.url };
    }
    const reverted = await client.revertCommit({ commitSha: revert.commit, branch: ctx.config.branch });
    return { type: "revert-opened", kind: "revert-commit", url: commitUrl(ctx.config.apiUrl, repository.fullName, reverted.sha) };
  } catch (error) {
    return { type: "revert-failed", error: error instanceof Error ? error.message : String(error) };
  }
}

export class Revert {
  private readonly host: CoordinatorHost;

  constructor(host: CoordinatorHost) {
    this.host = host;
  }

  /** The revert's outcome: the rollout hears it (a reaction), a notification and an audit entry follow. */
  outcome(revert: RevertEffect, event: Extract<RolloutEvent, { type: "revert-opened" | "revert-failed" }>): Step<undefined> {
    const now = this.host.now();
    this.host.react({ type: "rollout-event", rolloutId: revert.rolloutId, event });
    if (event.type === "revert-opened") {
      this.host.effect({ type: "notify", event: revertEvent({ id: revert.rolloutId, commit: revert.commit, pr: revert.pr }, event, new Date(now)) });
    }
    const details = event.type === "revert-opened" ? { url: event.url } : { error: event.error };
    this.host.effect(auditEffect(now, `rollout ${revert.rolloutId}`, `rollout.${event.type}`, revert.rolloutId, details));
    return step();
  }
}

/** The web page of a commit: GitHub's site for api.github.com, the API's own origin otherwise (GitHub Enterprise, the emulator). */
function commitUrl(apiUrl: string, fullName: string, sha: string): string {
  const origin = /^https:\/\/api\.github\.com\/?$/.test(apiUrl) ? "https://github.com" : new URL(apiUrl).origin;
  return `${origin}/${fullName}/commit/${sha}`;
}
