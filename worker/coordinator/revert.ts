/**
 * Reverts of a rollout's commit: the automatic one a failed rollout's rollback strategy asks for, and
 * the one a person asks for from the Update history (`POST /api/rollouts/:id/revert`). Either is a
 * `revert` effect in the outbox, opened on GitHub when carried out, its outcome fed back to the rollout
 * as a step of its own. A rollout whose revert is no longer `requested` (opened or failed) is not asked
 * again, so a retry after an eviction opens nothing twice once the outcome is stored.
 */
import { shortSha } from "../../common/text.ts";
import type { Database } from "../db/client.ts";
import type { WorkerEnv } from "../env.ts";
import { githubContext, requireClient, requireRepository } from "../github/context.ts";
import { GitHubPushRefusedError, GitHubRevertConflictError } from "../github/errors.ts";
import { revertEvent } from "../notifications/events.ts";
import type { RolloutEvent } from "../rollouts/engine.ts";
import { auditEffect, type Effect } from "./effects.ts";
import type { CoordinatorHost } from "./host.ts";
import { step, type Step } from "./step.ts";

export type RevertEffect = Extract<Effect, { type: "revert" }>;
export type RevertOutcome = Extract<RolloutEvent, { type: "revert-opened" | "revert-failed" }>;
/** An opened revert commit names its sha: the shell deploys it when a person asked for the revert. */
export type OpenedRevert = RevertOutcome | (Extract<RevertOutcome, { type: "revert-opened" }> & { sha: string });

/**
 * Opens the revert on GitHub; every failure becomes the rollout's `revert-failed`. A revert commit the
 * branch's protection refuses becomes a revert PR, saying so. A revert that does not apply (a later
 * commit changed the same file): a person's revert PR is branched from the reverted commit, so GitHub
 * shows the conflict for someone to resolve; a revert commit fails, naming the commit before the update.
 */
export async function openRevert(env: WorkerEnv, db: Database, revert: RevertEffect): Promise<OpenedRevert> {
  const ctx = githubContext(env, db);
  const branch = ctx.config.branch;
  const title = revert.by === null ? `rollout ${revert.rolloutId} failed` : `asked for by ${revert.by}`;
  try {
    const client = requireClient(ctx);
    const repository = requireRepository(ctx);
    const openPull = async (note: string | undefined): Promise<OpenedRevert> => {
      const pull = await client.createRevertPull({
        commitSha: revert.commit,
        base: branch,
        title: `Revert ${revert.pr === null ? shortSha(revert.commit) : `#${revert.pr}`}: ${title}`,
        conflicting: revert.by === null ? "refuse" : "propose",
      });
      if (pull.labelProblem !== null) console.warn(`github: revert PR #${pull.number} has no label of its own (its branch still marks it): ${pull.labelProblem}`);
      const conflict = pull.conflict === null ? undefined : `${pull.conflict.paths.join(", ")} changed on ${branch} after ${shortSha(revert.commit)}: the revert PR needs a person to resolve the conflict`;
      const said = [note, conflict].filter((part) => part !== undefined).join("; ");
      return { type: "revert-opened", kind: "revert-pr", url: pull.url, ...(said === "" ? {} : { note: said }) };
    };
    if (revert.strategy === "revert-pr") return await openPull(undefined);
    try {
      const reverted = await client.revertCommit({ commitSha: revert.commit, branch });
      return { type: "revert-opened", kind: "revert-commit", url: commitUrl(ctx.config.apiUrl, repository.fullName, reverted.sha), sha: reverted.sha };
    } catch (error) {
      if (error instanceof GitHubPushRefusedError) return await openPull(`GitHub refused the push to ${branch} (${error.githubMessage}); a revert PR was opened instead`);
      if (error instanceof GitHubRevertConflictError) {
        const error_ = `${error.paths.join(", ")} changed on ${branch} after ${shortSha(revert.commit)}, so its revert does not apply: open a revert PR for a person to resolve, or deploy ${shortSha(error.before)}, the commit before it`;
        return { type: "revert-failed", error: error_, before: error.before };
      }
      throw error;
    }
  } catch (error) {
    return { type: "revert-failed", error: error instanceof Error ? error.message : String(error) };
  }
}

export class Revert {
  private readonly host: CoordinatorHost;

  constructor(host: CoordinatorHost) {
    this.host = host;
  }

  /**
   * The revert's outcome: the rollout hears it (a reaction), an audit entry follows, and for the
   * automatic revert after a failure a notification (a person's revert is theirs to tell).
   */
  outcome(revert: RevertEffect, event: RevertOutcome): Step<undefined> {
    const now = this.host.now();
    this.host.react({ type: "rollout-event", rolloutId: revert.rolloutId, event });
    if (event.type === "revert-opened" && revert.by === null) {
      this.host.effect({ type: "notify", event: revertEvent({ id: revert.rolloutId, commit: revert.commit, pr: revert.pr }, event, new Date(now)) });
    }
    const details =
      event.type === "revert-opened"
        ? { kind: event.kind, url: event.url, note: event.note ?? null, rollout: event.rollout ?? null }
        : { error: event.error, before: event.before ?? null };
    this.host.effect(auditEffect(now, revert.by ?? `rollout ${revert.rolloutId}`, `rollout.${event.type}`, revert.rolloutId, details));
    return step();
  }
}

/** The web page of a commit: GitHub's site for api.github.com, the API's own origin otherwise (GitHub Enterprise, the emulator). */
function commitUrl(apiUrl: string, fullName: string, sha: string): string {
  const origin = /^https:\/\/api\.github\.com\/?$/.test(apiUrl) ? "https://github.com" : new URL(apiUrl).origin;
  return `${origin}/${fullName}/commit/${sha}`;
}
