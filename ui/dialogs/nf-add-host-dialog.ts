import { LitElement, css, html, nothing } from "lit";
import { FlakeAttr, HostName, PLATFORMS, type Platform } from "../../common/protocol.ts";
import { ModalDialog } from "../common/modal-dialog.ts";
import type { FleetStore } from "../data/store.ts";
import { dialogStyles } from "../styles/dialog.ts";
import { sharedStyles } from "../styles/shared.ts";
import "../components/nf-token-reveal.ts";

const PLATFORM_LABELS: Record<Platform, string> = {
  nixos: "NixOS",
  darwin: "nix-darwin (macOS)",
  "home-manager": "Home Manager",
};

interface Created {
  name: string;
  platform: Platform;
  flakeAttr: string;
  token: string;
}

/** Add a host: name and platform in, its one-time token and the Nix to paste out. */
export class NfAddHostDialog extends LitElement {
  static override properties = {
    store: { attribute: false },
    repository: {},
    _created: { state: true },
    _error: { state: true },
    _nameError: { state: true },
    _flakeError: { state: true },
    _busy: { state: true },
  };
  declare store: FleetStore | null;
  /** `owner/repo` of the configuration repository, for the snippet. */
  declare repository: string;
  private declare _created: Created | null;
  private declare _error: string | null;
  private declare _nameError: string | null;
  private declare _flakeError: string | null;
  private declare _busy: boolean;
  private readonly _modal = new ModalDialog(this, () => (this._created = null));

  constructor() {
    super();
    this.store = null;
    this.repository = "";
    this._created = null;
    this._error = null;
    this._nameError = null;
    this._flakeError = null;
    this._busy = false;
  }

  static override styles = [
    sharedStyles,
    dialogStyles,
    css`
      fieldset {
        display: flex;
        flex-wrap: wrap;
        gap: 0.5rem 1rem;
        margin: 0;
        padding: 0;
        border: 0;
      }
      legend {
        margin-bottom: 0.35rem;
        padding: 0;
        font-weight: 500;
      }
      .radio {
        display: inline-flex;
        align-items: center;
        gap: 0.4rem;
        font-weight: 400;
      }
      .radio input {
        min-height: 0;
        accent-color: var(--nf-accent);
      }
    `,
  ];

  async show(): Promise<void> {
    this._created = null;
    this._error = null;
    this._nameError = null;
    this._flakeError = null;
    await this._modal.open({ resetForm: true, focus: "#name" });
  }

  override render() {
    const created = this._created;
    // Closing forgets the token: it is shown once.
    return html`<dialog class=${created ? "wide" : ""} aria-labelledby="title">
      ${created === null ? this.renderForm() : this.renderCreated(created)}
    </dialog>`;
  }

  private renderForm() {
    return html`<form class="dialog-body" @submit=${this.submit} novalidate>
      <h2 id="title">Add a host</h2>
      <label
        >Host name
        <input
          id="name"
          name="name"
          required
          autocomplete="off"
          spellcheck="false"
          placeholder="hsb0"
          aria-invalid=${this._nameError ? "true" : "false"}
          aria-describedby="name-hint"
          @input=${() => (this._nameError = null)}
        />
        <span id="name-hint" class=${this._nameError ? "field-hint error-text" : "field-hint"}
          >${this._nameError ?? "Lowercase letters, digits and inner hyphens, like a DNS label."}</span
        >
      </label>
      <fieldset>
        <legend>Platform</legend>
        ${PLATFORMS.map(
          (platform, i) =>
            html`<label class="radio"><input type="radio" name="platform" value=${platform} ?checked=${i === 0} />${PLATFORM_LABELS[platform]}</label>`,
        )}
      </fieldset>
      <label
        >Flake attribute <span class="field-hint">(optional)</span>
        <input
          id="flake-attr"
          name="flakeAttr"
          autocomplete="off"
          spellcheck="false"
          placeholder="defaults to the host name"
          aria-invalid=${this._flakeError ? "true" : "false"}
          aria-describedby="flake-hint"
          @input=${() => (this._flakeError = null)}
        />
        <span id="flake-hint" class=${this._flakeError ? "field-hint error-text" : "field-hint"}
          >${this._flakeError ?? "The attribute under nixosConfigurations / darwinConfigurations / homeConfigurations."}</span
        >
      </label>
      ${this._error ? html`<div class="form-error" role="alert">${this._error}</div>` : nothing}
      <div class="actions">
        <button type="button" class="btn" @click=${() => this._modal.close()}>Cancel</button>
        <button type="submit" class="btn primary" ?disabled=${this._busy}>${this._busy ? "Adding…" : "Add host"}</button>
      </div>
    </form>`;
  }

  private renderCreated(created: Created) {
    return html`<div class="dialog-body">
      <h2 id="title">${created.name} added</h2>
      <nf-token-reveal
        .token=${created.token}
        .hostName=${created.name}
        .platform=${created.platform}
        .flakeAttr=${created.flakeAttr}
        .origin=${location.origin}
        .repository=${this.repository}
      ></nf-token-reveal>
      <div class="actions">
        <button class="btn primary" @click=${() => this._modal.close()}>Done</button>
      </div>
    </div>`;
  }

  private async submit(event: SubmitEvent): Promise<void> {
    event.preventDefault();
    const form = event.target as HTMLFormElement;
    const data = new FormData(form);
    const name = String(data.get("name") ?? "").trim();
    const flakeAttr = String(data.get("flakeAttr") ?? "").trim();
    const platform = PLATFORMS.find((p) => p === data.get("platform")) ?? "nixos";
    const nameCheck = HostName.safeParse(name);
    const flakeCheck = flakeAttr === "" ? null : FlakeAttr.safeParse(flakeAttr);
    this._nameError = nameCheck.success ? null : (nameCheck.error.issues[0]?.message ?? "invalid host name");
    this._flakeError = flakeCheck === null || flakeCheck.success ? null : (flakeCheck.error.issues[0]?.message ?? "invalid flake attribute");
    if (this._nameError || this._flakeError) {
      this.renderRoot.querySelector<HTMLInputElement>(this._nameError ? "#name" : "#flake-attr")?.focus();
      return;
    }
    if (!this.store) return;
    this._busy = true;
    this._error = null;
    try {
      const created = await this.store.createHost({ name, platform, ...(flakeAttr ? { flakeAttr } : {}) });
      this._created = { name: created.host.name, platform: created.host.platform, flakeAttr: created.host.flakeAttr, token: created.token };
      await this._modal.focus(".actions .primary");
    } catch (err) {
      this._error = err instanceof Error ? err.message : String(err);
    } finally {
      this._busy = false;
    }
  }
}

customElements.define("nf-add-host-dialog", NfAddHostDialog);

declare global {
  interface HTMLElementTagNameMap {
    "nf-add-host-dialog": NfAddHostDialog;
  }
}
