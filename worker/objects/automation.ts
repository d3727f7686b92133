/**
 * The Automation Durable Object: auto-merge of update PRs (docs/automation.md).
 * The rules (worker/automation/rules.ts) decide; this object reads their
 * inputs (D1, GitHub at the alarm), keeps each PR's record in its own SQLite
 * storage, sets its one alarm at the earliest wake-up and carries out merges
 * and rollouts. Webhook handling and the 5-minute cron call `reconsider`.
 */
import { DurableObject } from "cloudflare:workers";
import type { NotificationEvent, Settings, UpdatePrAutomation } from "../../common/protocol.ts";
import { decide, deployed, MERGE_RECOVERY_MS, merged, mergeRefused, skip, toView, withTimeline, type AutomationAction, type AutomationPr, type AutomationRecord } from "../automation/rules.ts";
import { writeAudit } from "../db/audit.ts";
import { AutomationStorage } from "../db/automation-storage.ts";
import { openDatabase, type Database } from "../db/client.ts";
import { ciStates, failingChecks, getPullRequest, listOpenPullRequests, type PullRequestRecord } from "../db/github.ts";
import { currentSettings } from "../db/settings.ts";
import type { WorkerEnv } from "../env.ts";
import { GitHubMergeRefusedError } from "../github/errors.ts";
import { notifier } from "../notifier.ts";
import { refuse, type Outcome } from "../outcome.ts";
import { updatePrContext, type UpdatePrContext } from "../update-prs/context.ts";
import { deployMerge, mergeAndDeploy, type DeployRequest } from "../update-prs/merge.ts";
import { rereadPull } from "../update-prs/pull-sync.ts";
import { orGitHubRefusal } from "../update-prs/refusals.ts";
import { notKnown, requireUpdatePr } from "../update-prs/require.ts";
import { shortSha } from "../../common/text.ts";

export const AUTOMATION_ACTOR = "automation";
/** After a merge whose outcome is unknown (GitHub unreachable, a crash), look again this soon. */
const RECOVER_AFTER_MS = MERGE_RECOVERY_MS;

export type AutomationOutcome = Outcome<{ automation: UpdatePrAutomation }>;

export class Automation extends DurableObject<WorkerEnv> {
  private readonly db: Database;
  private readonly store: AutomationStorage;
  /**
   * Merges this incarnation is waiting on GitHub for. A `merging` record not
   * in here was left by a crash or an eviction: only those are recovered.
   */
  private readonly inFlight = new Set<number>();

  constructor(ctx: DurableObjectState, env: WorkerEnv) {
    super(ctx, env);
    this.db = openDatabase(env.DB);
    this.store = new AutomationStorage(ctx.storage.sql);
  }

  // -------------------------------------------------------------------------
  // RPC

  /** Looks at one update PR again (a webhook stored its CI or the PR itself). */
  async reconsider(prNumber: number): Promise<void> {
    const settings = await this.settings();
    if (settings === null) return;
    const github = updatePrContext(this.env, this.db);
    if (github.config.repository === null) return;
    await this.consider(github, settings, prNumber, {});
    await this.scheduleAlarm();
  }

  /** Every open update PR and every record not settled: after a PR event, and from the cron (missed webhooks). */
  async reconsiderAll(): Promise<void> {
    const settings = await this.settings();
    if (settings === null) return;
    const github = updatePrContext(this.env, this.db);
    if (github.config.repository === null) return;
    const open = (await listOpenPullRequests(this.db, github.config.repository.fullName)).filter((pr) => pr.isUpdatePr).map((pr) => pr.number);
    for (const pr of new Set([...open, ...this.store.unsettled()])) await this.consider(github, settings, pr, {});
    await this.scheduleAlarm();
  }

  /** The banner's view of these PRs (null: never considered). */
  async views(prs: number[]): Promise<Record<number, UpdatePrAutomation>> {
    const views: Record<number, UpdatePrAutomation> = {};
    const settings = await this.settings();
    if (settings === null) return views;
    for (const [pr, record] of this.store.many(prs)) views[pr] = toView(record, settings);
    return views;
  }

  /** Merge now: the alarm's path without the delay or the window, refused while CI is not green (red only, when not required). */
  async mergeNow(prNumber: number, actor: string): Promise<AutomationOutcome> {
    // Errors do not keep their class across RPC: GitHub's failures are answered here.
    return orGitHubRefusal(() => this.mergeNowInner(prNumber, actor));
  }

