import { LitElement, html, nothing } from "lit";
import type { Platform } from "../../common/protocol.ts";
import { ModalDialog } from "../common/modal-dialog.ts";
import { dialogStyles } from "../styles/dialog.ts";
import { sharedStyles } from "../styles/shared.ts";
import "../components/nf-token-reveal.ts";

/** Shows a rotated token once. */
export class NfTokenDialog extends LitElement {
  static override properties = {
    repository: {},
    _shown: { state: true },
  };
  declare repository: string;
  private declare _shown: { host: string; platform: Platform; flakeAttr: string; token: string } | null;
  private readonly _modal = new ModalDialog(this, () => (this._shown = null));

  constructor() {
    super();
    this.repository = "";
    this._shown = null;
  }

  static override styles = [sharedStyles, dialogStyles];

  async show(shown: { host: string; platform: Platform; flakeAttr: string; token: string }): Promise<void> {
    this._shown = shown;
    await this._modal.open({ focus: ".actions .primary" });
  }

  override render() {
    const shown = this._shown;
    return html`<dialog class="wide" aria-labelledby="title">
      ${shown === null
        ? nothing
        : html`<div class="dialog-body">
            <h2 id="title">New token for ${shown.host}</h2>
            <nf-token-reveal
              rotated
              .token=${shown.token}
              .hostName=${shown.host}
              .platform=${shown.platform}
              .flakeAttr=${shown.flakeAttr}
              .origin=${location.origin}
              .repository=${this.repository}
            ></nf-token-reveal>
            <div class="actions"><button class="btn primary" @click=${() => this._modal.close()}>Done</button></div>
          </div>`}
    </dialog>`;
  }
}

customElements.define("nf-token-dialog", NfTokenDialog);

declare global {
  interface HTMLElementTagNameMap {
    "nf-token-dialog": NfTokenDialog;
  }
}
