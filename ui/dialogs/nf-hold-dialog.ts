import { LitElement, html, nothing } from "lit";
import { notify } from "../common/notify.ts";
import { ModalDialog } from "../common/modal-dialog.ts";
import type { FleetStore } from "../data/store.ts";
import { dialogStyles } from "../styles/dialog.ts";
import { sharedStyles } from "../styles/shared.ts";

/** Holds a host: a reason and an optional end; rollouts and automatic actions leave it out until released. */
export class NfHoldDialog extends LitElement {
  static override properties = {
    store: { attribute: false },
    _host: { state: true },
    _busy: { state: true },
    _error: { state: true },
  };
  declare store: FleetStore | null;
  private declare _host: string | null;
  private declare _busy: boolean;
  private declare _error: string | null;
  private readonly _modal = new ModalDialog(this, () => (this._host = null));

  constructor() {
    super();
    this.store = null;
    this._host = null;
    this._busy = false;
    this._error = null;
  }

  static override styles = [sharedStyles, dialogStyles];

  async show(host: string): Promise<void> {
    this._host = host;
    this._error = null;
    await this._modal.open({ resetForm: true, focus: "#reason" });
  }

  override render() {
    const host = this._host;
    return html`<dialog aria-labelledby="title">
      ${host === null
        ? nothing
        : html`<form class="dialog-body" @submit=${(e: Event) => this.submit(e, host)}>
            <h2 id="title">Hold ${host}?</h2>
            <p>Rollouts and automatic actions leave a held host out until it is released. Commands sent by hand still reach it.</p>
            <label
              >Reason
              <input id="reason" name="reason" required maxlength="500" autocomplete="off" placeholder="e.g. kernel bisect in progress"
            /></label>
            <label
              >Until <span class="field-hint">optional; released by hand otherwise</span>
              <input id="until" name="until" type="datetime-local"
            /></label>
            ${this._error ? html`<div class="form-error" role="alert">${this._error}</div>` : nothing}
            <div class="actions">
              <button type="button" class="btn" @click=${() => this._modal.close()}>Cancel</button>
              <button id="hold" class="btn primary" ?disabled=${this._busy}>${this._busy ? "Holding…" : "Hold host"}</button>
            </div>
          </form>`}
    </dialog>`;
  }

  private async submit(event: Event, host: string): Promise<void> {
    event.preventDefault();
    if (!this.store) return;
    const form = new FormData(event.target as HTMLFormElement);
    const reason = String(form.get("reason") ?? "").trim();
    const until = String(form.get("until") ?? "");
    // datetime-local is the browser's local time without a zone; the API wants an instant.
    const untilIso = until ? new Date(until).toISOString() : null;
    if (!reason) {
      this._error = "A hold needs a reason.";
      return;
    }
    this._busy = true;
    try {
      await this.store.setHold(host, { reason, until: untilIso });
      this._modal.close();
      notify(this, `${host} is held`);
    } catch (err) {
      this._error = err instanceof Error ? err.message : String(err);
    } finally {
      this._busy = false;
    }
  }
}

customElements.define("nf-hold-dialog", NfHoldDialog);

declare global {
  interface HTMLElementTagNameMap {
    "nf-hold-dialog": NfHoldDialog;
  }
}