  private async mergeNowInner(prNumber: number, actor: string): Promise<AutomationOutcome> {
    const settings = await this.settings();
    if (settings === null) return refuse(503, "settings_invalid", "the settings do not read (see the Worker's log)");
    const github = updatePrContext(this.env, this.db);
    const known = await requireUpdatePr(github, prNumber, { client: true });
    if (!known.ok) return known;
    const fresh = await rereadPull(github, prNumber);
    if (fresh === null || fresh.state !== "open") {
      await this.consider(github, settings, prNumber, {});
      return refuse(409, "update_pr_not_open", `pull request #${prNumber} is ${fresh?.state ?? "no longer tracked"}`);
    }
    const ci = (await ciStates(this.db, known.repository.fullName, [fresh.headSha])).get(fresh.headSha) ?? "unknown";
    // Without required CI only a red head waits.
    if (ci === "failure" || (ci !== "success" && settings.automation.requireCi)) {
      return refuse(409, "ci_not_green", `CI is ${ci} on #${prNumber}'s head ${shortSha(fresh.headSha)}: Merge now waits for it to pass`);
    }
    await writeAudit(this.db, {
      at: new Date().toISOString(),
      actor,
      action: "update-pr.merge-now",
      target: `${known.repository.fullName}#${prNumber}`,
      details: { headSha: fresh.headSha },
      result: "ok",
    });
    const record = await this.consider(github, settings, prNumber, { mergeNow: { actor }, atAlarm: true });
    await this.scheduleAlarm();
    if (record === null) return notKnown(prNumber);
    if (record.state === "failed") return refuse(409, "merge_refused", record.reason);
    // Merge now overrides the delay, the window and automation.enabled, never flake updates turned off
    // or a newer update PR: the record says which.
    if (record.state === "off") return refuse(409, "merge_not_allowed", `#${prNumber} is not merged: ${record.reason}`);
    if (record.state === "merging") return refuse(409, "merge_in_flight", `#${prNumber} is being merged`);
    return { ok: true, automation: toView(record, settings) };
  }

  /** Skip this PR: its current head is left alone; a new head is considered again. */
  async skip(prNumber: number, actor: string): Promise<AutomationOutcome> {
    const github = updatePrContext(this.env, this.db);
    const known = await requireUpdatePr(github, prNumber, { open: true });
    if (!known.ok) return known;
    const { pr, repository } = known;
    // From here on only this object's storage is touched until the record is written.
    const stored = this.store.get(prNumber);
    if (stored?.state === "merging" || stored?.state === "merged" || stored?.state === "deployed") {
      return refuse(409, "update_pr_merging", `#${prNumber} is already ${stored.state}`);
    }
    const decision = skip(stored, this.automationPr(pr, null), actor, new Date());
    this.store.put(decision.record, new Date());
    await writeAudit(this.db, {
      at: new Date().toISOString(),
      actor,
      action: "update-pr.skip",
      target: `${repository.fullName}#${prNumber}`,
      details: { headSha: pr.headSha },
      result: "ok",
    });
    await this.scheduleAlarm();
    await github.notifyRepoChanged();
    return { ok: true, automation: toView(decision.record, await github.settings()) };
  }

  // -------------------------------------------------------------------------
  // The alarm: merges that are due, windows that open, merges left in flight

  override async alarm(): Promise<void> {
    const settings = await this.settings();
    if (settings === null) return;
    const github = updatePrContext(this.env, this.db);
    if (github.config.repository === null) return;
    for (const pr of this.store.due(new Date())) {
      try {
        if (this.inFlight.has(pr)) continue;
        if (this.store.get(pr)?.state === "merging") await this.recoverMerge(github, settings, pr);
        // The PR as GitHub has it now, and its CI: the webhooks may have missed something.
        else {
          await rereadPull(github, pr);
          await this.consider(github, settings, pr, { atAlarm: true });
        }
      } catch (error) {
        // GitHub unreachable or rate limited: the record keeps its wake-up, looked at again soon.
        console.error(`automation: #${pr} at the alarm:`, error instanceof Error ? error.message : error);
        const record = this.store.get(pr);
        if (record !== null) this.store.put({ ...record, wakeAt: new Date(Date.now() + RECOVER_AFTER_MS).toISOString() }, new Date());
      }
    }
    await this.scheduleAlarm();
  }

  // -------------------------------------------------------------------------

  private async settings(): Promise<Settings | null> {
    try {
      return await currentSettings(this.env, this.db);
    } catch (error) {
      console.error("automation: the settings do not read; nothing is scheduled or merged", error instanceof Error ? error.message : error);
      return null;
    }
  }

  private automationPr(record: PullRequestRecord, supersededBy: number | null): AutomationPr {
    return {
      number: record.number,
      title: record.title,
      url: record.url,
      state: record.state,
      headSha: record.headSha,
      isUpdatePr: record.isUpdatePr,
      supersededBy,
      mergeable: record.mergeable,
      mergeCommitSha: record.mergeCommitSha,
    };
  }

