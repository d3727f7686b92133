/**
 * The auto-merge timeline in words, for the update-PR banner:
 * "CI passed 13:05 · auto-merge at 14:05 (in 42 min)", or why it will not merge.
 */
import type { AutomationState, UpdatePrAutomation } from "../../common/protocol.ts";
import { countdown, localClock } from "../../common/text.ts";

/** States in which a person may still act: Merge now and Skip. */
const ACTIONABLE: ReadonlySet<AutomationState> = new Set(["off", "waiting-ci", "waiting-fleet-build", "ci-failed", "fleet-build-failed", "scheduled", "waiting-window", "failed", "skipped"]);

export interface AutomationDisplay {
  /** The one line. */
  line: string;
  tone: "good" | "busy" | "bad" | "muted";
  /** The countdown runs (the element ticks every second). */
  ticking: boolean;
  canMergeNow: boolean;
  canSkip: boolean;
}

export function automationDisplay(a: UpdatePrAutomation, ciPassed: boolean, now: number): AutomationDisplay {
  const passed = a.ciPassedAt !== null ? `CI passed ${localClock(a.ciPassedAt)}` : null;
  const join = (...parts: (string | null)[]) => parts.filter((p) => p !== null).join(" · ");
  const actionable = ACTIONABLE.has(a.state);
  const base = { ticking: false, canMergeNow: actionable && ciPassed, canSkip: actionable && a.state !== "skipped" };
  switch (a.state) {
    case "scheduled":
      return {
        ...base,
        line: join(passed, a.mergeAt !== null ? `auto-merge at ${localClock(a.mergeAt)} (${countdown(a.mergeAt, now)})` : a.reason),
        tone: "busy",
        ticking: a.mergeAt !== null,
      };
    case "merging":
      return { ...base, line: join(passed, "merging…"), tone: "busy" };
    case "merged":
    case "deployed":
      return { ...base, line: a.reason, tone: "good" };
    case "ci-failed":
    case "fleet-build-failed":
    case "failed":
      return { ...base, line: `Will not auto-merge: ${a.reason}`, tone: "bad" };
    default:
      return { ...base, line: join(passed, a.reason), tone: "muted" };
  }
}

/**
 * The automation's word in the Lock cell's tooltip, so a host's row says why the update PR is not
 * being merged by itself (see docs/automation.md "On the dashboard"); null while it is being merged or deployed (the banner shows that).
 */
export function automationLockNote(a: UpdatePrAutomation | null): string | null {
  if (a === null) return null;
  switch (a.state) {
    case "merging":
    case "merged":
    case "deployed":
      return null;
    case "scheduled":
      return a.mergeAt !== null ? `Auto-merge at ${localClock(a.mergeAt)}.` : `Auto-merge: ${a.reason}.`;
    default:
      return a.reason === "" ? null : `Not auto-merged now: ${a.reason}.`;
  }
}

