import { LitElement, html, nothing } from "lit";
import { NOTIFICATION_EVENTS, SECRET_PLACEHOLDER, type NotificationChannel, type NotificationEventName } from "../../common/protocol.ts";
import { errorsUnder, newChannelId, type FieldErrors } from "../common/settings-form.ts";
import { sharedStyles } from "../styles/shared.ts";
import { settingsFormStyles } from "../styles/settings-form.ts";

type Kind = NotificationChannel["kind"];
const KINDS: { kind: Kind; label: string; urlLabel: string; placeholder: string }[] = [
  { kind: "webhook", label: "Webhook (signed JSON)", urlLabel: "Webhook URL", placeholder: "https://receiver.example.com/nixfleet" },
  { kind: "slack", label: "Slack", urlLabel: "Incoming webhook URL", placeholder: "https://hooks.slack.com/services/…" },
  { kind: "discord", label: "Discord", urlLabel: "Webhook URL", placeholder: "https://discord.com/api/webhooks/…" },
  { kind: "ntfy", label: "ntfy", urlLabel: "Topic URL", placeholder: "https://ntfy.sh/my-fleet" },
];

const EVENT_LABELS: Record<NotificationEventName, string> = {
  "update-pr-opened": "Update PR opened",
  "ci-failed": "CI failed",
  "merge-scheduled": "Merge scheduled",
  merged: "Merged",
  "merge-failed": "Merge refused",
  "rollout-started": "Rollout started",
  "rollout-succeeded": "Rollout succeeded",
  "rollout-failed": "Rollout failed",
  "revert-opened": "Revert opened",
  "host-offline": "Host offline",
  "agent-outdated": "Agent outdated",
  "host-red": "Host turned red",
  "tests-failed": "Tests failed",
  "disk-low": "Disk low",
  "host-recovered": "Host recovered",
};

/** A secret field: the stored value is never here, only the placeholder that keeps it. */
type SecretField = "url" | "secret" | "token";

/**
 * Notification channels on the Settings page: rows to add and remove; each change is sent up as
 * `channels-change`. A stored secret is shown as "set — leave to keep": the field stays empty and the
 * channel keeps `SECRET_PLACEHOLDER` until something is typed.
 */
export class NfSettingsChannels extends LitElement {
  static override properties = {
    channels: { attribute: false },
    errors: { attribute: false },
    disabled: { type: Boolean },
  };
  declare channels: NotificationChannel[];
  /** Messages keyed by path below `notifications` ("1.url"). */
  declare errors: FieldErrors;
  declare disabled: boolean;

  constructor() {
    super();
    this.channels = [];
    this.errors = {};
    this.disabled = false;
  }

  static override styles = [sharedStyles, settingsFormStyles];

  override render() {
    return html`
      ${this.channels.length === 0 ? html`<p class="hint">No channels: nobody is notified.</p>` : nothing}
      ${this.channels.map((channel, index) => this.renderRow(channel, index, errorsUnder(this.errors, String(index))))}
      <div><button type="button" class="btn small" ?disabled=${this.disabled} @click=${this.add}>Add channel</button></div>
    `;
  }

  private renderRow(channel: NotificationChannel, index: number, errors: FieldErrors) {
    const error = (key: string) => (errors[key] ? html`<span class="field-error" role="alert">${errors[key]}</span>` : nothing);
    const kind = KINDS.find((k) => k.kind === channel.kind) ?? KINDS[0]!;
    const label = channel.name || `Channel ${index + 1}`;
    const events = channel.events ?? NOTIFICATION_EVENTS;
    return html`<div class="row" role="group" aria-label=${label} data-channel=${channel.id}>
      <div class="row-head">
        <span class="grow">${label}</span>
        <button type="button" class="btn small" ?disabled=${this.disabled} @click=${() => this.removeRow(index)}>Remove</button>
      </div>
      <div class="fields">
        <label class="field"
          ><span>Kind</span
          ><select name="kind" ?disabled=${this.disabled} @change=${(e: Event) => this.changeKind(index, (e.target as HTMLSelectElement).value)}>
            ${KINDS.map((k) => html`<option value=${k.kind} ?selected=${k.kind === channel.kind}>${k.label}</option>`)}
          </select>${error("kind")}</label
        >
        <label class="field"
          ><span>Name</span
          ><input
            name="name"
            .value=${channel.name ?? ""}
            maxlength="80"
            placeholder="ops room"
            ?disabled=${this.disabled}
            @change=${(e: Event) => this.patch(index, { name: (e.target as HTMLInputElement).value.trim() || undefined })}
          />${error("name")}</label
        >
        ${this.renderSecret(channel, index, "url", kind.urlLabel, kind.placeholder, errors)}
        ${channel.kind === "webhook" ? this.renderSecret(channel, index, "secret", "Signing secret (optional)", "at least 16 characters", errors) : nothing}
        ${channel.kind === "ntfy" ? this.renderSecret(channel, index, "token", "Access token (optional)", "tk_…", errors) : nothing}
      </div>
      <div class="field">
        <span>Events</span>
        <div class="events">
          ${NOTIFICATION_EVENTS.map(
            (event) => html`<label class="check"
              ><input
                type="checkbox"
                name="event-${event}"
                .checked=${events.includes(event)}
                ?disabled=${this.disabled}
                @change=${(e: Event) => this.toggleEvent(index, event, (e.target as HTMLInputElement).checked)}
              />${EVENT_LABELS[event]}</label
            >`,
          )}
        </div>
        ${error("events")}
      </div>
    </div>`;
  }