  /**
   * Reads one PR's inputs from D1, runs the rules and carries out what they
   * say. The stored record is read after the last await on D1, and written
   * before anything else is awaited: a merge is marked `merging` before GitHub
   * is asked, so a second caller sees it and does nothing.
   */
  private async consider(
    github: UpdatePrContext,
    settings: Settings,
    prNumber: number,
    options: { atAlarm?: boolean; mergeNow?: { actor: string } },
  ): Promise<AutomationRecord | null> {
    const repository = github.config.repository!.fullName;
    const pr = await getPullRequest(this.db, repository, prNumber);
    if (pr === null) return this.store.get(prNumber);
    const openUpdatePrs = (await listOpenPullRequests(this.db, repository)).filter((p) => p.isUpdatePr && p.baseRef === pr.baseRef);
    // Newest first: a newer open update PR supersedes this one.
    const newer = openUpdatePrs.find((p) => p.number !== pr.number && (p.createdAt > pr.createdAt || (p.createdAt === pr.createdAt && p.number > pr.number)));
    const ci = (await ciStates(this.db, repository, [pr.headSha])).get(pr.headSha) ?? "unknown";
    const failing = ci === "failure" ? await failingChecks(this.db, repository, pr.headSha) : [];
    const fleetBuild = await github.fleetBuildVerdict(pr);
    const now = new Date();
    // No await from here until the record is stored.
    const stored = this.store.get(prNumber);
    if (stored === null && pr.state !== "open") return null;
    const decision = decide({
      pr: this.automationPr(pr, newer?.number ?? null),
      ci,
      failingChecks: failing.map((name) => ({ name, url: `${pr.url}/checks` })),
      fleetBuild,
      settings,
      stored,
      now,
      ...options,
    });
    const changed = JSON.stringify(stored) !== JSON.stringify(decision.record);
    if (changed) this.store.put(decision.record, now);
    // In the same synchronous step as the `merging` write: an alarm meanwhile must not take it for a crashed merge.
    if (decision.actions.some((a) => a.type === "merge")) this.inFlight.add(prNumber);
    let record = decision.record;
    for (const action of decision.actions) record = await this.carryOut(github, settings, pr, record, action);
    if (changed || record !== decision.record) await github.notifyRepoChanged();
    return record;
  }

  private async carryOut(
    github: UpdatePrContext,
    settings: Settings,
    pr: PullRequestRecord,
    record: AutomationRecord,
    action: AutomationAction,
  ): Promise<AutomationRecord> {
    switch (action.type) {
      case "schedule":
      case "cancel":
        // The one alarm is set from every record's wakeAt (scheduleAlarm).
        return record;
      case "notify":
        this.announce({
          id: action.id,
          event: action.event,
          at: new Date().toISOString(),
          title: action.title,
          text: action.text,
          url: pr.url,
          pr: pr.number,
          commit: pr.headSha,
          details: action.details,
        });
        return record;
      case "merge":
        return this.merge(github, settings, pr, record, action.headSha);
    }
  }

  /**
   * The merge itself, and its rollout, through the update-PR service; `record` is stored as
   * `merging` already. The merge is recorded the moment GitHub made it, before its rollout is asked for.
   */
  private async merge(github: UpdatePrContext, settings: Settings, pr: PullRequestRecord, record: AutomationRecord, headSha: string): Promise<AutomationRecord> {
    let next: AutomationRecord | null = null;
    let outcome: Awaited<ReturnType<typeof mergeAndDeploy>>;
    try {
      outcome = await mergeAndDeploy(github, pr.number, {
        method: settings.automation.mergeMethod,
        expectedSha: headSha,
        actor: AUTOMATION_ACTOR,
        deploy: this.deployRequest(settings),
        onMerged: (done) => {
          next = this.recordMerged(settings, pr, record, done.sha);
        },
      });
    } catch (error) {
      // Merged, then the rollout failed to be asked for: the record says merged; the caller sees the error.
      if (next !== null) throw error;
      if (error instanceof GitHubMergeRefusedError) return this.refused(pr, record, headSha, error.githubMessage);
      return this.unclear(pr, record, error);
    } finally {
      this.inFlight.delete(pr.number);
    }
    if (!outcome.ok) {
      // Not even tried (the PR closed, GitHub's credentials gone): a gone PR is final, a missing set-up is not.
      return outcome.status === 503 ? this.unclear(pr, record, new Error(outcome.message)) : this.refused(pr, record, headSha, outcome.message);
    }
    return this.recordDeployed(next ?? this.recordMerged(settings, pr, record, outcome.merged.sha), outcome.deployed);
  }

