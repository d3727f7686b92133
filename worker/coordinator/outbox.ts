/**
 * The durable outbox: the effects of a step (audit entries, last-seen writes, notifications,
 * automation nudges, commit status posts, reverts, health re-checks) are written to the object's
 * SQLite in the step that causes them, and carried out from there after it — one after another, in the
 * order they were first written, deleted when done, retried with backoff when not. An eviction
 * between a step and its effects loses none: the next start (its alarm) carries them out. Each is
 * idempotent by its key (effects.ts), so one carried out twice across a crash happens once.
 */
import type { OutboxRow, OutboxStore } from "../db/coordinator/outbox.ts";
import { Effect, effectKey, LAST_SEEN_KEY_PREFIX, type LastSeenEffect } from "./effects.ts";

/** The first retry after this long, doubling up to MAX_BACKOFF_MS. */
const FIRST_BACKOFF_MS = 30_000;
const MAX_BACKOFF_MS = 60 * 60 * 1000;
/** After this many failures an effect is dropped, logged: about a day of retries at the longest backoff. */
const MAX_ATTEMPTS = 30;

/**
 * Last-seen writes go to D1 together, up to this many in one batch: a fleet coming online at once
 * (a deploy of the Worker, a restart) writes one per host, and one D1 round trip each would keep the
 * outbox busy for seconds while everything written after them waits.
 */
const LAST_SEEN_BATCH = 100;

export type EffectHandlers = { [K in Exclude<Effect["type"], "last-seen">]: (effect: Extract<Effect, { type: K }>) => Promise<void> } & {
  "last-seen": (effects: LastSeenEffect[]) => Promise<void>;
};

export class Outbox {
  private running: Promise<void> | null = null;
  /** An effect was written while a run was under way: the run starts over from the first row. */
  private again = false;
  /** Written since the shell last started a run. */
  private written = false;

  private readonly store: OutboxStore;

  private readonly now: () => number;

  constructor(store: OutboxStore, now: () => number) {
    this.store = store;
    this.now = now;
    // A new start (an eviction, a crash, a deploy) tries every pending effect at once: what failed
    // before may work now, and what a crash left untried should not wait out a backoff it never had.
    store.dueBy(now());
  }

  add(effect: Effect): void {
    this.store.put(effectKey(effect), JSON.stringify(effect), this.now());
    this.written = true;
  }

  /** Whether effects were written since the last call (the shell then starts a run). */
  takeWritten(): boolean {
    const written = this.written;
    this.written = false;
    return written;
  }

  /** The earliest effect due; while a run is under way, the earliest retry (the run takes every effect due now). */
  nextWakeAt(): number | null {
    return this.store.nextAt(this.running ? this.now() : null);
  }

  get size(): number {
    return this.store.size();
  }

  /** Carries out every effect due, one at a time; a second call during a run joins it. */
  drain(handlers: EffectHandlers): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.run(handlers).finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async run(handlers: EffectHandlers): Promise<void> {
    do {
      this.again = false;
      let after = 0;
      for (let row = this.store.nextDue(this.now(), after); row; row = this.store.nextDue(this.now(), after)) {
        after = row.seq;
        const parsed = Effect.safeParse(safeJson(row.body));
        if (!parsed.success) {
          console.error("outbox: an effect no longer reads; dropped", row.key);
          this.store.done(row.key, row.generation);
          continue;
        }
        const rows = parsed.data.type === "last-seen" ? this.store.dueOfKind(this.now(), LAST_SEEN_KEY_PREFIX, LAST_SEEN_BATCH) : [row];
        try {
          await (parsed.data.type === "last-seen" ? handlers["last-seen"](lastSeenOf(rows)) : carryOut(handlers, parsed.data));
          for (const done of rows) this.store.done(done.key, done.generation);
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          for (const failed of rows) this.failed(failed, message);
        }
      }
    } while (this.again);
  }

  private failed(row: OutboxRow, message: string): void {
    if (row.attempts + 1 >= MAX_ATTEMPTS) {
      console.error("outbox: giving up on an effect after", MAX_ATTEMPTS, "attempts", row.key, message);
      this.store.done(row.key, row.generation);
    } else {
      console.warn("outbox: effect failed, retried later", row.key, message);
      this.store.retryAt(row.key, row.generation, this.now() + Math.min(FIRST_BACKOFF_MS * 2 ** row.attempts, MAX_BACKOFF_MS), message);
    }
  }
}

/** The last-seen effects of a batch's rows; a row that no longer reads is dropped with the batch, as its own turn would drop it. */
function lastSeenOf(rows: OutboxRow[]): LastSeenEffect[] {
  return rows.flatMap((row) => {
    const parsed = Effect.safeParse(safeJson(row.body));
    if (parsed.success && parsed.data.type === "last-seen") return [parsed.data];
    console.error("outbox: an effect no longer reads; dropped", row.key);
    return [];
  });
}

function carryOut(handlers: EffectHandlers, effect: Effect): Promise<void> {
  // One line per type keeps the handler's argument narrowed to its own effect.
  switch (effect.type) {
    case "audit":
      return handlers.audit(effect);
    case "last-seen":
      return handlers["last-seen"]([effect]);
    case "notify":
      return handlers.notify(effect);
    case "nudge-automation":
      return handlers["nudge-automation"](effect);
    case "commit-status":
      return handlers["commit-status"](effect);
    case "revert":
      return handlers.revert(effect);
    case "health-recheck":
      return handlers["health-recheck"](effect);
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
