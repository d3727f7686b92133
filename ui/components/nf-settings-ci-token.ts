import { LitElement, css, html, nothing } from "lit";
import type { CiTokenStatus } from "../../common/protocol.ts";
import { localTimestamp } from "../../common/text.ts";
import type { DashboardApi } from "../data/api.ts";
import { loadCacheToken, loadCiToken, rotateCacheToken, rotateCiToken } from "../data/settings.ts";
import { sharedStyles } from "../styles/shared.ts";
import "./nf-copy-button.ts";

type TokenStatus = NonNullable<CiTokenStatus["ciToken"]> | null;

/** The two single-purpose tokens an admin creates here: CI's for `POST /api/desired`, and the binary cache's for uploads. */
const KINDS = {
  ci: {
    name: "CI token",
    load: loadCiToken,
    rotate: async (api: DashboardApi) => {
      const created = await rotateCiToken(api);
      return { token: created.token, status: created.ciToken };
    },
  },
  cache: { name: "cache token", load: loadCacheToken, rotate: rotateCacheToken },
} satisfies Record<string, { name: string; load(api: DashboardApi): Promise<TokenStatus>; rotate(api: DashboardApi): Promise<{ token: string; status: NonNullable<TokenStatus> }> }>;

/**
 * A token good for one purpose only (`kind`): CI's, which publishes desired systems (`POST /api/desired`),
 * or the binary cache's, which uploads to it (docs/cache.md). When the one in force was created, and for an
 * admin a button that creates a new one, shown once.
 */
export class NfSettingsCiToken extends LitElement {
  static override properties = {
    kind: { attribute: false },
    api: { attribute: false },
    readOnly: { attribute: false },
    _status: { state: true },
    _token: { state: true },
    _error: { state: true },
    _busy: { state: true },
  };
  declare kind: keyof typeof KINDS;
  declare api: DashboardApi | null;
  declare readOnly: boolean;
  private declare _status: TokenStatus | undefined;
  private declare _token: string | null;
  private declare _error: string | null;
  private declare _busy: boolean;

  constructor() {
    super();
    this.kind = "ci";
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
      this._status = await KINDS[this.kind].load(this.api);
    } catch (error) {
      this._error = error instanceof Error ? error.message : String(error);
    }
  }

  private async rotate(): Promise<void> {
    if (!this.api) return;
    this._busy = true;
    this._error = null;
    try {
      const created = await KINDS[this.kind].rotate(this.api);
      this._token = created.token;
      this._status = created.status;
    } catch (error) {
      this._error = error instanceof Error ? error.message : String(error);
    } finally {
      this._busy = false;
    }
  }

  override render() {
    const status = this._status;
    const name = KINDS[this.kind].name;
    return html`<p class="muted">
        ${this.kind === "ci"
          ? html`For hosts too small to evaluate their own configuration (<code>evaluate = "ci"</code>): CI posts their desired systems to
              <code>POST /api/desired</code> with this token, which can do nothing else.`
          : html`Builders and CI upload signed store paths to the binary cache under <code>/cache</code> with this token (the password of a
              netrc entry, or <code>nixfleet-agent cache push --token-file</code>); it reads the cache too, and can do nothing else.`}
      </p>
      <p role="status">
        ${status === undefined ? "Loading…" : status === null ? `No ${name} yet.` : `In force since ${localTimestamp(status.createdAt)}, created by ${status.createdBy}.`}
      </p>
      ${this._token
        ? html`<p class="note" role="note"><strong>Shown only this once.</strong> Only its hash is stored; the previous token no longer works.</p>
            <div class="token-row">
              <input aria-label=${name.replace(/^c/, "C")} data-testid="${this.kind}-token" readonly .value=${this._token} />
              <nf-copy-button .text=${this._token} label="Copy token"></nf-copy-button>
            </div>`
        : nothing}
      ${this._error ? html`<p class="alert" role="alert">${this._error}</p>` : nothing}
      ${this.readOnly
        ? nothing
        : html`<div>
            <button type="button" class="btn" ?disabled=${this._busy || status === undefined} @click=${() => void this.rotate()}>
              ${status ? `Rotate the ${name}` : `Create a ${name}`}
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
