/**
 * The auto-merge rules (issue #11, "The flow"): given an update PR as last
 * seen, its CI, its fleet build, the settings, what was stored for it and the
 * time, what the automation does next. Pure: the Automation object
 * (worker/objects/automation.ts) is the I/O around it.
 */
import type {
  AutomationState,
  CiState,
  FleetBuildVerdict,
  NotificationEventName,
  Settings,
  UpdatePrAutomation,
} from "../../common/protocol.ts";
import { nextOpeningOf } from "../rollouts/windows.ts";
import { shortSha } from "../../common/text.ts";

/** Kept per update PR in the object's storage: the view the banner shows, plus what the rules remember. */
export interface AutomationRecord extends Omit<UpdatePrAutomation, "ciRequired" | "ciExpectedBy"> {
  pr: number;
  /** When the alarm must look at this PR again (mergeAt, or a window's opening); null: nothing timed. */
  wakeAt: string | null;
  /** The head a person skipped: left alone until the head moves. */
  skippedHead: string | null;
  /** The head whose CI failure was announced, so each head is announced once. */
  ciFailedHead: string | null;
  /** The merge was scheduled and announced for this head and time. */
  scheduledAnnounced: string | null;
  /** When this head was first seen: the delay's start when CI is not required. */
  headSeenAt: string;
}

/** The update PR as the rules need it. */
export interface AutomationPr {
  number: number;
  title: string;
  url: string;
  state: "open" | "closed" | "merged";
  headSha: string;
  /** Still an update PR (its label or title); false once the label is removed. */
  isUpdatePr: boolean;
  /** A newer open update PR's number, or null. */
  supersededBy: number | null;
  /** GitHub's mergeability; null while GitHub computes it. */
  mergeable: boolean | null;
  mergeCommitSha: string | null;
}

export interface FailingCheck {
  name: string;
  url: string | null;
}

export interface AutomationInput {
  pr: AutomationPr;
  ci: CiState;
  /** The checks that failed on the head, for the ci-failed notification. */
  failingChecks?: FailingCheck[];
  fleetBuild: FleetBuildVerdict | null;
  settings: Settings;
  stored: AutomationRecord | null;
  now: Date;
  /** The alarm's re-read from GitHub: only then may the rules merge. */
  atAlarm?: boolean;
  /** A person's Merge now: merge without waiting for the delay or a window. */
  mergeNow?: { actor: string };
}

export type AutomationAction =
  | { type: "schedule"; at: string }
  | { type: "cancel" }
  | { type: "notify"; event: NotificationEventName; id: string; title: string; text: string; details: Record<string, unknown> }
  | { type: "merge"; headSha: string };

export interface AutomationDecision {
  record: AutomationRecord;
  actions: AutomationAction[];
}

/** The states after which nothing more happens to this head by itself. */
const SETTLED_FOR_HEAD: ReadonlySet<AutomationState> = new Set(["merging", "merged", "deployed", "skipped", "failed"]);
/** The states after which nothing more happens to the PR at all. */
const SETTLED_FOR_PR: ReadonlySet<AutomationState> = new Set(["merged", "deployed"]);

export const TIMELINE_LIMIT = 50;
/** A merge not finished this long after it began is looked at again (GitHub silent, the object restarted). */
export const MERGE_RECOVERY_MS = 60_000;

/** "14:05 UTC" — the banner shows local times; the timeline's text is the same for everyone. */
export function clock(at: Date): string {
  return `${at.toISOString().slice(11, 16)} UTC`;
}

/** The fleet-wide windows (those naming no host) govern when a merge may happen. */
export function fleetWindows(settings: Settings) {
  return settings.windows.filter((w) => w.hosts === undefined);
}

function emptyRecord(pr: AutomationPr, now: Date): AutomationRecord {
  return {
    headSeenAt: now.toISOString(),
    pr: pr.number,
    state: "off",
    headSha: pr.headSha,
    ciPassedAt: null,
    mergeAt: null,
    reason: "",
    mergeCommitSha: null,
    rolloutId: null,
    timeline: [],
    wakeAt: null,
    skippedHead: null,
    ciFailedHead: null,
    scheduledAnnounced: null,
  };
}

