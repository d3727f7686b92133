/**
 * How each outbox effect is carried out: the I/O after a step. A handler that throws leaves its effect
 * in the outbox for a retry; one whose outcome moves the coordinator's state (a status post's
 * outcome, a revert's) stores it through a step of its own, run by the shell's `run`.
 */
import { writeAuditOnce } from "../db/audit.ts";
import { savePublication } from "../db/desired.ts";
import type { Database } from "../db/client.ts";
import { updateLastSeenOf } from "../db/hosts.ts";
import { getReport } from "../db/reports.ts";
import type { WorkerEnv } from "../env.ts";
import { automation } from "../automation.ts";
import { notifier } from "../notifier.ts";
import { postCommitStatus, type CommitStatus } from "./commit-status.ts";
import type { EffectHandlers } from "./outbox.ts";
import { openRevert, type Revert, type RevertOutcome } from "./revert.ts";
import type { RolloutRunner, StartRolloutInput } from "./rollout-runner.ts";
import type { StepOf } from "./step.ts";
import type { HostRef } from "./host.ts";
import type { Report } from "../../common/protocol.ts";

export interface EffectDeps {
  env: WorkerEnv;
  db: Database;
  run: <T>(body: StepOf<T>) => T;
  commitStatus: CommitStatus;
  revert: Revert;
  rollouts: Pick<RolloutRunner, "awaitsRevert" | "hostsOf">;
  /** The shell's start of a rollout (it reads the fleet first): how a person's revert commit is deployed. */
  startRollout: (input: StartRolloutInput) => Promise<{ ok: true; rollout: { id: string } } | { ok: false; message: string }>;
  /** Reads what a host's health needs and steps the rollouts verifying it (the shell's). */
  health: (host: HostRef, report: Report, receivedAt: string) => Promise<void>;
  /** Whether the host was judged by its latest report since its command ended: its re-check is moot. */
  recheckMoot: (hostId: string) => boolean;
  /** The host's latest report from the coordinator's recent copies; null: read D1. */
  latestReport: (hostId: string) => { report: Report; receivedAt: string } | null;
  /** Desired systems were published: what the shell does after `notify({ type: "repo" })`. */
  published: () => void;
}

export function effectHandlers(deps: EffectDeps): EffectHandlers {
  const { env, db, run } = deps;
  return {
    audit: (entries) => writeAuditOnce(db, entries.map(({ key, at, actor, action, target, details, result, role }) => ({ effectKey: key, entry: { at, actor, action, target, details, result, role } }))),
    "last-seen": (effects) => updateLastSeenOf(db, effects),
    notify: async ({ event }) => {
      const outcome = await notifier(env).publish(event);
      // A refusal is the Notifier's verdict on this event, not a failure to retry.
      if (!outcome.ok) console.error("notification refused", event.id, outcome.message);
    },
    "nudge-automation": ({ pr }) => automation(env).reconsider(pr),
    "commit-status": async ({ buildId }) => {
      const due = deps.commitStatus.due(buildId);
      if (!due) return;
      const outcome = await postCommitStatus(env, db, due);
      run(() => deps.commitStatus.record(buildId, outcome));
      if (outcome.error !== null) throw new Error(outcome.error);
    },
    revert: async (revert) => {
      if (!deps.rollouts.awaitsRevert(revert.rolloutId)) return;
      const opened = await openRevert(env, db, revert);
      let event: RevertOutcome = opened;
      if ("sha" in opened) {
        const { sha, ...rest } = opened;
        event = rest;
        // A person's revert commit goes out as any deploy does: the reverted rollout's hosts, in waves, through the same gates.
        if (revert.by !== null) {
          const started = await deps.startRollout({ commit: sha, pr: null, lockChanges: [], hosts: deps.rollouts.hostsOf(revert.rolloutId), automatic: false, ignoreWindows: false, actor: revert.by });
          event = started.ok ? { ...rest, rollout: started.rollout.id } : { ...rest, note: `the revert commit was not deployed: ${started.message}` };
        }
      }
      run(() => deps.revert.outcome(revert, event));
    },
    "publish-desired": async ({ commit, tree, builder, hosts, at }) => {
      await savePublication(db, { commit, tree, hosts, by: `builder ${builder}` }, at);
      // Dashboards and the rollouts' health read it from D1: the repository's copy is dropped as after CI's publication.
      deps.published();
    },
    "health-recheck": async ({ hostId, hostName }) => {
      if (deps.recheckMoot(hostId)) return;
      const stored = deps.latestReport(hostId) ?? (await getReport(db, hostId));
      if (stored) await deps.health({ id: hostId, name: hostName, lastSeenAt: null }, stored.report, stored.receivedAt);
    },
  };
}
