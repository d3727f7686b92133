import { createHmac, randomBytes, randomUUID } from "node:crypto";
import { sign } from "@octokit/webhooks-methods";

/** One attempt to deliver a webhook, as GitHub's "Recent Deliveries" lists it. */
export interface WebhookDelivery {
  /** The `X-GitHub-Delivery` GUID; a redelivery keeps the original's. */
  id: string;
  event: string;
  action: string | null;
  payload: Record<string, unknown>;
  /** The exact bytes sent (and signed). */
  body: string;
  headers: Record<string, string>;
  /** The receiver's HTTP status; null when nothing answered (no URL, refused, timed out). */
  status: number | null;
  error: string | null;
  redelivery: boolean;
  deliveredAt: string;
  durationMs: number;
}

export interface WebhookSenderOptions {
  url?: string;
  secret?: string;
  hookId: number;
  /** The repository id (`X-GitHub-Hook-Installation-Target-ID`). */
  targetId: number;
  fetch?: typeof fetch;
  clock?: () => Date;
  /** GitHub gives up on a receiver after 10 s. */
  timeoutMs?: number;
}

/**
 * Sends webhooks one at a time, in the order they were raised, the way a repository hook does.
 * A failed delivery is recorded, never thrown at whoever caused the event.
 */
export class WebhookSender {
  readonly #options: WebhookSenderOptions;
  readonly #userAgent = `GitHub-Hookshot/${randomBytes(4).toString("hex").slice(0, 7)}`;
  readonly #log: WebhookDelivery[] = [];
  #tail: Promise<unknown> = Promise.resolve();

  constructor(options: WebhookSenderOptions) {
    this.#options = options;
  }

  get url(): string | undefined {
    return this.#options.url;
  }

  /** Where deliveries queued from now on go (one already being sent keeps its URL). */
  set url(url: string) {
    this.#options.url = url;
  }

  get deliveries(): readonly WebhookDelivery[] {
    return [...this.#log];
  }

  /** Queues `event`; returns its delivery id at once. */
  send(event: string, payload: Record<string, unknown>): string {
    const id = randomUUID();
    const body = JSON.stringify(payload);
    // Answers at once, as GitHub does; flush() waits for the delivery. #deliver records a failed delivery
    // instead of throwing, so a rejection here is an emulator bug, left unhandled to fail the run loudly.
    void this.#enqueue(() => this.#deliver({ id, event, payload, body, redelivery: false }));
    return id;
  }

  /** GitHub's "Redeliver": the same delivery id, event and body, sent again. */
  redeliver(deliveryId: string): Promise<WebhookDelivery> {
    const original = this.#log.find((d) => d.id === deliveryId);
    if (!original) return Promise.reject(new Error(`no webhook delivery ${deliveryId}`));
    const { id, event, payload, body } = original;
    return this.#enqueue(() => this.#deliver({ id, event, payload, body, redelivery: true }));
  }

  /** Resolves once every delivery queued so far (and any queued meanwhile) has been attempted. */
  async flush(): Promise<void> {
    let tail: Promise<unknown>;
    do {
      tail = this.#tail;
      await tail;
    } while (tail !== this.#tail);
  }

  #enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(task);
    this.#tail = run.catch(() => undefined);
    return run;
  }

  async #headers(event: string, id: string, body: string): Promise<Record<string, string>> {
    const headers: Record<string, string> = {
      "content-type": "application/json",
      "user-agent": this.#userAgent,
      "x-github-event": event,
      "x-github-delivery": id,
      "x-github-hook-id": String(this.#options.hookId),
      "x-github-hook-installation-target-id": String(this.#options.targetId),
      "x-github-hook-installation-target-type": "repository",
    };
    const secret = this.#options.secret;
    if (secret) {
      headers["x-hub-signature"] = `sha1=${createHmac("sha1", secret).update(body).digest("hex")}`;
      headers["x-hub-signature-256"] = await sign(secret, body);
    }
    return headers;
  }

  async #deliver(d: {
    id: string;
    event: string;
    payload: Record<string, unknown>;
    body: string;
    redelivery: boolean;
  }): Promise<WebhookDelivery> {
    const clock = this.#options.clock ?? (() => new Date());
    const headers = await this.#headers(d.event, d.id, d.body);
    const started = clock();
    const t0 = performance.now();
    const action = typeof d.payload.action === "string" ? d.payload.action : null;
    const record: WebhookDelivery = {
      ...d,
      action,
      headers,
      status: null,
      error: null,
      deliveredAt: started.toISOString(),
      durationMs: 0,
    };
    const url = this.#options.url;
    if (!url) {
      record.error = "no webhook URL configured";
    } else {
      const doFetch = this.#options.fetch ?? fetch;
      try {
        const response = await doFetch(url, {
          method: "POST",
          headers,
          body: d.body,
          signal: AbortSignal.timeout(this.#options.timeoutMs ?? 10_000),
        });
        record.status = response.status;
        await response.arrayBuffer().catch(() => undefined);
        if (!response.ok) record.error = `receiver answered ${response.status}`;
      } catch (error) {
        record.error = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      }
    }
    record.durationMs = Math.round(performance.now() - t0);
    this.#log.push(record);
    return record;
  }
}
