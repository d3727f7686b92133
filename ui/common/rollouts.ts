/**
 * How rollouts read on the dashboard: the progress line, each host's step,
 * a hold's tooltip, and the deploy confirmation's host choices. Pure, so the
 * words are tested without a browser.
 */
import type {
  CiState,
  HostHold,
  RolloutHostState,
  RolloutHostView,
  RolloutPlanView,
  RolloutState,
  RolloutView,
  UpdatePr,
} from "../../common/protocol.ts";
import { formatDuration, localTimestamp, pluralWord } from "../../common/text.ts";

type Tone = "good" | "bad" | "busy" | "warn" | "muted";

export const HOST_STEPS: Record<RolloutHostState, { label: string; tone: Tone }> = {
  waiting: { label: "waiting", tone: "muted" },
  pulling: { label: "pulling", tone: "busy" },
  verifying: { label: "verifying", tone: "busy" },
  soaking: { label: "soaking", tone: "busy" },
  done: { label: "done", tone: "good" },
  failed: { label: "failed", tone: "bad" },
  skipped: { label: "skipped", tone: "warn" },
  cancelled: { label: "cancelled", tone: "muted" },
  pending: { label: "pending (offline)", tone: "warn" },
};

export const ROLLOUT_STATES: Record<RolloutState, { label: string; tone: Tone }> = {
  planned: { label: "starting", tone: "busy" },
  running: { label: "deploying", tone: "busy" },
  soaking: { label: "soaking", tone: "busy" },
  "waiting-window": { label: "waiting for a window", tone: "warn" },
  succeeded: { label: "succeeded", tone: "good" },
  failed: { label: "failed", tone: "bad" },
  cancelled: { label: "cancelled", tone: "muted" },
};

/** "Deploying 3/9 hosts · wave 2 of 3 · canary passed", or how it ended. */
export function rolloutHeadline(rollout: RolloutView): string {
  const { done, total, pending } = rollout;
  const parts: string[] = [];
  switch (rollout.state) {
    case "succeeded":
      parts.push(`Deployed ${done}/${total} ${pluralWord(total, "host")}`);
      if (pending > 0) parts.push(`succeeded with ${pending} pending`);
      if (rollout.unchanged.length > 0) parts.push(`${rollout.unchanged.length} unchanged`);
      return parts.join(" · ");
    case "failed":
      parts.push(`Failed after ${done}/${total} ${pluralWord(total, "host")}`);
      if (rollout.failure) parts.push(`${rollout.failure.host}: ${rollout.failure.reason}`);
      return parts.join(" · ");
    case "cancelled":
      parts.push(`Cancelled after ${done}/${total} ${pluralWord(total, "host")}`);
      if (rollout.stoppedBecause) parts.push(rollout.stoppedBecause);
      return parts.join(" · ");
    default: {
      parts.push(`Deploying ${done}/${total} ${pluralWord(total, "host")}`);
      if (rollout.currentWave !== undefined && rollout.currentWave > 0) parts.push(`wave ${rollout.currentWave} of ${rollout.waves.length}`);
      const canary = rollout.waves.find((wave) => wave.canary);
      if (canary && canary.state !== "waiting") parts.push(`canary ${canary.state}`);
      if (rollout.waitingFor) parts.push(rollout.waitingFor);
      if (pending > 0) parts.push(`${pending} pending`);
      return parts.join(" · ");
    }
  }
}

/** How long a host's step took (or has taken so far); null before it started. */
export function hostStepDuration(host: Pick<RolloutHostView, "startedAt" | "finishedAt">, now: number): string | null {
  if (!host.startedAt) return null;
  const start = Date.parse(host.startedAt);
  const end = host.finishedAt ? Date.parse(host.finishedAt) : now;
  return Number.isNaN(start) || Number.isNaN(end) ? null : formatDuration(end - start);
}

/** "Held: kernel bisect — by alice@example.com, until 2025-12-10 14:00". */
export function holdTitle(hold: HostHold): string {
  return `Held: ${hold.reason} — by ${hold.by}${hold.until ? `, until ${localTimestamp(hold.until)}` : ""}`;
}

/** Whether Merge & Deploy asks for a CI override: red CI always, anything else not green only while CI is required. */
export function ciNeedsOverride(pr: Pick<UpdatePr, "ciState" | "automation">): boolean {
  if (pr.ciState === "success") return false;
  return pr.ciState === "failure" || (pr.automation?.ciRequired ?? true);
}

/**
 * How the banner reads CI: GitHub's state; "not-required" (neither red nor green) when CI is not
 * required and none is red; "missing" when it is required and no check or status was seen on the
 * head by `ciExpectedBy` (automation.ciMissingAfterMinutes after the head was first seen).
 */
export function ciReading(pr: Pick<UpdatePr, "ciState" | "automation">, now: number): CiState | "not-required" | "missing" {
  const automation = pr.automation;
  if (pr.ciState === "success" || pr.ciState === "failure" || automation === null) return pr.ciState;
  if (!automation.ciRequired) return "not-required";
  const expectedBy = automation.ciExpectedBy === null ? Number.NaN : Date.parse(automation.ciExpectedBy);
  return pr.ciState === "unknown" && now >= expectedBy ? "missing" : pr.ciState;
}

/** Why a merge needs an override, or null when CI is green. */
export function ciBlocker(ci: CiState): string | null {
  switch (ci) {
    case "success":
      return null;
    case "failure":
      return "CI failed on this PR";
    case "pending":
      return "CI is still running on this PR";
    case "unknown":
      return "CI has not reported on this PR";
  }
}

export interface HostChoice {
  name: string;
  /** In the plan's waves: deployed unless unticked. */
  planned: boolean;
  /** Why the plan leaves it out (held, autoUpdate = false, offline). */
  leftOut: string | null;
}

/** Every host for the Deploy dialog's list: planned ones ticked, left-out ones unticked with their reason. */
export function hostChoices(plan: Pick<RolloutPlanView, "waves" | "leftOut"> & { unchanged?: readonly string[] }, hostNames: readonly string[]): HostChoice[] {
  // An unchanged host is in the rollout too: it is pulled, not switched.
  const planned = new Set([...plan.waves.flatMap((wave) => wave.hosts), ...(plan.unchanged ?? [])]);
  const reasons = new Map(plan.leftOut.map((host) => [host.name, host.reason]));
  const names = [...new Set([...hostNames, ...planned, ...reasons.keys()])].sort();
  return names.map((name) => ({ name, planned: planned.has(name), leftOut: planned.has(name) ? null : (reasons.get(name) ?? null) }));
}

/** The `hosts` of a deploy request: omitted when the ticked hosts are exactly the plan's own, so the server plans. */
export function chosenHosts(choices: readonly HostChoice[], ticked: ReadonlySet<string>): string[] | undefined {
  const planned = choices.filter((choice) => choice.planned).map((choice) => choice.name);
  const same = planned.length === ticked.size && planned.every((name) => ticked.has(name));
  return same ? undefined : [...ticked].sort();
}

/** "Wave 1 (canary)", "Wave 2". */
export function waveLabel(wave: { index: number; canary: boolean }): string {
  return `Wave ${wave.index}${wave.canary ? " (canary)" : ""}`;
}
