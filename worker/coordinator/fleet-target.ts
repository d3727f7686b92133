/**
 * The fleet's target as the coordinator judges reports against it (a rollout's gate, a host's
 * incidents): a copy of D1's GitHub state (worker/db/github.ts, the truth), read once and kept until the
 * state can have changed, so ten hosts of a wave ending at once are judged without queueing a D1 batch
 * each. Every writer of that state tells the coordinator afterwards (the update-PR service's
 * `notifyRepoChanged`, the `notify({ type: "repo" })` RPC), which drops the copy; the next judgement
 * reads it again. A read that such a change overtook is read again, never kept. Only a CI signal is
 * stored without a nudge when it concerns no open PR's head: the compartments never read `ciState`.
 * A nudge lost on the way (the RPC failed) is bounded by MAX_AGE_MS, what a missed webhook costs
 * until the next scheduled refresh anyway.
 */
import type { RepoState, UpdatePr } from "../../common/protocol.ts";

/** What `loadFleetTarget` (worker/db/github.ts) reads: the followed branch's state and the update PRs. */
export interface FleetTarget {
  repo: RepoState | null;
  updatePrs: UpdatePr[];
}

/** The scheduled refresh's period: a copy older than this is read again even without a nudge. */
export const MAX_AGE_MS = 5 * 60 * 1000;
/** How often a read overtaken by a change is repeated before its answer is used unkept. */
const READ_TRIES = 5;

export class FleetTargetCopy {
  private copy: { target: FleetTarget; readAt: number } | null = null;
  /** Bumped when the state changed: a read that began before is not kept. */
  private generation = 0;
  /** The read under way, shared by every judgement that needs the target meanwhile. */
  private reading: { generation: number; promise: Promise<FleetTarget> } | null = null;
  /** D1 reads of the target since this object started (GET /api/stats): what the copy saves. */
  reads = 0;

  /** D1's state: `loadFleetTarget` on the coordinator's database. */
  private readonly load: () => Promise<FleetTarget>;
  private readonly now: () => number;

  constructor(load: () => Promise<FleetTarget>, now: () => number) {
    this.load = load;
    this.now = now;
  }

  /** The copy when it is current; null when a judgement must await `read()`. */
  current(): FleetTarget | null {
    if (this.copy === null || this.now() - this.copy.readAt >= MAX_AGE_MS) return null;
    return this.copy.target;
  }

  /** The copy, or D1's state read now (once for every caller waiting meanwhile). */
  async read(): Promise<FleetTarget> {
    let target: FleetTarget | null = null;
    for (let attempt = 0; attempt < READ_TRIES; attempt++) {
      const kept = this.current();
      if (kept !== null) return kept;
      const generation = this.generation;
      target = await this.readShared(generation);
      if (generation === this.generation) {
        this.copy = { target, readAt: this.now() };
        return target;
      }
    }
    console.warn(`fleet target: the GitHub state changed during ${READ_TRIES} reads; the last one is used, not kept`);
    return target!;
  }

  /** The GitHub state changed in D1: the next judgement reads it again. */
  changed(): void {
    this.generation++;
    this.copy = null;
    this.reading = null;
  }

  private readShared(generation: number): Promise<FleetTarget> {
    if (this.reading?.generation !== generation) {
      this.reads++;
      const promise = this.load();
      const reading = { generation, promise };
      this.reading = reading;
      // Shared while under way only: a later caller (the copy aged out, a read failed) reads anew.
      const settled = () => {
        if (this.reading === reading) this.reading = null;
      };
      promise.then(settled, settled);
    }
    return this.reading!.promise;
  }
}
