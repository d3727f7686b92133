/**
 * The outbox of the coordinator's steps (worker/coordinator/outbox.ts): effects written in the step
 * that causes them, read back in seq order and deleted once carried out. Bodies are opaque here; the
 * outbox component parses them.
 */
import { number, text, textOrNull } from "./sql.ts";

export interface OutboxRow {
  seq: number;
  key: string;
  body: string;
  generation: number;
  attempts: number;
  nextAt: number;
  lastError: string | null;
}

export class OutboxStore {
  private readonly sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.sql = sql;
  }

  /**
   * Adds the effect, or replaces the pending one of the same key: its body, its generation bumped (so
   * a run already under way does not delete it), its attempts reset and due now.
   */
  put(key: string, body: string, now: number): void {
    this.sql.exec(
      `INSERT INTO outbox (key, body, next_at) VALUES (?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET body = excluded.body, generation = generation + 1, attempts = 0, next_at = excluded.next_at, last_error = NULL`,
      key,
      body,
      now,
    );
  }

  /** Whether an effect of this key is pending (an audit entry written once, say). */
  has(key: string): boolean {
    return this.sql.exec("SELECT 1 FROM outbox WHERE key = ?", key).toArray().length > 0;
  }

  /** The next effect due at `now` after `afterSeq`, in the order they were first written. */
  nextDue(now: number, afterSeq: number): OutboxRow | null {
    const row = this.sql.exec("SELECT * FROM outbox WHERE next_at <= ? AND seq > ? ORDER BY seq LIMIT 1", now, afterSeq).toArray()[0];
    return row ? toRow(row) : null;
  }

  /** Up to `limit` effects due at `now` whose key starts with `prefix` (one kind), in the order they were first written. */
  dueOfKind(now: number, prefix: string, limit: number): OutboxRow[] {
    return this.sql
      .exec("SELECT * FROM outbox WHERE next_at <= ? AND substr(key, 1, ?) = ? ORDER BY seq LIMIT ?", now, prefix.length, prefix, limit)
      .toArray()
      .map(toRow);
  }

  /** Up to `limit` pending effects whose key starts with `prefix`, due or not, after `afterSeq`, in the order they were first written. */
  pendingOfKind(prefix: string, limit: number, afterSeq: number): OutboxRow[] {
    return this.sql
      .exec("SELECT * FROM outbox WHERE seq > ? AND substr(key, 1, ?) = ? ORDER BY seq LIMIT ?", afterSeq, prefix.length, prefix, limit)
      .toArray()
      .map(toRow);
  }

  /** Carried out: gone, unless a newer effect of the same key replaced it meanwhile. */
  done(key: string, generation: number): void {
    this.sql.exec("DELETE FROM outbox WHERE key = ? AND generation = ?", key, generation);
  }

  /** Failed: tried again at `nextAt`, unless a newer effect of the same key replaced it meanwhile. */
  retryAt(key: string, generation: number, nextAt: number, error: string): void {
    this.sql.exec(
      "UPDATE outbox SET attempts = attempts + 1, next_at = ?, last_error = ? WHERE key = ? AND generation = ?",
      nextAt,
      error,
      key,
      generation,
    );
  }

  /** Every pending effect due by `now`, its backoff forgotten. */
  dueBy(now: number): void {
    this.sql.exec("UPDATE outbox SET next_at = ? WHERE next_at > ?", now, now);
  }

  /** The earliest moment an effect is due (after `after`, when given), or null when none is. */
  nextAt(after: number | null): number | null {
    const row = (after === null ? this.sql.exec("SELECT min(next_at) AS at FROM outbox") : this.sql.exec("SELECT min(next_at) AS at FROM outbox WHERE next_at > ?", after)).one();
    return row.at === null ? null : number(row.at);
  }

  size(): number {
    return number(this.sql.exec("SELECT count(*) AS n FROM outbox").one().n);
  }
}

function toRow(row: Record<string, SqlStorageValue>): OutboxRow {
  return {
    seq: number(row.seq),
    key: text(row.key),
    body: text(row.body),
    generation: number(row.generation),
    attempts: number(row.attempts),
    nextAt: number(row.next_at),
    lastError: textOrNull(row.last_error),
  };
}
