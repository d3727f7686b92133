/**
 * The Notifier Durable Object's own SQLite storage: every delivery (one per event and channel) with
 * its state, attempts, last status and error, and the ids of the events published, so the same
 * fact published twice is delivered once. It holds no secret: a channel's URL, signing secret and
 * token are read from the settings at each attempt, and the event itself carries none.
 */
import { NotificationDelivery, NotificationEvent, type NotificationChannel } from "../../common/protocol.ts";
import { applyObjectMigrations, type ObjectMigrations } from "./object-migrations.ts";

/** Deliveries kept for the settings page; the oldest finished ones go first. */
export const KEEP_DELIVERIES = 500;
/** Event ids remembered for idempotency; far more than a fleet publishes between two prunes. */
export const KEEP_PUBLISHED_IDS = 5000;

const MIGRATIONS: ObjectMigrations = {
  1: `
    CREATE TABLE deliveries (
      id TEXT PRIMARY KEY,
      event_id TEXT NOT NULL,
      channel_id TEXT NOT NULL,
      channel_kind TEXT NOT NULL,
      event TEXT NOT NULL,
      title TEXT NOT NULL,
      test INTEGER NOT NULL DEFAULT 0,
      state TEXT NOT NULL,
      attempts INTEGER NOT NULL DEFAULT 0,
      last_status INTEGER,
      last_error TEXT,
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL,
      -- Epoch ms of the next try (or the end of a try's lease while it is under way); null once final.
      next_attempt_ms INTEGER,
      -- The NotificationEvent as JSON: what is sent, without any channel secret.
      body TEXT NOT NULL,
      UNIQUE (event_id, channel_id)
    );
    CREATE INDEX deliveries_due ON deliveries(next_attempt_ms) WHERE next_attempt_ms IS NOT NULL;
    CREATE INDEX deliveries_created ON deliveries(created_at DESC, id DESC);
    -- Every event id published, matched by a channel or not: a channel added later does not get old facts.
    CREATE TABLE published (
      event_id TEXT PRIMARY KEY,
      at_ms INTEGER NOT NULL
    );
  `,
};

export interface DeliveryRecord {
  delivery: NotificationDelivery;
  event: NotificationEvent;
  nextAttemptMs: number | null;
}

type Row = Record<string, SqlStorageValue>;
const textOrNull = (value: SqlStorageValue | undefined): string | null => (value === null || value === undefined ? null : String(value));

function toRecord(row: Row): DeliveryRecord | null {
  const nextAttemptMs = row.next_attempt_ms === null || row.next_attempt_ms === undefined ? null : Number(row.next_attempt_ms);
  const delivery = NotificationDelivery.safeParse({
    id: String(row.id),
    channelId: String(row.channel_id),
    channelKind: row.channel_kind,
    event: row.event,
    eventId: String(row.event_id),
    title: String(row.title),
    test: Number(row.test) === 1,
    state: row.state,
    attempts: Number(row.attempts),
    lastStatus: row.last_status === null || row.last_status === undefined ? null : Number(row.last_status),
    lastError: textOrNull(row.last_error),
    createdAt: String(row.created_at),
    updatedAt: String(row.updated_at),
    nextAttemptAt: nextAttemptMs === null ? null : new Date(nextAttemptMs).toISOString(),
  });
  let event: NotificationEvent | null = null;
  try {
    const parsed = NotificationEvent.safeParse(JSON.parse(String(row.body)));
    event = parsed.success ? parsed.data : null;
  } catch {
    event = null;
  }
  if (!delivery.success || event === null) {
    console.error("a stored notification delivery no longer reads; it is left out", row.id);
    return null;
  }
  return { delivery: delivery.data, event, nextAttemptMs };
}

export interface AttemptOutcome {
  state: NotificationDelivery["state"];
  lastStatus: number | null;
  lastError: string | null;
  nextAttemptMs: number | null;
  at: string;
}

