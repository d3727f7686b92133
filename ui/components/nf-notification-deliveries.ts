import { LitElement, css, html, nothing } from "lit";
import type { NotificationChannel, NotificationDelivery } from "../../common/protocol.ts";
import { formatAge, localTimestamp } from "../../common/text.ts";
import { channelLabel, deliveriesByChannel, deliveryStatus, stillMoving } from "../common/notifications.ts";
import { roleDenial } from "../../common/permissions.ts";
import { notificationDeliveries, sendTestNotification } from "../data/notifications.ts";
import type { FleetStore } from "../data/store.ts";
import { sharedStyles } from "../styles/shared.ts";

/** Sending a test notification is an admin's (ROUTE_ROLES in worker/index.ts). */
const SEND_TEST_ROLE = "admin";
/** The log is read again this often while a delivery may still change, and this often otherwise. */
const MOVING_REFRESH_MS = 5_000;
const IDLE_REFRESH_MS = 30_000;

/**
 * Per notification channel: Send test and its recent deliveries (state, tries, last status or
 * error), newest first. The settings page hands it the channels it edits.
 */
export class NfNotificationDeliveries extends LitElement {
  static override properties = {
    channels: { attribute: false },
    store: { attribute: false },
    _deliveries: { state: true },
    _error: { state: true },
    _sending: { state: true },
  };
  declare channels: NotificationChannel[];
  declare store: FleetStore | null;
  private declare _deliveries: NotificationDelivery[] | null;
  private declare _error: string | null;
  /** The channel whose Send test is under way. */
  private declare _sending: string | null;
  private _timer: ReturnType<typeof setTimeout> | undefined;

  constructor() {
    super();
    this.channels = [];
    this.store = null;
    this._deliveries = null;
    this._error = null;
    this._sending = null;
  }

  static override styles = [
    sharedStyles,
    css`
      :host {
        display: grid;
        gap: 0.75rem;
      }
      section {
        display: grid;
        gap: 0.35rem;
      }
      .head {
        display: flex;
        align-items: center;
        gap: 0.75rem;
        font-weight: 600;
      }
      ol {
        margin: 0;
        padding: 0;
        list-style: none;
        font-size: 0.8125rem;
      }
      li {
        display: flex;
        flex-wrap: wrap;
        gap: 0 0.6rem;
        padding: 0.2rem 0;
      }
      .delivered {
        color: var(--nf-green);
      }
      .failed {
        color: var(--nf-red);
      }
      .retrying,
      .pending {
        color: var(--nf-yellow);
      }
    `,
  ];

  override connectedCallback(): void {
    super.connectedCallback();
    void this.refresh();
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    clearTimeout(this._timer);
  }

  /** Reads the log now and schedules the next read. */
  async refresh(): Promise<void> {
    clearTimeout(this._timer);
    if (this.store === null) return;
    try {
      this._deliveries = await notificationDeliveries(this.store.api, 200);
      this._error = null;
    } catch (err) {
      this._error = err instanceof Error ? err.message : String(err);
    }
    if (!this.isConnected) return;
    this._timer = setTimeout(() => void this.refresh(), stillMoving(this._deliveries ?? []) ? MOVING_REFRESH_MS : IDLE_REFRESH_MS);
  }

  private async sendTest(channel: NotificationChannel): Promise<void> {
    if (this.store === null) return;
    this._sending = channel.id;
    try {
      await sendTestNotification(this.store.api, channel.id);
      this._error = null;
    } catch (err) {
      this._error = `Send test to ${channelLabel(channel)}: ${err instanceof Error ? err.message : String(err)}`;
    } finally {
      this._sending = null;
    }
    await this.refresh();
  }

  override render() {
    const now = Date.now();
    const denial = roleDenial(this.store?.state.me ?? null, SEND_TEST_ROLE);
    const byChannel = deliveriesByChannel(this.channels, this._deliveries ?? []);
    return html`
      ${this._error === null ? nothing : html`<p class="failed" role="alert">${this._error}</p>`}
      ${this.channels.length === 0 ? html`<p class="muted">No notification channel yet.</p>` : nothing}
      ${this.channels.map((channel) => {
        const deliveries = byChannel.get(channel.id) ?? [];
        return html`<section data-channel=${channel.id}>
          <div class="head">
            <span>${channelLabel(channel)}</span>
            <button
              type="button"
              class="btn small"
              ?disabled=${denial !== null || this._sending !== null}
              title=${denial ?? "Send a test notification to this channel now"}
              @click=${() => this.sendTest(channel)}
            >
              ${this._sending === channel.id ? "Sending…" : "Send test"}
            </button>
          </div>
          ${this._deliveries === null
            ? html`<p class="muted">Loading deliveries…</p>`
            : deliveries.length === 0
              ? html`<p class="muted">No deliveries yet.</p>`
              : html`<ol aria-label="Recent deliveries to ${channelLabel(channel)}">
                  ${deliveries.map(
                    (d) => html`<li data-state=${d.state}>
                      <span class=${d.state}>${deliveryStatus(d, now)}</span>
                      <span>${d.test ? "test: " : ""}${d.title}</span>
                      <span class="muted" title=${localTimestamp(d.createdAt)}>${formatAge(d.createdAt, now)}</span>
                    </li>`,
                  )}
                </ol>`}
        </section>`;
      })}
    `;
  }
}

customElements.define("nf-notification-deliveries", NfNotificationDeliveries);

declare global {
  interface HTMLElementTagNameMap {
    "nf-notification-deliveries": NfNotificationDeliveries;
  }
}
