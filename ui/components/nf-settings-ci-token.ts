import { LitElement, css, html, nothing } from "lit";
import type { CiTokenStatus } from "../../common/protocol.ts";
import { localTimestamp } from "../../common/text.ts";
import type { DashboardApi } from "../data/api.ts";
import { loadCiToken, rotateCiToken } from "../data/settings.ts";
import { sharedStyles } from "../styles/shared.ts";
import "./nf-copy-button.ts";

/**
 * The token CI publishes desired systems with (`POST /api/desired`, and nothing else): when the one in
 * force was created, and for an admin a button that creates a new one, shown once.
 */
export class NfSettingsCiToken extends LitElement {
  static override properties = {
    api: { attribute: false },
    readOnly: { attribute: false },
    _status: { state: true },
    _token: { state: true },
    _error: { state: true },
    _busy: { state: true },
  };
  declare api: DashboardApi | null;
  declare readOnly: boolean;
  private declare _status: CiTokenStatus["ciToken"] | undefined;
  private declare _token: string | null;
  private declare _error: string | null;
  private declare _busy: boolean;

  constructor() {
    super();
    this.api = null;
    this.readOnly = false;
    this._status = undefined;
    this._token = null;
    this._error = null;
    this._busy = false;
  }

  static override styles = [
    sharedStyles,
    css`
      :host {
        display: grid;
        gap: 0.5rem;
      }
      .token-row {
        display: flex;
        gap: 0.5rem;
        align-items: center;
      }
      input {
        flex: 1;
        min-width: 0;
        padding: 0.35rem 0.6rem;
        border: 1px solid var(--nf-border-strong);
        border-radius: var(--nf-radius-sm);
        background: var(--nf-bg);
        color: var(--nf-text);
        font-family: var(--nf-mono);
      }
    `,
  ];

  override connectedCallback(): void {
    super.connectedCallback();
    void this.load();
  }

  private async load(): Promise<void> {
    if (!this.api) return;
    try {
      this._status = await loadCiToken(this.api);
    } catch (error) {
      this._error = error instanceof Error ? error.message : String(error);
    }
  }

  private async rotate(): Promise<void> {
    if (!this.api) return;
    this._busy = true;
    this._error = null;
    try {
      const created = await rotateCiToken(this.api);
      this._token = created.token;
      this._status = created.ciToken;
    } catch (error) {
      this._error = error instanceof Error ? error.message : String(error);
    } finally {
      this._busy = false;
    }
  }

  override render() {
    const status = this._status;
    return html`<p class="muted">
        For hosts too small to evaluate their own configuration (<code>evaluate = "ci"</code>): CI posts their desired systems to
        <code>POST /api/desired</code> with this token, which can do nothing else.
      </p>
      <p role="status">
        ${status === undefined ? "Loading…" : status === null ? "No CI token yet." : `In force since ${localTimestamp(status.createdAt)}, created by ${status.createdBy}.`}
      </p>
      ${this._token
        ? html`<p class="note" role="note"><strong>Shown only this once.</strong> Only its hash is stored; the previous token no longer works.</p>
            <div class="token-row">
              <input aria-label="CI token" data-testid="ci-token" readonly .value=${this._token} />
              <nf-copy-button .text=${this._token} label="Copy token"></nf-copy-button>
            </div>`
        : nothing}
      ${this._error ? html`<p class="alert" role="alert">${this._error}</p>` : nothing}
      ${this.readOnly
        ? nothing
        : html`<div>
            <button type="button" class="btn" ?disabled=${this._busy || status === undefined} @click=${() => void this.rotate()}>
              ${status ? "Rotate the CI token" : "Create a CI token"}
            </button>
          </div>`}`;
  }
}

customElements.define("nf-settings-ci-token", NfSettingsCiToken);

declare global {
  interface HTMLElementTagNameMap {
    "nf-settings-ci-token": NfSettingsCiToken;
  }
}
