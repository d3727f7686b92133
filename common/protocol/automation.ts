import * as z from "zod";
import { Sha1 } from "./hosts.ts";

// ---------------------------------------------------------------------------
// Auto-merge (worker/automation/, scheduled by the Automation object)

export const AUTOMATION_STATES = [
  /** Automation off, or the feature off: nothing will happen by itself. */
  "off",
  "waiting-ci",
  "waiting-fleet-build",
  "ci-failed",
  "fleet-build-failed",
  /** CI green: merges at `mergeAt`. */
  "scheduled",
  "waiting-window",
  "merging",
  "merged",
  /** Merged and its rollout started (`rolloutId`). */
  "deployed",
  /** A person chose Skip this PR (for this head). */
  "skipped",
  /** GitHub refused the merge, or the PR changed under the alarm: `reason` says. */
  "failed",
] as const;
export const AutomationState = z.enum(AUTOMATION_STATES);
export type AutomationState = z.infer<typeof AutomationState>;

/** What the automation will do with an update PR, for the banner's timeline. */
export const UpdatePrAutomation = z.object({
  state: AutomationState,
  headSha: Sha1,
  ciPassedAt: z.string().nullable(),
  mergeAt: z.string().nullable(),
  /** Plain words: why it waits, why it will not merge, what moved the schedule. */
  reason: z.string(),
  mergeCommitSha: Sha1.nullable(),
  rolloutId: z.string().nullable(),
  /** Newest last: "CI passed", "merge scheduled for 14:05", "rescheduled: new commit 1a2b3c4", "skipped by alice". */
  timeline: z.array(z.object({ at: z.string(), text: z.string() })).max(50),
  /** The setting in force (`automation.requireCi`): off, the banner says "CI not required". */
  ciRequired: z.boolean().default(true),
  /** With CI required: when a head with no check or status yet reads "no CI seen" (`automation.ciMissingAfterMinutes` after it was first seen). */
  ciExpectedBy: z.string().nullable().default(null),
});
export type UpdatePrAutomation = z.infer<typeof UpdatePrAutomation>;