  /** GitHub said no (a conflict, a moved head, checks it requires): recorded and announced, never retried blindly. */
  private refused(pr: PullRequestRecord, record: AutomationRecord, headSha: string, message: string): AutomationRecord {
    const failed = mergeRefused(record, message, new Date());
    this.store.put(failed, new Date());
    this.announce({
      id: `merge-failed:${pr.number}:${headSha}`,
      event: "merge-failed",
      at: new Date().toISOString(),
      title: `Update PR #${pr.number} was not merged`,
      text: `GitHub refused the merge: ${message}`,
      url: pr.url,
      pr: pr.number,
      commit: headSha,
      details: {},
    });
    return failed;
  }

  /** Unknown outcome (GitHub unreachable, a 5xx): still `merging`; the alarm re-reads the PR soon. */
  private unclear(pr: PullRequestRecord, record: AutomationRecord, error: unknown): AutomationRecord {
    console.error(`automation: merging #${pr.number} had no clear answer; looking again in a minute`, error);
    const retry = { ...record, wakeAt: new Date(Date.now() + RECOVER_AFTER_MS).toISOString() };
    this.store.put(retry, new Date());
    return retry;
  }

  /** The automation's rollouts are automatic and keep to the maintenance windows; deployStrategy none asks for none. */
  private deployRequest(settings: Settings): DeployRequest | null {
    return settings.automation.deployStrategy === "none" ? null : { automatic: true, ignoreWindows: false };
  }

  /** Merged: record the merge commit and announce it. */
  private recordMerged(settings: Settings, pr: PullRequestRecord, record: AutomationRecord, mergeSha: string): AutomationRecord {
    const next = merged(record, mergeSha, settings, new Date());
    this.store.put(next, new Date());
    this.announce({
      id: `merged:${pr.number}`,
      event: "merged",
      at: new Date().toISOString(),
      title: `Update PR #${pr.number} merged`,
      text: `${pr.title}\nMerged by the automation as ${shortSha(mergeSha)}.`,
      url: pr.url,
      pr: pr.number,
      commit: mergeSha,
      details: {},
    });
    return next;
  }

  /** Its rollout started, or why none could (null: none was asked for). */
  private recordDeployed(record: AutomationRecord, rollout: Outcome<{ rollout: { id: string } }> | null): AutomationRecord {
    if (rollout === null) return record;
    const next = deployed(record, rollout.ok ? { rolloutId: rollout.rollout.id } : { problem: rollout.message }, new Date());
    this.store.put(next, new Date());
    return next;
  }

  /**
   * A merge left `merging` (a crash, an eviction, GitHub silent): GitHub says
   * whether it happened. Merged → its rollout, once; still open → the rules
   * decide again from scratch; closed → nothing.
   */
  private async recoverMerge(github: UpdatePrContext, settings: Settings, prNumber: number): Promise<void> {
    const fresh = await rereadPull(github, prNumber);
    const record = this.store.get(prNumber);
    if (record === null || record.state !== "merging" || this.inFlight.has(prNumber)) return;
    if (fresh !== null && fresh.state === "merged" && fresh.mergeCommitSha !== null) {
      const next = this.recordMerged(settings, fresh, withTimeline(record, new Date(), "the merge happened before an interruption"), fresh.mergeCommitSha);
      const deploy = this.deployRequest(settings);
      const merge = { sha: fresh.mergeCommitSha, headSha: record.headSha };
      this.recordDeployed(next, deploy === null ? null : await deployMerge(github, fresh, merge, { ...deploy, actor: AUTOMATION_ACTOR }));
    } else {
      this.store.put(withTimeline({ ...record, state: "scheduled", wakeAt: new Date().toISOString() }, new Date(), "the merge was interrupted: trying again"), new Date());
      await this.consider(github, settings, prNumber, { atAlarm: true });
    }
    await github.notifyRepoChanged();
  }

  /**
   * Every notification of the automation goes through here, handed to the Notifier without waiting
   * (it stores the event and delivers it from its alarm): a merge never waits on a receiver. The
   * event's id makes a second hand-over of the same fact a no-op there.
   */
  private announce(event: NotificationEvent): void {
    this.ctx.waitUntil(
      notifier(this.env)
        .publish(event)
        .then(
          (outcome) => {
            if (!outcome.ok) console.error("automation: notification refused", event.id, outcome.message);
          },
          (error: unknown) => console.error("automation: notification not published", event.id, error),
        ),
    );
  }

  /** The one alarm at the earliest wake-up of any record (none: no alarm). */
  private async scheduleAlarm(): Promise<void> {
    const next = this.store.nextWake();
    if (next === null) {
      await this.ctx.storage.deleteAlarm();
      return;
    }
    await this.ctx.storage.setAlarm(Math.max(Date.parse(next), Date.now()));
  }
}
