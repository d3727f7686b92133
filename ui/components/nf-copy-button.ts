import { LitElement, css, html } from "lit";
import { sharedStyles } from "../styles/shared.ts";

/** Copies `text` to the clipboard and says so. */
export class NfCopyButton extends LitElement {
  static override properties = {
    text: {},
    label: {},
    _copied: { state: true },
  };
  declare text: string;
  /** What is copied, for the accessible name: "Copy token". */
  declare label: string;
  private declare _copied: "no" | "yes" | "failed";
  private _timer: ReturnType<typeof setTimeout> | undefined;

  constructor() {
    super();
    this.text = "";
    this.label = "Copy";
    this._copied = "no";
  }

  static override styles = [
    sharedStyles,
    css`
      :host {
        display: inline-block;
      }
      .yes {
        color: var(--nf-green);
        border-color: var(--nf-green);
      }
    `,
  ];

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    clearTimeout(this._timer);
  }

  override render() {
    const text = this._copied === "yes" ? "Copied ✓" : this._copied === "failed" ? "Select and copy" : this.label;
    return html`<button type="button" class="btn small ${this._copied}" @click=${this.copy}>${text}</button>
      <span class="visually-hidden" role="status">${this._copied === "yes" ? "copied to the clipboard" : ""}</span>`;
  }

  private async copy(): Promise<void> {
    let ok = false;
    try {
      await navigator.clipboard.writeText(this.text);
      ok = true;
    } catch {
      ok = copyWithSelection(this.text);
    }
    this._copied = ok ? "yes" : "failed";
    clearTimeout(this._timer);
    this._timer = setTimeout(() => (this._copied = "no"), 2000);
  }
}

/** Without the async clipboard (plain http on a LAN name), the old way still works. */
function copyWithSelection(text: string): boolean {
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}

customElements.define("nf-copy-button", NfCopyButton);

declare global {
  interface HTMLElementTagNameMap {
    "nf-copy-button": NfCopyButton;
  }
}
