/**
 * Which hosts a rollout touches and in which waves: the canary first, then the rest by priority.
 * Pure and deterministic: the same hosts, settings and `now` give the same plan.
 */
import type { HostHold, LeftOutHost, Settings } from "../../common/protocol.ts";
import { shortSha } from "../../common/text.ts";

/** A host as planning sees it: presence, its hold, and `report.rollout` from its last report. */
export interface PlanHost {
  name: string;
  online: boolean;
  hold: HostHold | null;
  autoUpdate: boolean;
  priority: number;
  canary: boolean;
  /** Its desired system at the rollout's commit is known and is the one it runs: a pull moves its clone, no switch. */
  unchanged?: boolean;
  /** Its safety net rolled back the system the rollout's commit would send it to: left out, said why (rejected.ts). */
  rejected?: string | null;
}

export interface PlanInput {
  hosts: readonly PlanHost[];
  settings: Settings;
  /** Started by the automation: `autoUpdate = false` hosts and deploy strategy `none` then exclude. */
  automatic: boolean;
  /** A manual deploy to these hosts only; naming a host also includes it despite `autoUpdate = false`. */
  selected?: readonly string[];
  /** The update's fleet build (docs/fleet-build.md): hosts whose build of `commit` failed are left out. */
  failedBuilds?: { commit: string; hosts: readonly string[] };
  now: Date;
}

export interface PlannedWave {
  /** 1-based. */
  index: number;
  canary: boolean;
  hosts: string[];
}

export interface RolloutPlan {
  waves: PlannedWave[];
  leftOut: LeftOutHost[];
  /** In scope, but the commit does not change their system: pulled, not switched; no wave slot, no soak. */
  unchanged: string[];
}

/** A hold holds until its `until` has passed; no `until` holds until released. */
export const holdIsActive = (hold: HostHold | null, now: Date): hold is HostHold =>
  hold !== null && (hold.until === null || Date.parse(hold.until) > now.getTime());

export function describeHold(hold: HostHold): string {
  return `held by ${hold.by}: ${hold.reason}${hold.until === null ? "" : ` (until ${hold.until})`}`;
}

const byPriority = (a: PlanHost, b: PlanHost): number =>
  a.priority - b.priority || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** Why a host stays out of this rollout, or null when it is in scope. */
function leftOutReason(host: PlanHost, input: PlanInput, strategy: Settings["automation"]["deployStrategy"]): string | null {
  const selected = input.selected === undefined ? null : new Set(input.selected);
  if (selected !== null && !selected.has(host.name)) {
    // Said in the update history: the person saw the failed build and chose to leave the host out.
    if (input.failedBuilds?.hosts.includes(host.name)) return `left behind on purpose: not selected, its build of ${shortSha(input.failedBuilds.commit)} failed`;
    return "not selected";
  }
  if (holdIsActive(host.hold, input.now)) return describeHold(host.hold);
  if (input.failedBuilds?.hosts.includes(host.name)) return `its build of ${shortSha(input.failedBuilds.commit)} failed`;
  if (host.rejected != null) return host.rejected;
  if (input.automatic && strategy === "none") return "deploy strategy is none";
  if (!host.autoUpdate) {
    if (input.automatic) return "autoUpdate = false";
    if (selected === null) return "autoUpdate = false (not selected)";
  }
  if (strategy === "online-only" && !host.online) return "offline";
  return null;
}

export function planRollout(input: PlanInput): RolloutPlan {
  const { settings } = input;
  const strategy = settings.automation.deployStrategy;
  const leftOut: LeftOutHost[] = [];
  const inScope: PlanHost[] = [];
  for (const host of [...input.hosts].sort(byPriority)) {
    const reason = leftOutReason(host, input, strategy);
    if (reason === null) inScope.push(host);
    else leftOut.push({ name: host.name, reason });
  }
  const known = new Set(input.hosts.map((h) => h.name));
  for (const name of input.selected ?? []) if (!known.has(name)) leftOut.push({ name, reason: "unknown host" });

  const unchanged = inScope.filter((h) => h.unchanged === true).map((h) => h.name);
  // The canary is the first host the commit changes: a host it leaves alone proves nothing.
  const changed = inScope.filter((h) => h.unchanged !== true);
  const flagged = changed.filter((h) => h.canary);
  const canary = flagged.length > 0 ? flagged : changed.slice(0, settings.rollout.canary);
  const canaryNames = new Set(canary.map((h) => h.name));
  const rest = changed.filter((h) => !canaryNames.has(h.name));

  const waves: PlannedWave[] = [];
  if (canary.length > 0) waves.push({ index: 1, canary: true, hosts: canary.map((h) => h.name) });
  // "A quarter of the hosts": of every host the rollout switches, canary included.
  const size = settings.rollout.waveSize ?? Math.max(1, Math.ceil(changed.length / 4));
  for (let i = 0; i < rest.length; i += size) {
    waves.push({ index: waves.length + 1, canary: false, hosts: rest.slice(i, i + size).map((h) => h.name) });
  }
  return { waves, leftOut, unchanged };
}
