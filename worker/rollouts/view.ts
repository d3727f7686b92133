/** The stored rollout (record.ts) as the API and the dashboard see it. */
import type { RolloutView } from "../../common/protocol.ts";
import { hasPassed, type Rollout } from "./record.ts";

/** The rollout as `GET /api/rollouts/:id` gives it. */
export function toRolloutView(r: Rollout): RolloutView {
  return {
    id: r.id,
    state: r.state,
    commit: r.commit,
    ...(r.pr === null ? {} : { pr: r.pr }),
    startedBy: r.startedBy,
    automatic: r.automatic,
    startedAt: r.startedAt,
    ...(r.finishedAt === null ? {} : { finishedAt: r.finishedAt }),
    done: r.hosts.filter((h) => hasPassed(h)).length,
    total: r.hosts.length,
    pending: r.hosts.filter((h) => h.state === "pending").length,
    ...(r.currentWave === 0 ? {} : { currentWave: r.currentWave }),
    ...(r.waitingFor === null ? {} : { waitingFor: r.waitingFor }),
    waves: r.waves.map((w) => ({
      index: w.index,
      canary: w.canary,
      state: w.state,
      ...(w.soakUntil === null ? {} : { soakUntil: w.soakUntil }),
      hosts: r.hosts
        .filter((h) => h.wave === w.index)
        .map((h) => ({
          name: h.name,
          state: h.state,
          ...(h.reason === null ? {} : { reason: h.reason }),
          ...(h.commandId === null ? {} : { commandId: h.commandId }),
          ...(h.startedAt === null ? {} : { startedAt: h.startedAt }),
          ...(h.finishedAt === null ? {} : { finishedAt: h.finishedAt }),
        })),
    })),
    leftOut: r.leftOut,
    unchanged: r.unchanged,
    ...(r.failure === null ? {} : { failure: r.failure }),
    ...(r.revert === null
      ? {}
      : {
          revert: {
            kind: r.revert.kind,
            url: r.revert.url,
            state: r.revert.state,
            ...(r.revert.error === null ? {} : { error: r.revert.error }),
            ...(r.revert.by === undefined ? {} : { by: r.revert.by }),
            ...(r.revert.note === undefined ? {} : { note: r.revert.note }),
            ...(r.revert.rollout === undefined ? {} : { rollout: r.revert.rollout }),
            ...(r.revert.before === undefined ? {} : { before: r.revert.before }),
          },
        }),
    ...(r.stoppedBecause === null ? {} : { stoppedBecause: r.stoppedBecause }),
  };
}
