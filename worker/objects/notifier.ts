import { DurableObject } from "cloudflare:workers";
import type * as z from "zod";
import {
  NotificationEvent,
  type NotificationChannel,
  type NotificationDelivery,
  type NotificationEventName,
  type Settings,
} from "../../common/protocol.ts";
import { openDatabase, type Database } from "../db/client.ts";
import { NotifierStorage, type DeliveryRecord } from "../db/notifier-storage.ts";
import { currentSettings } from "../db/settings.ts";
import type { WorkerEnv } from "../env.ts";
import { newId } from "../ids.ts";
import { refuse, type Outcome } from "../outcome.ts";
import { SettingsError } from "../settings.ts";
import { channelsFor } from "../notifications/channels.ts";
import { testEvent } from "../notifications/events.ts";
import { buildRequest, redact } from "../notifications/payloads.ts";
import { decideRetry, MAX_ATTEMPTS, retryDelaysFromVar, type AttemptResult } from "../notifications/retry.ts";

/** A receiver that has not answered in this long has failed this try. */
const ATTEMPT_TIMEOUT_MS = 10_000;
/** A try under way holds its delivery this long; one cut off by a crash is due again after it. */
const ATTEMPT_LEASE_MS = ATTEMPT_TIMEOUT_MS + 20_000;
/** Tries per alarm run; the rest are due at once in the next run. */
const ATTEMPTS_PER_RUN = 50;
/** When the settings cannot be read, deliveries wait this long and are tried again. */
const SETTINGS_RETRY_MS = 60_000;
/** With flake updates off there are no update-PR notifications (see docs/automation.md "Settings", `flakeUpdates`). */
const UPDATE_PR_EVENTS: readonly NotificationEventName[] = ["update-pr-opened", "ci-failed", "merge-scheduled", "merged"];
/** What a delivery's last error keeps of a receiver's answer. */
const ERROR_TEXT_CHARS = 300;

/**
 * The fleet's notifier: one Durable Object that stores a delivery per event and matching channel in
 * its own SQLite storage (worker/db/notifier-storage.ts) and sends them from its alarm, with the
 * retry policy of worker/notifications/retry.ts. `publish` returns once the deliveries are stored,
 * so whoever publishes never waits for a receiver. Channels, with their secrets, are read from the
 * settings at each try and never stored here or answered.
 */
export class Notifier extends DurableObject<WorkerEnv> {
  private readonly db: Database;
  private readonly store: NotifierStorage;

  constructor(ctx: DurableObjectState, env: WorkerEnv) {
    super(ctx, env);
    this.db = openDatabase(env.DB);
    this.store = new NotifierStorage(ctx.storage.sql);
  }

  /**
   * Stores one delivery per channel that wants the event and has the alarm send them. An event id
   * published before is ignored, whether or not a channel matched it then: the same fact is told once.
   */
  async publish(input: z.input<typeof NotificationEvent>): Promise<Outcome<{ duplicate: boolean; deliveries: string[] }>> {
    // An RPC argument is a structured clone from another isolate's code: parsed, never trusted.
    const parsed = NotificationEvent.safeParse(input);
    if (!parsed.success) return refuse(400, "invalid_event", `not a notification event: ${parsed.error.issues[0]?.path.join(".") ?? ""} ${parsed.error.issues[0]?.message ?? ""}`.trim());
    const event = parsed.data;
    const settings = await currentSettings(this.env, this.db);
    // From here to the stored deliveries nothing is awaited but this object's storage.
    const now = Date.now();
    if (!this.store.markPublished(event.id, now)) return { ok: true, duplicate: true, deliveries: [] };
    const wanted = !settings.flakeUpdates.enabled && UPDATE_PR_EVENTS.includes(event.event) ? [] : channelsFor(settings.notifications, event.event);
    const at = new Date(now).toISOString();
    const deliveries: string[] = [];
    for (const channel of wanted) {
      const id = newId("nd");
      if (this.store.insert(id, channel, event, false, now, at)) deliveries.push(id);
    }
    if (deliveries.length > 0) await this.scheduleNext();
    return { ok: true, duplicate: false, deliveries };
  }