/** Appends to the timeline (newest last, the oldest dropped past the limit); the same text twice in a row is kept once. */
export function withTimeline(record: AutomationRecord, at: Date, text: string): AutomationRecord {
  const last = record.timeline.at(-1);
  if (last?.text === text) return record;
  return { ...record, timeline: [...record.timeline, { at: at.toISOString(), text }].slice(-TIMELINE_LIMIT) };
}

/** The next state of one update PR's automation and what to do about it. */
export function decide(input: AutomationInput): AutomationDecision {
  const { pr, settings, now } = input;
  const actions: AutomationAction[] = [];
  let record = input.stored ?? emptyRecord(pr, now);
  const wasTimed = record.wakeAt !== null;
  const announce = (event: NotificationEventName, id: string, title: string, text: string, details: Record<string, unknown> = {}) =>
    actions.push({ type: "notify", event, id, title, text, details: { pr: pr.number, url: pr.url, headSha: pr.headSha, ...details } });

  if (input.stored === null && pr.state === "open" && pr.isUpdatePr && settings.flakeUpdates.enabled) {
    announce("update-pr-opened", `update-pr-opened:${pr.number}`, `Update PR #${pr.number} opened`, pr.title);
  }

  const finish = (next: AutomationRecord): AutomationDecision => {
    if (next.wakeAt !== null && next.wakeAt !== record.wakeAt) actions.unshift({ type: "schedule", at: next.wakeAt });
    else if (next.wakeAt === null && wasTimed) actions.unshift({ type: "cancel" });
    return { record: next, actions };
  };
  const to = (state: AutomationState, reason: string, patch: Partial<AutomationRecord> = {}, line: string | null = null): AutomationDecision => {
    let next: AutomationRecord = { ...record, state, reason, wakeAt: null, ...patch };
    if (line !== null) next = withTimeline(next, now, line);
    return finish(next);
  };

  // Merged or deployed: nothing more ever happens to this PR by itself. A merge in
  // flight is the alarm's to finish (recoverMerge), whatever the PR looks like meanwhile.
  if (SETTLED_FOR_PR.has(record.state) || record.state === "merging") return finish(record);

  if (pr.state === "merged") {
    return to("merged", "merged outside the automation: no rollout started by it", { mergeCommitSha: pr.mergeCommitSha, mergeAt: null }, "merged outside the automation");
  }
  if (pr.state === "closed") return to("off", "closed without merging", { mergeAt: null }, "cancelled: the PR was closed");
  if (!pr.isUpdatePr) return to("off", "no longer an update PR (its label was removed)", { mergeAt: null }, "cancelled: no longer an update PR");
  if (pr.supersededBy !== null) {
    return to("off", `superseded by the newer update PR #${pr.supersededBy}`, { mergeAt: null }, `cancelled: superseded by #${pr.supersededBy}`);
  }

  // A new head starts over: its own CI, its own delay; a skip or a failure belonged to the old head.
  if (record.headSha !== pr.headSha) {
    const moved = record.state === "scheduled" || record.state === "waiting-window";
    record = withTimeline(
      { ...record, headSha: pr.headSha, headSeenAt: now.toISOString(), ciPassedAt: null, mergeAt: null, state: "waiting-ci", reason: "" },
      now,
      moved ? `rescheduled: new commit ${shortSha(pr.headSha)}` : `new commit ${shortSha(pr.headSha)}`,
    );
  }

  // A person's Skip, a merge in flight, GitHub's refusal: this head is left alone.
  // A person's Merge now overrides both.
  if (input.mergeNow === undefined) {
    if (record.skippedHead === pr.headSha) return finish({ ...record, state: "skipped", wakeAt: null });
    if (SETTLED_FOR_HEAD.has(record.state)) return finish(record);
  }

  if (!settings.flakeUpdates.enabled) return to("off", "flake updates are turned off (flakeUpdates.enabled)", { mergeAt: null });
  if (!settings.automation.enabled && input.mergeNow === undefined) {
    return to("off", "auto-merge is off (automation.enabled): merge it by hand", { mergeAt: null });
  }

  // CI: a red head is never merged, and is announced once.
  const ciGreen = input.ci === "success";
  if (input.ci === "failure") {
    if (record.ciFailedHead !== pr.headSha) {
      const checks = input.failingChecks ?? [];
      const list = checks.map((c) => (c.url ? `${c.name}: ${c.url}` : c.name)).join("\n");
      announce(
        "ci-failed",
        `ci-failed:${pr.number}:${pr.headSha}`,
        `CI failed on update PR #${pr.number}`,
        `${pr.title} (${shortSha(pr.headSha)}) will not be merged.${list ? `\nFailing checks:\n${list}` : ""}`,
        { failingChecks: checks },
      );
      record = { ...record, ciFailedHead: pr.headSha };
    }
    return to("ci-failed", `CI failed on ${shortSha(pr.headSha)}: it will not be merged`, { ciPassedAt: null, mergeAt: null }, `CI failed on ${shortSha(pr.headSha)}`);
  }
  // Without required CI a head with no CI at all goes on (on the fleet build, if required): "no CI" is a choice.
  if (!ciGreen && settings.automation.requireCi) {
    const why = input.ci === "pending" ? "CI is running" : "no CI result yet";
    return to("waiting-ci", `waiting for CI on ${shortSha(pr.headSha)} (${why})`, { ciPassedAt: null, mergeAt: null });
  }
  const ciPassedAt = ciGreen ? (record.ciPassedAt ?? now.toISOString()) : null;
  if (ciGreen && record.ciPassedAt === null) record = withTimeline(record, now, "CI passed");
  record = { ...record, ciPassedAt };

  if (settings.automation.requireFleetBuild && input.mergeNow === undefined) {
    if (input.fleetBuild === "failure") return to("fleet-build-failed", "the fleet build failed: it will not be merged", { mergeAt: null }, "fleet build failed");
    if (input.fleetBuild !== "success") {
      const why = settings.fleetBuild.buildOnUpdatePr ? "waiting for the fleet build to pass" : "waiting for a fleet build: update PRs are not built by themselves (fleetBuild.buildOnUpdatePr), start one with Build on all hosts";
      return to("waiting-fleet-build", why, { mergeAt: null });
    }
  }

  // Green: merge at CI-green time + the delay (without required CI, from when the PR was first seen green enough).
  const startedAt = ciPassedAt ?? record.headSeenAt;
  const mergeAt = new Date(Date.parse(startedAt) + settings.automation.mergeDelayMinutes * 60_000);
  const mergeAtIso = mergeAt.toISOString();
  if (input.mergeNow === undefined && now.getTime() < mergeAt.getTime()) {
    const key = `${pr.headSha}@${mergeAtIso}`;
    if (record.scheduledAnnounced !== key) {
      announce("merge-scheduled", `merge-scheduled:${pr.number}:${pr.headSha}:${mergeAtIso}`, `Update PR #${pr.number} will be merged at ${clock(mergeAt)}`, pr.title, {
        mergeAt: mergeAtIso,
      });
      record = { ...record, scheduledAnnounced: key };
    }
    return to("scheduled", `auto-merge at ${clock(mergeAt)}`, { mergeAt: mergeAtIso, wakeAt: mergeAtIso }, `merge scheduled for ${clock(mergeAt)}`);
  }

  // Due. Only the alarm (which re-read the PR from GitHub) or a person merges.
  if (!input.atAlarm && input.mergeNow === undefined) {
    return to("scheduled", `auto-merge due since ${clock(mergeAt)}`, { mergeAt: mergeAtIso, wakeAt: now.toISOString() });
  }
  // Failed for this head without asking GitHub: told like a merge GitHub refuses (same event and id).
  const notMerged = (why: string) =>
    announce("merge-failed", `merge-failed:${pr.number}:${pr.headSha}`, `Update PR #${pr.number} was not merged`, `${pr.title} (${shortSha(pr.headSha)}): ${why}`);
  if (pr.mergeable === false) {
    notMerged("GitHub cannot merge it (a conflict with the base branch)");
    return to("failed", "GitHub cannot merge it (a conflict with the base branch)", { mergeAt: mergeAtIso }, "not merged: conflicts with the base branch");
  }
  if (input.mergeNow === undefined) {
    const opening = nextOpeningOf(fleetWindows(settings), now);
    if (opening === null) {
      notMerged("no maintenance window ever opens");
      return to("failed", "no maintenance window ever opens", { mergeAt: mergeAtIso }, "not merged: no maintenance window opens");
    }
    if (opening.at.getTime() > now.getTime()) {
      const at = opening.at.toISOString();
      return to("waiting-window", `waiting for the maintenance window at ${clock(opening.at)}`, { mergeAt: mergeAtIso, wakeAt: at }, `waiting for the maintenance window at ${clock(opening.at)}`);
    }
  }
  actions.push({ type: "merge", headSha: pr.headSha });
  const line = input.mergeNow ? `merging now (by ${input.mergeNow.actor})` : "merging";
  // The wake-up is the crash recovery: an alarm that finds it still `merging` asks GitHub whether it merged.
  const recoverAt = new Date(now.getTime() + MERGE_RECOVERY_MS).toISOString();
  return to("merging", "merging", { mergeAt: mergeAtIso, wakeAt: recoverAt }, line);
}

