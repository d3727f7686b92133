/**
 * The two gates a host passes in a rollout (docs/rollouts.md "Gates"), as verdicts on one event:
 * its pull-switch ended at the rollout's commit, then its next report there shows System and Tests
 * green. The engine (engine.ts) decides what a verdict does to the rollout.
 */
import type { CompartmentState } from "../../common/protocol.ts";
import { shortSha } from "../../common/text.ts";

export const COMMAND_OUTCOMES = ["succeeded", "failed", "cancelled", "timed-out", "lost"] as const;
export type CommandOutcome = (typeof COMMAND_OUTCOMES)[number];

/** The first gate: the host switched to exactly the rollout's commit, or why it failed. */
export type CommandVerdict = { passed: true } | { passed: false; reason: string };

const WHY_NOT: Record<Exclude<CommandOutcome, "succeeded">, string> = {
  failed: "pull-switch failed",
  cancelled: "pull-switch was cancelled",
  "timed-out": "pull-switch timed out",
  lost: "pull-switch lost: the agent restarted or went away mid-command",
};

export function commandVerdict(
  finished: { outcome: CommandOutcome; error: string | null; commitAfter: string | null },
  rolloutCommit: string,
): CommandVerdict {
  if (finished.outcome === "succeeded") {
    if (finished.commitAfter === rolloutCommit) return { passed: true };
    if (finished.commitAfter === null) {
      return { passed: false, reason: "pull-switch succeeded but the agent did not say which commit it switched to" };
    }
    return { passed: false, reason: `switched to ${shortSha(finished.commitAfter)}, not the rollout's ${shortSha(rolloutCommit)}` };
  }
  const detail = finished.error === null || finished.error === "" ? "" : `: ${finished.error}`;
  return { passed: false, reason: `${WHY_NOT[finished.outcome]}${detail}` };
}

/** What a report at the rollout's commit says about the second gate. */
export type HealthVerdict = { kind: "red"; reason: string } | { kind: "green" } | { kind: "waiting"; reason: string };

export function healthVerdict(
  health: { system: CompartmentState; tests: CompartmentState; testsConfigured: boolean; reason: string },
  rolloutCommit: string,
): HealthVerdict {
  const red = health.system === "red" ? "System" : health.tests === "red" ? "Tests" : null;
  if (red !== null) {
    return { kind: "red", reason: `${red} red at ${shortSha(rolloutCommit)}${health.reason === "" ? "" : `: ${health.reason}`}` };
  }
  const testsOk = health.tests === "green" || !health.testsConfigured;
  if (health.system === "green" && testsOk) return { kind: "green" };
  return { kind: "waiting", reason: `waiting for System and Tests green (System ${health.system}, Tests ${health.tests})` };
}
