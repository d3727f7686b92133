/**
 * CI state of a commit from everything GitHub reports about it: check runs,
 * check suites, commit statuses and workflow runs. Any failure → failure,
 * else any pending → pending, else success; nothing reported → unknown.
 */
import type { CiState } from "../../common/protocol.ts";

export type CheckKind = "check_run" | "check_suite" | "status" | "workflow_run";
export type CheckOutcome = "pending" | "success" | "failure";

/** One CI signal on a commit, as stored. */
export interface CommitCheck {
  sha: string;
  kind: CheckKind;
  /** Check run name in its suite (`checkRunKey`), check suite / workflow run id, or the status context. */
  name: string;
  outcome: CheckOutcome;
  /** Higher wins: webhooks arrive out of order (see migrations/0002_github.sql). */
  ordinal: number;
  updatedAt: string;
}

// neutral and skipped do not block a merge on GitHub, so they do not block here.
const PASSING = new Set(["success", "neutral", "skipped"]);

/** A check run's, suite's or workflow run's `status` + `conclusion`. */
export function conclusionOutcome(status: string | null, conclusion: string | null): CheckOutcome {
  if (status !== "completed" && conclusion === null) return "pending";
  // failure, cancelled, timed_out, action_required, startup_failure, stale: not a pass.
  return conclusion !== null && PASSING.has(conclusion) ? "success" : "failure";
}

/** A commit status's `state` (error counts as failure). */
export function statusOutcome(state: "pending" | "success" | "failure" | "error"): CheckOutcome {
  return state === "pending" ? "pending" : state === "success" ? "success" : "failure";
}

/**
 * A check run is stored under its name within its suite, not its id: re-running a failed job makes a
 * new check run (a new id) of the same name in the same suite, which must replace the failed one, as
 * on GitHub's own pull request page. Without the suite (never seen from GitHub), the name alone.
 */
export function checkRunKey(run: { name: string; check_suite?: { id: number } | null }): string {
  return run.check_suite ? `${run.name} (suite ${run.check_suite.id})` : run.name;
}

/**
 * Orders the check runs stored under one key: a newer run (GitHub's ids grow) wins over an older one,
 * and within one run, once completed, a late "created" does not undo it.
 */
export const checkRunOrdinal = (id: number, status: string | null): number => id * 2 + (status === "completed" ? 1 : 0);

/** Orders updates by the object's own timestamp; unparseable → the time we received it. */
export function timeOrdinal(iso: string | null | undefined, receivedAt: Date): number {
  const ms = iso ? Date.parse(iso) : Number.NaN;
  return Number.isNaN(ms) ? receivedAt.getTime() : ms;
}

export function combineCiState(outcomes: Iterable<CheckOutcome>): CiState {
  let any = false;
  let pending = false;
  for (const outcome of outcomes) {
    any = true;
    if (outcome === "failure") return "failure";
    if (outcome === "pending") pending = true;
  }
  return !any ? "unknown" : pending ? "pending" : "success";
}
