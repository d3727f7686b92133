import { LitElement, html, nothing } from "lit";
import { WEEKDAYS, type MaintenanceWindow, type Weekday } from "../../common/protocol.ts";
import { errorsUnder, parseHostList, type FieldErrors } from "../common/settings-form.ts";
import { sharedStyles } from "../styles/shared.ts";
import { settingsFormStyles } from "../styles/settings-form.ts";

const DAY_LABELS: Record<Weekday, string> = { mon: "Mon", tue: "Tue", wed: "Wed", thu: "Thu", fri: "Fri", sat: "Sat", sun: "Sun" };

/** Maintenance windows on the Settings page: rows to add and remove; each change is sent up as `windows-change`. */
export class NfSettingsWindows extends LitElement {
  static override properties = {
    windows: { attribute: false },
    errors: { attribute: false },
    disabled: { type: Boolean },
  };
  declare windows: MaintenanceWindow[];
  /** Messages keyed by path below `windows` ("0.end"). */
  declare errors: FieldErrors;
  declare disabled: boolean;

  constructor() {
    super();
    this.windows = [];
    this.errors = {};
    this.disabled = false;
  }

  static override styles = [sharedStyles, settingsFormStyles];

  override render() {
    return html`
      ${this.windows.length === 0 ? html`<p class="hint">No windows: rollouts may start hosts at any time.</p>` : nothing}
      ${this.windows.map((window, index) => this.renderRow(window, index, errorsUnder(this.errors, String(index))))}
      <div><button type="button" class="btn small" ?disabled=${this.disabled} @click=${this.add}>Add window</button></div>
    `;
  }

  private renderRow(window: MaintenanceWindow, index: number, errors: FieldErrors) {
    const error = (key: string) => (errors[key] ? html`<span class="field-error" role="alert">${errors[key]}</span>` : nothing);
    const label = `Window ${index + 1}`;
    return html`<div class="row" role="group" aria-label=${label} data-window=${index}>
      <div class="row-head">
        <span class="grow">${label}</span>
        <button type="button" class="btn small" ?disabled=${this.disabled} @click=${() => this.removeRow(index)}>Remove</button>
      </div>
      <div class="field">
        <span>Days</span>
        <div class="days">
          ${WEEKDAYS.map(
            (day) => html`<label class="check"
              ><input
                type="checkbox"
                name="day-${day}"
                .checked=${window.days.includes(day)}
                ?disabled=${this.disabled}
                @change=${(e: Event) => this.toggleDay(index, day, (e.target as HTMLInputElement).checked)}
              />${DAY_LABELS[day]}</label
            >`,
          )}
        </div>
        ${error("days")}
      </div>
      <div class="fields">
        <label class="field"
          ><span>Start</span
          ><input
            type="time"
            name="start"
            .value=${window.start}
            aria-invalid=${errors.start ? "true" : "false"}
            ?disabled=${this.disabled}
            @change=${(e: Event) => this.patch(index, { start: (e.target as HTMLInputElement).value })}
          />${error("start")}</label
        >
        <label class="field"
          ><span>End</span
          ><input
            type="time"
            name="end"
            .value=${window.end}
            aria-invalid=${errors.end ? "true" : "false"}
            ?disabled=${this.disabled}
            @change=${(e: Event) => this.patch(index, { end: (e.target as HTMLInputElement).value })}
          />${error("end")}</label
        >
        <label class="field"
          ><span>Time zone</span
          ><input
            name="timeZone"
            .value=${window.timeZone}
            placeholder="Europe/Vienna"
            aria-invalid=${errors.timeZone ? "true" : "false"}
            ?disabled=${this.disabled}
            @change=${(e: Event) => this.patch(index, { timeZone: (e.target as HTMLInputElement).value.trim() })}
          />${error("timeZone")}</label
        >
        <label class="field"
          ><span>Hosts</span
          ><input
            name="hosts"
            .value=${window.hosts?.join(", ") ?? ""}
            placeholder="every host no window names"
            aria-invalid=${Object.keys(errors).some((k) => k.startsWith("hosts")) ? "true" : "false"}
            ?disabled=${this.disabled}
            @change=${(e: Event) => this.patch(index, { hosts: parseHostList((e.target as HTMLInputElement).value) })}
          />${Object.entries(errors)
            .filter(([k]) => k === "hosts" || k.startsWith("hosts."))
            .map(([, m]) => html`<span class="field-error" role="alert">${m}</span>`)}</label
        >
      </div>
    </div>`;
  }

  private emit(windows: MaintenanceWindow[]): void {
    this.dispatchEvent(new CustomEvent("windows-change", { detail: windows, bubbles: true, composed: true }));
  }

  private readonly add = () => {
    const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    this.emit([...this.windows, { days: ["sat"], start: "02:00", end: "04:00", timeZone }]);
  };

  private removeRow(index: number): void {
    this.emit(this.windows.filter((_, i) => i !== index));
  }

  private patch(index: number, change: Partial<MaintenanceWindow>): void {
    this.emit(
      this.windows.map((window, i) => {
        if (i !== index) return window;
        const next = { ...window, ...change };
        if (next.hosts === undefined) delete next.hosts;
        return next;
      }),
    );
  }

  private toggleDay(index: number, day: Weekday, on: boolean): void {
    const days = this.windows[index]?.days ?? [];
    this.patch(index, { days: WEEKDAYS.filter((d) => (d === day ? on : days.includes(d))) });
  }
}

customElements.define("nf-settings-windows", NfSettingsWindows);

declare global {
  interface HTMLElementTagNameMap {
    "nf-settings-windows": NfSettingsWindows;
  }
}