/** A person chose Skip this PR: this head is left alone. */
export function skip(record: AutomationRecord | null, pr: AutomationPr, actor: string, now: Date): AutomationDecision {
  const base = record ?? emptyRecord(pr, now);
  const next = withTimeline(
    { ...base, headSha: pr.headSha, state: "skipped", reason: `skipped by ${actor}: a new commit is considered again`, skippedHead: pr.headSha, wakeAt: null, mergeAt: null },
    now,
    `skipped by ${actor}`,
  );
  return { record: next, actions: base.wakeAt !== null ? [{ type: "cancel" }] : [] };
}

/** GitHub merged it: the merge commit, and whether a rollout is to follow. */
export function merged(record: AutomationRecord, mergeCommitSha: string, settings: Settings, now: Date): AutomationRecord {
  const deploy = settings.automation.deployStrategy !== "none";
  return withTimeline(
    {
      ...record,
      state: "merged",
      mergeCommitSha,
      wakeAt: null,
      reason: deploy ? `merged as ${shortSha(mergeCommitSha)}; starting its rollout` : `merged as ${shortSha(mergeCommitSha)}; no rollout (deployStrategy none)`,
    },
    now,
    `merged as ${shortSha(mergeCommitSha)}`,
  );
}

/** GitHub refused the merge: recorded, announced by the caller, never retried blindly. */
export function mergeRefused(record: AutomationRecord, message: string, now: Date): AutomationRecord {
  return withTimeline({ ...record, state: "failed", wakeAt: null, reason: `GitHub refused the merge: ${message}` }, now, `merge refused: ${message}`);
}