  private renderSecret(channel: NotificationChannel, index: number, field: SecretField, label: string, placeholder: string, errors: FieldErrors) {
    const value: unknown = Reflect.get(channel, field);
    const stored = value === SECRET_PLACEHOLDER;
    const hint = field === "url" && stored && channel.urlHint ? ` (${channel.urlHint})` : "";
    const message = errors[field];
    return html`<label class="field"
      ><span>${label}</span
      ><input
        name=${field}
        type=${field === "url" ? "url" : "password"}
        autocomplete="off"
        .value=${stored || typeof value !== "string" ? "" : value}
        placeholder=${stored ? `set — leave to keep${hint}` : placeholder}
        aria-invalid=${message ? "true" : "false"}
        ?disabled=${this.disabled}
        @change=${(e: Event) => this.setSecret(index, field, (e.target as HTMLInputElement).value.trim(), stored)}
      />${stored ? html`<span class="hint">set — leave to keep${field !== "url" ? html` · <button type="button" class="btn small" ?disabled=${this.disabled} @click=${() => this.setSecret(index, field, "", false)}>Remove</button>` : nothing}</span>` : nothing}${message
        ? html`<span class="field-error" role="alert">${message}</span>`
        : nothing}</label
    >`;
  }

  private emit(channels: NotificationChannel[]): void {
    this.dispatchEvent(new CustomEvent("channels-change", { detail: channels, bubbles: true, composed: true }));
  }

  private readonly add = () => {
    this.emit([...this.channels, { kind: "webhook", id: newChannelId(), url: "" }]);
  };

  private removeRow(index: number): void {
    this.emit(this.channels.filter((_, i) => i !== index));
  }

  private patch(index: number, change: Record<string, unknown>): void {
    this.emit(
      this.channels.map((channel, i) => {
        if (i !== index) return channel;
        const next: Record<string, unknown> = { ...channel, ...change };
        for (const key of Object.keys(next)) if (next[key] === undefined) delete next[key];
        // The form's values, checked with the schema on save: a channel is never cast into shape here.
        return next as NotificationChannel;
      }),
    );
  }

  /** Empty keeps a stored secret; for an optional one that was never stored (or is removed), empty is none. */
  private setSecret(index: number, field: SecretField, value: string, stored: boolean): void {
    if (value === "") this.patch(index, { [field]: stored ? SECRET_PLACEHOLDER : field === "url" ? "" : undefined });
    else this.patch(index, { [field]: value });
  }

  private changeKind(index: number, value: string): void {
    const kind = KINDS.find((k) => k.kind === value)?.kind;
    if (kind === undefined) return;
    // The signing secret and the ntfy token belong to one kind each.
    this.patch(index, { kind, secret: kind === "webhook" ? Reflect.get(this.channels[index]!, "secret") : undefined, token: kind === "ntfy" ? Reflect.get(this.channels[index]!, "token") : undefined });
  }

  private toggleEvent(index: number, event: NotificationEventName, on: boolean): void {
    const current = this.channels[index]?.events ?? NOTIFICATION_EVENTS;
    const events = NOTIFICATION_EVENTS.filter((e) => (e === event ? on : current.includes(e)));
    // Every event ticked is "every event", also those added later.
    this.patch(index, { events: events.length === NOTIFICATION_EVENTS.length ? undefined : events });
  }
}

customElements.define("nf-settings-channels", NfSettingsChannels);

declare global {
  interface HTMLElementTagNameMap {
    "nf-settings-channels": NfSettingsChannels;
  }
}
