import { LitElement, css, html, nothing } from "lit";
import type { Platform } from "../../common/protocol.ts";
import { agentSnippet, tokenInstallCommand } from "../common/nix-snippet.ts";
import { sharedStyles } from "../styles/shared.ts";
import "./nf-copy-button.ts";

/**
 * A host's new agent token, shown once, with the commands and the Nix that
 * put it to use. Nothing here is stored: close it and the token is gone.
 */
export class NfTokenReveal extends LitElement {
  static override properties = {
    token: {},
    hostName: {},
    platform: {},
    flakeAttr: {},
    origin: {},
    repository: {},
    rotated: { type: Boolean },
  };
  declare token: string;
  declare hostName: string;
  declare platform: Platform;
  declare flakeAttr: string;
  /** The dashboard's origin, for the agent's `url`. */
  declare origin: string;
  /** `owner/repo` when the control plane knows it. */
  declare repository: string;
  /** A rotation: the snippet is already in place, only the file changes. */
  declare rotated: boolean;

  constructor() {
    super();
    this.token = "";
    this.hostName = "";
    this.platform = "nixos";
    this.flakeAttr = "";
    this.origin = "";
    this.repository = "";
    this.rotated = false;
  }

  static override styles = [
    sharedStyles,
    css`
      :host {
        display: grid;
        gap: 1rem;
      }
      .warning {
        display: flex;
        gap: 0.6rem;
        padding: 0.7rem 0.85rem;
        border-radius: var(--nf-radius-sm);
        border: 1px solid color-mix(in srgb, var(--nf-yellow) 45%, transparent);
        background: var(--nf-yellow-bg);
        color: var(--nf-text);
        font-size: 0.875rem;
        line-height: 1.45;
      }
      .warning strong {
        color: var(--nf-yellow);
      }
      .token-row {
        display: flex;
        gap: 0.5rem;
        align-items: center;
      }
      input {
        flex: 1;
        min-width: 0;
        min-height: 2.4rem;
        padding: 0.35rem 0.6rem;
        border: 1px solid var(--nf-border-strong);
        border-radius: var(--nf-radius-sm);
        background: var(--nf-bg);
        color: var(--nf-text);
        font-family: var(--nf-mono);
        font-size: 0.875rem;
      }
      section {
        display: grid;
        gap: 0.4rem;
      }
      .section-head {
        display: flex;
        align-items: center;
        justify-content: space-between;
        gap: 0.5rem;
      }
      h3 {
        margin: 0;
        font-size: 0.9375rem;
      }
      .after {
        margin: 0;
        font-size: 0.875rem;
      }
      pre {
        margin: 0;
        padding: 0.75rem 0.85rem;
        overflow-x: auto;
        border-radius: var(--nf-radius-sm);
        background: var(--nf-code-bg);
        border: 1px solid var(--nf-border);
        font-family: var(--nf-mono);
        font-size: 0.8125rem;
        line-height: 1.5;
      }
    `,
  ];

  override render() {
    const snippet = agentSnippet({
      origin: this.origin,
      platform: this.platform,
      hostName: this.hostName,
      flakeAttr: this.flakeAttr || null,
      repository: this.repository || null,
    });
    const install = tokenInstallCommand(this.platform, this.token);
    return html`<div class="warning" role="note">
        <span aria-hidden="true">⚠</span>
        <span
          ><strong>Shown only this once.</strong> Only a hash of the token is stored; copy it now.
          ${this.rotated ? html`The old token no longer works: replace it on ${this.hostName} and restart the agent.` : nothing}</span
        >
      </div>
      <section>
        <h3 id="token-label">Agent token for ${this.hostName}</h3>
        <div class="token-row">
          <input aria-labelledby="token-label" data-testid="token" readonly .value=${this.token} @focus=${(e: FocusEvent) => (e.target as HTMLInputElement).select()} />
          <nf-copy-button .text=${this.token} label="Copy token"></nf-copy-button>
        </div>
      </section>
      <section>
        <div class="section-head">
          <h3>1. Put the token on the host</h3>
          <nf-copy-button .text=${install} label="Copy command"></nf-copy-button>
        </div>
        <pre data-testid="install-command" tabindex="0">${install}</pre>
      </section>
      ${this.rotated
        ? nothing
        : html`<section>
            <div class="section-head">
              <h3>2. Add the agent to the configuration</h3>
              <nf-copy-button .text=${snippet} label="Copy Nix"></nf-copy-button>
            </div>
            <pre data-testid="nix-snippet" tabindex="0">${snippet}</pre>
            <p class="muted after">Commit it, then switch the host once by hand; from then on the dashboard drives it.</p>
          </section>`}`;
  }
}

customElements.define("nf-token-reveal", NfTokenReveal);

declare global {
  interface HTMLElementTagNameMap {
    "nf-token-reveal": NfTokenReveal;
  }
}
