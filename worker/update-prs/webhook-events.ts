/** What each handled webhook event does to the stored state. */
import { listOpenPullRequests, saveCommitCheck } from "../db/github.ts";
import { FLEET_BUILD_CONTEXT } from "../fleet-build/rules.ts";
import { checkRunKey, checkRunOrdinal, conclusionOutcome, statusOutcome, timeOrdinal, type CommitCheck } from "../github/ci.ts";
import { sameRepository } from "../github/config.ts";
import { requireRepository } from "../github/context.ts";
import type { UpdatePrContext } from "./context.ts";
import type { WebhookEvent } from "../github/events.ts";
import { applyPullRequest } from "./pull-sync.ts";
import { applyPush } from "./repo-state.ts";
import type { HandlerResult } from "./webhook-result.ts";

export async function handleWebhookEvent(ctx: UpdatePrContext, event: WebhookEvent): Promise<HandlerResult> {
  if (event.name === "ping") return { outcome: "processed" };
  const repository = requireRepository(ctx);
  const from = event.payload.repository.full_name;
  if (!sameRepository(from, repository.fullName)) {
    return { outcome: "ignored", reason: `event for ${from}, not the configured repository ${repository.fullName}` };
  }
  const receivedAt = ctx.now();
  switch (event.name) {
    case "push":
      return applyPush(ctx, event.payload);
    case "pull_request":
      return applyPullRequest(ctx, event.payload);
    case "check_run": {
      const run = event.payload.check_run;
      return applyCheck(ctx, {
        sha: run.head_sha,
        kind: "check_run",
        name: checkRunKey(run),
        outcome: conclusionOutcome(run.status, run.conclusion),
        ordinal: checkRunOrdinal(run.id, run.status),
        updatedAt: receivedAt.toISOString(),
      });
    }
    case "check_suite": {
      const suite = event.payload.check_suite;
      // GitHub opens a suite for every installed app, and a suite no app ever runs in stays queued forever.
      if (suite.status !== "completed" && suite.latest_check_runs_count === 0) {
        return { outcome: "ignored", reason: `check suite ${suite.id} has no check runs` };
      }
      return applyCheck(ctx, {
        sha: suite.head_sha,
        kind: "check_suite",
        name: String(suite.id),
        outcome: conclusionOutcome(suite.status, suite.conclusion),
        ordinal: timeOrdinal(suite.updated_at, receivedAt),
        updatedAt: receivedAt.toISOString(),
      });
    }
    case "status":
      // Our own verdict (docs/fleet-build.md) is not the PR's CI: counting it would make CI wait for the build.
      if (event.payload.context === FLEET_BUILD_CONTEXT) return { outcome: "ignored", reason: `${FLEET_BUILD_CONTEXT} is NixFleet's own status, not CI` };
      return applyCheck(ctx, {
        sha: event.payload.sha,
        kind: "status",
        name: event.payload.context,
        outcome: statusOutcome(event.payload.state),
        ordinal: timeOrdinal(event.payload.updated_at, receivedAt),
        updatedAt: receivedAt.toISOString(),
      });
    case "workflow_run": {
      const run = event.payload.workflow_run;
      return applyCheck(ctx, {
        sha: run.head_sha,
        kind: "workflow_run",
        name: String(run.id),
        outcome: conclusionOutcome(run.status, run.conclusion),
        ordinal: timeOrdinal(run.updated_at, receivedAt),
        updatedAt: receivedAt.toISOString(),
      });
    }
  }
}

/** Stores a CI signal; dashboards hear about it when it concerns an open PR's head. */
async function applyCheck(ctx: UpdatePrContext, check: CommitCheck): Promise<HandlerResult> {
  const repository = requireRepository(ctx);
  await saveCommitCheck(ctx.db, repository.fullName, check);
  const open = (await listOpenPullRequests(ctx.db, repository.fullName)).filter((pr) => pr.headSha === check.sha);
  if (open.length > 0) await ctx.notifyRepoChanged();
  // CI moved on an update PR's head: the automation schedules, moves or cancels its merge.
  for (const pr of open) if (pr.isUpdatePr) await ctx.reconsiderAutomation(pr.number);
  return { outcome: "processed" };
}
