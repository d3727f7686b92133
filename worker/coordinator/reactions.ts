/**
 * The queue of reactions between features: a step raises them, and once it is done they are routed
 * one after another, each a step of its own whose own reactions queue behind it — steps never run
 * inside each other (what today's rolloutJobs queue did for rollouts, for every feature).
 */
import type { Reaction } from "./host.ts";
import type { StepOf } from "./step.ts";

export class Reactions {
  private readonly queue: Reaction[] = [];
  private routing = false;
  private readonly route: (reaction: Reaction) => void;

  constructor(route: (reaction: Reaction) => void) {
    this.route = route;
  }

  raise(reaction: Reaction): void {
    this.queue.push(reaction);
  }

  /** Runs the step, then every reaction it raised (unless a run is routing already: its loop takes them). */
  run<T>(body: StepOf<T>): T {
    const { value } = body();
    if (this.routing) return value;
    this.routing = true;
    try {
      for (let next = this.queue.shift(); next; next = this.queue.shift()) this.route(next);
    } finally {
      this.routing = false;
    }
    return value;
  }
}
