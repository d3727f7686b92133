/**
 * How much command history the coordinator keeps (docs/operations.md, "Command history"): the rules;
 * worker/db/coordinator/commands.ts carries them out in the step that ends a command.
 *
 * - A host keeps at most its newest `perHostMax` finished commands: the longest list the API pages
 *   (`GET /api/hosts/:name/commands?limit=200`).
 * - The fleet keeps about `fleetLimit` finished commands: past it, the oldest go first, down to a batch
 *   below it, so the pass that ranks every host's commands runs once per batch of ends, not per end.
 * - Never a host's newest `perHostKept`: what its page lists and its compartments read (worker/fleet.ts).
 * Active commands are never pruned. What is pruned is counted per host, and the host's command list says so.
 */

export interface HistoryBounds {
  fleetLimit: number;
  perHostMax: number;
  perHostKept: number;
  /** Finished commands that keep their output, per host (each up to MAX_OUTPUT_BYTES_PER_COMMAND). */
  outputPerHost: number;
}

export const DEFAULT_COMMAND_HISTORY_LIMIT = 50_000;
export const PER_HOST_MAX = 200;
/** worker/fleet.ts reads this many per host for the host page and the compartments. */
export const PER_HOST_KEPT = 20;
export const OUTPUT_PER_HOST = 50;

/**
 * `COMMAND_HISTORY_LIMIT`: a whole number of finished commands, at least PER_HOST_KEPT. Anything else is
 * a configuration mistake: the default applies and `problem` says why (the coordinator logs it).
 */
export function historyBounds(raw: string | undefined): { bounds: HistoryBounds; problem: string | null } {
  const bounds = (fleetLimit: number): HistoryBounds => ({ fleetLimit, perHostMax: PER_HOST_MAX, perHostKept: PER_HOST_KEPT, outputPerHost: OUTPUT_PER_HOST });
  if (raw === undefined || raw.trim() === "") return { bounds: bounds(DEFAULT_COMMAND_HISTORY_LIMIT), problem: null };
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < PER_HOST_KEPT) {
    return {
      bounds: bounds(DEFAULT_COMMAND_HISTORY_LIMIT),
      problem: `COMMAND_HISTORY_LIMIT must be a whole number of at least ${PER_HOST_KEPT}, not ${JSON.stringify(raw)}: keeping ${DEFAULT_COMMAND_HISTORY_LIMIT}`,
    };
  }
  return { bounds: bounds(value), problem: null };
}

/** A twentieth of the limit: the pass that ranks the fleet's history runs once per that many ends. */
export const fleetBatch = (bounds: HistoryBounds): number => Math.max(1, Math.floor(bounds.fleetLimit / 20));

/**
 * How many finished commands the fleet pass should delete, oldest first, now that `finished` are stored:
 * none until they pass the limit, or, when the hosts' kept newest alone fill it (the last pass left
 * `leftByLastPass`, more than the limit), until a batch more have ended since.
 */
export function fleetPruneCount(finished: number, bounds: HistoryBounds, leftByLastPass: number): number {
  const batch = fleetBatch(bounds);
  const trigger = Math.max(bounds.fleetLimit, leftByLastPass + batch);
  if (finished <= trigger) return 0;
  return finished - Math.max(0, bounds.fleetLimit - batch);
}

/**
 * The most finished commands a fleet of `hosts` keeps: the limit, or every host's kept newest (and a
 * batch ended since the last pass) when those alone are more, never more than each host at its maximum.
 */
export function storedCommandsBound(hosts: number, bounds: HistoryBounds): number {
  return Math.min(hosts * bounds.perHostMax, Math.max(bounds.fleetLimit, hosts * bounds.perHostKept + fleetBatch(bounds)));
}
