/**
 * Events in the last minute, kept as one counter per second: adding is O(1)
 * and reading sums 60 numbers, whatever the rate. Memory only: after a
 * restart the window fills again within a minute.
 */
export class MinuteWindow {
  readonly #counts = new Array<number>(60).fill(0);
  /** The second (since the epoch) each slot counts; a slot from an older minute counts as empty. */
  readonly #seconds = new Array<number>(60).fill(-1);

  add(now: number): void {
    const second = Math.floor(now / 1000);
    const slot = second % 60;
    if (this.#seconds[slot] !== second) {
      this.#seconds[slot] = second;
      this.#counts[slot] = 0;
    }
    this.#counts[slot]! += 1;
  }

  /** How many were added in the 60 seconds up to `now`. */
  count(now: number): number {
    const second = Math.floor(now / 1000);
    let total = 0;
    for (let slot = 0; slot < 60; slot++) {
      const at = this.#seconds[slot]!;
      if (at > second - 60 && at <= second) total += this.#counts[slot]!;
    }
    return total;
  }
}
