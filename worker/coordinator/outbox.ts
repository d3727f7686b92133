/**
 * The durable outbox: the effects of a step (audit entries, last-seen writes, notifications,
 * automation nudges, commit status posts, reverts, health re-checks) are written to the object's
 * SQLite in the step that causes them, and carried out from there after it — one after another, in the
 * order they were first written, deleted when done, retried with backoff when not. An eviction
 * between a step and its effects loses none: the next start (its alarm) carries them out. Each is
 * idempotent by its key (effects.ts), so one carried out twice across a crash happens once.
 */
import type { OutboxRow, OutboxStore } from "../db/coordinator/outbox.ts";
import { AUDIT_KEY_PREFIX, Effect, effectKey, LAST_SEEN_KEY_PREFIX, type AuditEffect, type LastSeenEffect } from "./effects.ts";

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
/**
 * Audit entries go to D1 together too, in the order they were written (one D1 batch is one transaction,
 * its rows numbered in order): a rollout's first wave or many commands at once write one each.
 */
const AUDIT_BATCH = 100;

/**
 * An audit entry is carried this long after the step that wrote it, not at once: the step that queues a
 * command also releases the held poll's answer and the admin's 202, and a D1 write beside them (in
 * production its call from the object's one isolate, locally the whole insert on workerd's one thread)
 * stands in their way — it made dispatch slower when tried (docs/protocol.md#delivery-latency). Nothing
 * waits for it meanwhile: the entry is durable in the object's storage, the audit log's reader carries the
 * pending ones before it reads (`flush`), and entries written within the delay go to D1 in one batch.
 */
export const AUDIT_CARRY_DELAY_MS = 100;

/**
 * A host's re-judgement after a command's end waits this long: a finished event is judged by the shell
 * right after its step (its report, or the latest stored one), so the re-check mostly finds the host judged
 * already and does nothing (the shell's `health-recheck` handler). Carried at once, it ran between the
 * step and that judgement, a second verdict over the same report, on the one thread the other hosts' ends
 * of a wave wait for. It stays durable for the ends nobody judges (a timeout, a lost command, an eviction
 * between the step and the judgement).
 */
export const RECHECK_CARRY_DELAY_MS = 250;

const CARRY_DELAY_MS: Partial<Record<Effect["type"], number>> = { audit: AUDIT_CARRY_DELAY_MS, "health-recheck": RECHECK_CARRY_DELAY_MS };

/** The kinds carried out in batches: a batch takes every due effect of its kind, up to its limit, in the order written. */
type BatchedType = "last-seen" | "audit";
const BATCHES: Record<BatchedType, { prefix: string; limit: number }> = {
  "last-seen": { prefix: LAST_SEEN_KEY_PREFIX, limit: LAST_SEEN_BATCH },
  audit: { prefix: AUDIT_KEY_PREFIX, limit: AUDIT_BATCH },
};
const isBatched = (type: Effect["type"]): type is BatchedType => type in BATCHES;

export type EffectHandlers = { [K in Exclude<Effect["type"], BatchedType>]: (effect: Extract<Effect, { type: K }>) => Promise<void> } & {
  "last-seen": (effects: LastSeenEffect[]) => Promise<void>;
  audit: (entries: AuditEffect[]) => Promise<void>;
};

export class Outbox {
  private running: Promise<void> | null = null;
  /** An effect was written while a run was under way: the run starts over from the first row. */
  private again = false;
  /** Written since the shell last asked, due now: the shell starts a run. */
  private written = false;
  /** The earliest effect written since the shell last asked that is due later (an audit entry, a re-check): the shell sets the alarm for it. */
  private deferredAt: number | null = null;

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
    const delay = CARRY_DELAY_MS[effect.type] ?? 0;
    const dueAt = this.now() + delay;
    this.store.put(effectKey(effect), JSON.stringify(effect), dueAt);
    if (delay === 0) this.written = true;
    else this.deferredAt = Math.min(this.deferredAt ?? dueAt, dueAt);
  }

  /**
   * What was written since the last call: effects due now ("now": the shell starts a run), the earliest
   * moment one written for later is due (the shell has the alarm ring by then), or none.
   */
  takeWritten(): "now" | number | null {
    const written = this.written ? "now" : this.deferredAt;
    this.written = false;
    this.deferredAt = null;
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
        const { type } = parsed.data;
        const rows = isBatched(type) ? this.store.dueOfKind(this.now(), BATCHES[type].prefix, BATCHES[type].limit) : [row];
        await this.carry(rows, () => (isBatched(type) ? carryBatch(handlers, type, rows) : carryOut(handlers, parsed.data)));
      }
    } while (this.again);
  }

  /**
   * Carries out every pending effect of one batched kind now, in the order written, whether due or
   * waiting out a retry, beside a run under way: for a reader that must see them where they go (the
   * audit log's, read-your-writes). An effect the run is carrying too is carried out once all the same,
   * each being idempotent by its key, and the two keep the order written.
   */
  async flush(type: BatchedType, handlers: EffectHandlers): Promise<void> {
    const { prefix, limit } = BATCHES[type];
    for (let rows = this.store.pendingOfKind(prefix, limit, 0); rows.length > 0; rows = this.store.pendingOfKind(prefix, limit, rows.at(-1)!.seq)) {
      const batch = rows;
      await this.carry(batch, () => carryBatch(handlers, type, batch));
    }
  }

  private async carry(rows: OutboxRow[], carryOut: () => Promise<void>): Promise<void> {
    try {
      await carryOut();
      for (const done of rows) this.store.done(done.key, done.generation);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      for (const failed of rows) this.failed(failed, message);
    }
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

/** A batch's effects; a row that no longer reads is dropped with the batch, as its own turn would drop it. */
function effectsOf<T extends BatchedType>(rows: OutboxRow[], type: T): Extract<Effect, { type: T }>[] {
  return rows.flatMap((row) => {
    const parsed = Effect.safeParse(safeJson(row.body));
    if (parsed.success && isOfType(parsed.data, type)) return [parsed.data];
    console.error("outbox: an effect no longer reads; dropped", row.key);
    return [];
  });
}

const isOfType = <T extends Effect["type"]>(effect: Effect, type: T): effect is Extract<Effect, { type: T }> => effect.type === type;

function carryBatch(handlers: EffectHandlers, type: BatchedType, rows: OutboxRow[]): Promise<void> {
  return type === "audit" ? handlers.audit(effectsOf(rows, "audit")) : handlers["last-seen"](effectsOf(rows, "last-seen"));
}

function carryOut(handlers: EffectHandlers, effect: Effect): Promise<void> {
  // One line per type keeps the handler's argument narrowed to its own effect.
  switch (effect.type) {
    case "audit":
      return handlers.audit([effect]);
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
    case "publish-desired":
      return handlers["publish-desired"](effect);
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