/** Its rollout started (or none could). */
export function deployed(record: AutomationRecord, outcome: { rolloutId: string } | { problem: string }, now: Date): AutomationRecord {
  if ("rolloutId" in outcome) {
    return withTimeline({ ...record, state: "deployed", rolloutId: outcome.rolloutId, reason: `merged and deploying (rollout ${outcome.rolloutId})` }, now, `rollout ${outcome.rolloutId} started`);
  }
  return withTimeline({ ...record, reason: `merged, but no rollout started: ${outcome.problem}` }, now, `no rollout: ${outcome.problem}`);
}

/** The view the API shows: the record without what only the rules need, and the CI settings in force. */
export function toView(record: AutomationRecord, settings: Settings): UpdatePrAutomation {
  const { requireCi, ciMissingAfterMinutes } = settings.automation;
  return {
    ciRequired: requireCi,
    ciExpectedBy: requireCi ? new Date(Date.parse(record.headSeenAt) + ciMissingAfterMinutes * 60_000).toISOString() : null,
    state: record.state,
    headSha: record.headSha,
    ciPassedAt: record.ciPassedAt,
    mergeAt: record.mergeAt,
    reason: record.reason,
    mergeCommitSha: record.mergeCommitSha,
    rolloutId: record.rolloutId,
    timeline: record.timeline,
  };
}
