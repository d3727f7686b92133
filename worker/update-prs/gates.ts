/**
 * The dashboard's gates before Merge & Deploy (docs/rollouts.md): CI green, and the fleet build of the
 * PR's head passed on every host the rollout would reach. Each is overridden only by an admin, with a
 * reason kept in the audit log; a failed fleet build is also passed by leaving its hosts out of the
 * chosen hosts. Both are checked before either override is audited, so a refused merge audits nothing.
 */
import { shortSha } from "../../common/text.ts";
import { writeAudit } from "../db/audit.ts";
import { ciStates, type PullRequestRecord } from "../db/github.ts";
import { failedHosts } from "../fleet-build/rules.ts";
import { refuse, type Refusal } from "../outcome.ts";
import type { UpdatePrContext } from "./context.ts";
import { requireUpdatePr } from "./require.ts";

export interface MergeGates {
  /** Merge although CI is not green. */
  ciOverride: { reason: string } | undefined;
  /** Merge although the fleet build failed on a host in scope. */
  fleetBuildOverride: { reason: string } | undefined;
  /** Why this actor may not override a gate; null when they may. */
  overrideRefused: Refusal | null;
}

/** What the rollout would reach: the chosen hosts (default: the plan's own), with or without the failed builds. */
export interface GateScope {
  hosts: string[] | undefined;
  includeFailedBuilds: boolean;
}

interface Override {
  action: string;
  details: Record<string, unknown>;
}

/** Null when the merge may go ahead; each override used is audited then. */
export async function passGates(ctx: UpdatePrContext, number: number, gates: MergeGates, scope: GateScope, actor: string): Promise<Refusal | null> {
  const known = await requireUpdatePr(ctx, number);
  if (!known.ok) return known;
  const { pr, repository } = known;
  const overrides: Override[] = [];
  for (const check of [ciGate, fleetBuildGate]) {
    const result = await check(ctx, pr, gates, scope);
    if (result === null) continue;
    if ("ok" in result) return result;
    if (gates.overrideRefused !== null) return gates.overrideRefused;
    overrides.push(result);
  }
  for (const override of overrides) {
    await writeAudit(ctx.db, { at: ctx.now().toISOString(), actor, action: override.action, target: `${repository.fullName}#${number}`, details: override.details, result: "ok" });
  }
  return null;
}

type GateResult = Refusal | Override | null;

/** With `requireCi` off a head without CI passes; a red one still asks for the override. */
async function ciGate(ctx: UpdatePrContext, pr: PullRequestRecord, gates: MergeGates): Promise<GateResult> {
  const ci = (await ciStates(ctx.db, pr.repository, [pr.headSha])).get(pr.headSha) ?? "unknown";
  if (ci === "success") return null;
  const required = (await ctx.settings()).automation.requireCi;
  if (!required && ci !== "failure") return null;
  if (gates.ciOverride === undefined) {
    return refuse(409, "ci_not_green", `CI is ${ci} on #${pr.number}'s head ${shortSha(pr.headSha)}: wait for it to pass, or override with a reason`);
  }
  return { action: "update-pr.override-ci", details: { ci, reason: gates.ciOverride.reason } };
}

/** The hosts the rollout would reach whose build of the head failed: refused unless left out or overridden. */
async function fleetBuildGate(ctx: UpdatePrContext, pr: PullRequestRecord, gates: MergeGates, scope: GateScope): Promise<GateResult> {
  const planned = await ctx.planRollout({
    commit: pr.headSha,
    pr: pr.number,
    hosts: scope.hosts,
    automatic: false,
    buildOf: { pr: pr.number, headSha: pr.headSha },
    // Every host the rollout could reach, a failed one included: that is what the gate is about.
    includeFailedBuilds: true,
  });
  if (!planned.ok) return planned;
  const build = planned.plan.fleetBuild;
  if (build === null) return null;
  const inScope = new Set(planned.plan.waves.flatMap((wave) => wave.hosts));
  const failed = failedHosts(build).filter((host) => inScope.has(host));
  if (failed.length === 0) return null;
  if (gates.fleetBuildOverride === undefined) {
    const names = failed.join(", ");
    return refuse(
      409,
      "fleet_build_failed",
      `the fleet build of #${pr.number}'s head ${shortSha(pr.headSha)} failed on ${names}: leave ${failed.length === 1 ? "it" : "them"} out of the chosen hosts (${names} then stay${failed.length === 1 ? "s" : ""} behind main), or override with a reason`,
    );
  }
  return { action: "update-pr.override-fleet-build", details: { build: build.id, hosts: failed, includeFailedBuilds: scope.includeFailedBuilds, reason: gates.fleetBuildOverride.reason } };
}