export class NotifierStorage {
  private readonly sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.sql = sql;
    applyObjectMigrations(this.sql, MIGRATIONS);
  }

  /** Records the event id; false when it was published before (nothing to do then). */
  markPublished(eventId: string, nowMs: number): boolean {
    const inserted = this.sql.exec("INSERT OR IGNORE INTO published (event_id, at_ms) VALUES (?, ?)", eventId, nowMs).rowsWritten;
    return inserted > 0;
  }

  /** Stores a new delivery, due at `dueMs`; an existing one for the same event and channel is kept (false). */
  insert(id: string, channel: NotificationChannel, event: NotificationEvent, test: boolean, dueMs: number, at: string): boolean {
    const written = this.sql.exec(
      `INSERT OR IGNORE INTO deliveries (id, event_id, channel_id, channel_kind, event, title, test, state, attempts, created_at, updated_at, next_attempt_ms, body)
       VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, ?)`,
      id,
      event.id,
      channel.id,
      channel.kind,
      event.event,
      event.title,
      test ? 1 : 0,
      at,
      at,
      dueMs,
      JSON.stringify(event),
    ).rowsWritten;
    return written > 0;
  }

  get(id: string): DeliveryRecord | null {
    const row = this.sql.exec("SELECT * FROM deliveries WHERE id = ?", id).toArray()[0];
    return row ? toRecord(row) : null;
  }

  /** Deliveries whose next try is due, oldest first. */
  due(nowMs: number, limit: number): DeliveryRecord[] {
    return this.sql
      .exec("SELECT * FROM deliveries WHERE next_attempt_ms IS NOT NULL AND next_attempt_ms <= ? ORDER BY next_attempt_ms, id LIMIT ?", nowMs, limit)
      .toArray()
      .flatMap((row) => toRecord(row) ?? []);
  }

  /** The earliest next try of any delivery, or null when none waits. */
  nextDueMs(): number | null {
    const value = this.sql.exec("SELECT min(next_attempt_ms) AS due FROM deliveries WHERE next_attempt_ms IS NOT NULL").one().due;
    return value === null || value === undefined ? null : Number(value);
  }

  /**
   * Claims the next try: counts the attempt before it is made (a try cut off by a crash still counts,
   * so there are never more than the limit) and leases the delivery until `leaseUntilMs`, when a
   * try that never came back is due again. False when the delivery is not due (another run took it).
   */
  claim(id: string, nowMs: number, leaseUntilMs: number, at: string): boolean {
    return (
      this.sql.exec(
        `UPDATE deliveries SET attempts = attempts + 1, next_attempt_ms = ?, updated_at = ?
         WHERE id = ? AND next_attempt_ms IS NOT NULL AND next_attempt_ms <= ?`,
        leaseUntilMs,
        at,
        id,
        nowMs,
      ).rowsWritten > 0
    );
  }

  record(id: string, outcome: AttemptOutcome): void {
    this.sql.exec(
      "UPDATE deliveries SET state = ?, last_status = ?, last_error = ?, next_attempt_ms = ?, updated_at = ? WHERE id = ?",
      outcome.state,
      outcome.lastStatus,
      outcome.lastError,
      outcome.nextAttemptMs,
      outcome.at,
      id,
    );
  }

  /** Newest first. */
  list(limit: number): NotificationDelivery[] {
    return this.sql
      .exec("SELECT * FROM deliveries ORDER BY created_at DESC, id DESC LIMIT ?", limit)
      .toArray()
      .flatMap((row) => toRecord(row)?.delivery ?? []);
  }

  /** Keeps the newest KEEP_DELIVERIES deliveries (pending ones always) and KEEP_PUBLISHED_IDS event ids. */
  prune(): void {
    this.sql.exec(
      `DELETE FROM deliveries WHERE next_attempt_ms IS NULL AND id IN (
         SELECT id FROM deliveries ORDER BY created_at DESC, id DESC LIMIT -1 OFFSET ?)`,
      KEEP_DELIVERIES,
    );
    this.sql.exec(
      "DELETE FROM published WHERE event_id IN (SELECT event_id FROM published ORDER BY at_ms DESC, event_id DESC LIMIT -1 OFFSET ?)",
      KEEP_PUBLISHED_IDS,
    );
  }
}