  /** Sends a test notification to one channel now and answers the delivery after its first try. */
  async sendTest(channelId: string, actor: string): Promise<Outcome<{ delivery: NotificationDelivery }>> {
    let settings: Settings;
    try {
      settings = await currentSettings(this.env, this.db);
    } catch (error) {
      if (error instanceof SettingsError) return refuse(409, "settings_invalid", error.message);
      throw error;
    }
    const channel = settings.notifications.find((c) => c.id === channelId);
    if (!channel) return refuse(404, "channel_not_found", `no notification channel ${channelId}`);
    const now = Date.now();
    const id = newId("nd");
    const event = testEvent(channel.events, id, actor, this.env.DASHBOARD_URL, new Date(now));
    this.store.insert(id, channel, event, true, now, new Date(now).toISOString());
    const record = this.store.get(id);
    if (record) await this.attempt(record, channel, retryDelaysFromVar(this.env.NOTIFICATION_RETRY_SECONDS));
    await this.scheduleNext();
    const delivery = this.store.get(id)?.delivery;
    if (!delivery) throw new Error(`delivery ${id} vanished after its first try`);
    return { ok: true, delivery };
  }

  /** The newest deliveries first; nothing in them is secret. */
  async deliveries(limit: number): Promise<NotificationDelivery[]> {
    return this.store.list(limit);
  }

  override async alarm(): Promise<void> {
    let channels: Map<string, NotificationChannel>;
    try {
      channels = new Map((await currentSettings(this.env, this.db)).notifications.map((c) => [c.id, c]));
    } catch (error) {
      console.error("notifier: the settings cannot be read; deliveries wait", error);
      if (this.store.nextDueMs() !== null) await this.ctx.storage.setAlarm(Date.now() + SETTINGS_RETRY_MS);
      return;
    }
    const delays = retryDelaysFromVar(this.env.NOTIFICATION_RETRY_SECONDS);
    const due = this.store.due(Date.now(), ATTEMPTS_PER_RUN);
    await Promise.all(due.map((record) => this.attempt(record, channels.get(record.delivery.channelId) ?? null, delays)));
    this.store.prune();
    await this.scheduleNext();
  }

  /** One try of one delivery: claimed (and counted) first, then sent, then its outcome stored. */
  private async attempt(record: DeliveryRecord, channel: NotificationChannel | null, delays: readonly number[]): Promise<void> {
    const { delivery, event } = record;
    const started = Date.now();
    if (delivery.attempts >= MAX_ATTEMPTS) {
      // Due again with every try spent: the last one was cut off (a crash, an eviction) before its answer was stored.
      this.store.record(delivery.id, {
        state: "failed",
        lastStatus: delivery.lastStatus,
        lastError: "the last try was cut off before its answer",
        nextAttemptMs: null,
        at: new Date(started).toISOString(),
      });
      return;
    }
    if (!this.store.claim(delivery.id, started, started + ATTEMPT_LEASE_MS, new Date(started).toISOString())) return;
    const attempts = delivery.attempts + 1;
    const done = (outcome: { state: NotificationDelivery["state"]; lastStatus: number | null; lastError: string | null; nextAttemptMs: number | null }) =>
      this.store.record(delivery.id, { ...outcome, at: new Date().toISOString() });

    if (channel === null || channel.kind !== delivery.channelKind) {
      done({ state: "failed", lastStatus: null, lastError: `channel ${delivery.channelId} is no longer configured`, nextAttemptMs: null });
      return;
    }
    let result: AttemptResult;
    let error: string | null = null;
    // A timer cleared once the answer is in (AbortSignal.timeout's would outlive the try and keep the object busy).
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new Error(`no answer in ${ATTEMPT_TIMEOUT_MS / 1000} s`)), ATTEMPT_TIMEOUT_MS);
    try {
      const request = await buildRequest(channel, event, delivery.id);
      const response = await fetch(request.url, { method: request.method, headers: request.headers, body: request.body, signal: abort.signal });
      result = { status: response.status, retryAfter: response.headers.get("retry-after") };
      const text = await response.text().catch(() => "");
      if (!response.ok) error = `HTTP ${response.status}${text.trim() === "" ? "" : `: ${text.trim().slice(0, ERROR_TEXT_CHARS)}`}`;
    } catch (caught) {
      result = { status: null, retryAfter: null };
      error = caught instanceof Error ? caught.message : String(caught);
    } finally {
      clearTimeout(timer);
    }
    const now = new Date();
    const decision = decideRetry(attempts, result, now, delays);
    done({
      state: decision.state,
      lastStatus: result.status,
      // A receiver or a network error may quote the URL, which can carry a token.
      lastError: error === null ? null : redact(error, channel),
      nextAttemptMs: decision.state === "retrying" ? now.getTime() + decision.delaySeconds * 1000 : null,
    });
  }

  /**
   * The alarm at the earliest next try (a try under way counts with the end of its lease). Read and
   * set with nothing awaited between, so a delivery stored meanwhile is never left without an alarm.
   */
  private async scheduleNext(): Promise<void> {
    const next = this.store.nextDueMs();
    if (next !== null) await this.ctx.storage.setAlarm(next);
  }
}
