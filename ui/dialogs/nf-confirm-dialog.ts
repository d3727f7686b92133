import { LitElement, html, nothing, type TemplateResult } from "lit";
import { dialogStyles } from "../styles/dialog.ts";
import { sharedStyles } from "../styles/shared.ts";
import { ModalDialog } from "../common/modal-dialog.ts";

export interface ConfirmOptions {
  title: string;
  body: string | TemplateResult;
  /** Named in the dialog, so nobody confirms for hosts they did not mean. */
  hosts?: readonly string[];
  confirmLabel: string;
  danger?: boolean;
}

/** Asks before anything that takes a host backwards or removes something: resolves true on confirm. */
export class NfConfirmDialog extends LitElement {
  static override properties = {
    _options: { state: true },
  };
  private declare _options: ConfirmOptions | null;
  private readonly _modal = new ModalDialog(this);

  constructor() {
    super();
    this._options = null;
  }

  static override styles = [sharedStyles, dialogStyles];

  async ask(options: ConfirmOptions): Promise<boolean> {
    this._options = options;
    // A dangerous choice starts on Cancel, so Enter does not confirm it by accident.
    const { result } = await this._modal.open({ focus: options.danger ? "#cancel" : "#confirm" });
    return (await result) === "confirm";
  }

  override render() {
    const options = this._options;
    return html`<dialog aria-labelledby="title">
      ${options === null
        ? nothing
        : html`<form method="dialog" class="dialog-body">
            <h2 id="title">${options.title}</h2>
            ${typeof options.body === "string" ? html`<p>${options.body}</p>` : options.body}
            ${options.hosts && options.hosts.length > 0
              ? html`<ul class="host-list" aria-label="hosts">
                  ${options.hosts.map((host) => html`<li>${host}</li>`)}
                </ul>`
              : nothing}
            <div class="actions">
              <button id="cancel" class="btn" value="cancel">Cancel</button>
              <button id="confirm" class="btn ${options.danger ? "danger" : "primary"}" value="confirm">${options.confirmLabel}</button>
            </div>
          </form>`}
    </dialog>`;
  }
}

customElements.define("nf-confirm-dialog", NfConfirmDialog);

declare global {
  interface HTMLElementTagNameMap {
    "nf-confirm-dialog": NfConfirmDialog;
  }
}
