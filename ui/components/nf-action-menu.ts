import { LitElement, css, html, nothing } from "lit";
import { sharedStyles } from "../styles/shared.ts";

export interface MenuEntry {
  label: string;
  /** A second line: what the action does, or why it is disabled. */
  hint?: string;
  /** The compartment's suggested action: first and highlighted. */
  suggested?: boolean;
  disabled?: boolean;
  danger?: boolean;
  /** A link instead of an action. */
  href?: string;
  /** Opens in a new tab (GitHub links). */
  external?: boolean;
  run?: () => void;
}

export interface MenuContent {
  heading: string;
  /** A line under the heading, e.g. "offline: commands wait until it returns". */
  note?: string;
  entries: MenuEntry[];
}

/** Anything the menu can be opened from; a cell with `expanded` shows it on its button. */
type Anchor = HTMLElement & { expanded?: boolean };

/**
 * The one action menu of a page, opened at whatever was clicked (a
 * compartment cell, a host's ⋮). A popover in the top layer, so no table or
 * scroll container clips it; it follows its anchor when the page moves.
 * Escape and a click outside close it, arrow keys move through the items,
 * focus returns to where it was opened from.
 */
export class NfActionMenu extends LitElement {
  static override properties = {
    _content: { state: true },
  };
  private declare _content: MenuContent | null;
  private get _menu(): HTMLElement {
    return this.renderRoot.querySelector<HTMLElement>("#menu")!;
  }
  private _anchor: Anchor | null = null;
  private _restoreFocus = true;
  /**
   * A press on the menu's own anchor light-dismisses the popover before the
   * click arrives; that click must close the menu, not open it again.
   */
  private _pressedAnchor = false;
  private _closedByAnchor: { anchor: Anchor; at: number } | null = null;
  private readonly _onPointerDown = (event: PointerEvent) => {
    if (this._anchor && event.composedPath().includes(this._anchor)) this._pressedAnchor = true;
  };
  /**
   * The page moved under the menu (a scroll, scroll anchoring as a live page's lines fill in, a resize):
   * the menu follows its anchor, and closes only once the anchor is off screen.
   */
  private readonly _followAnchor = () => {
    const anchor = this._anchor;
    if (anchor === null || this._content === null) return;
    const rect = anchor.getBoundingClientRect();
    if (!anchor.isConnected || rect.bottom < 0 || rect.top > window.innerHeight) this.close(false);
    else this.position(anchor, this._menu);
  };

  constructor() {
    super();
    this._content = null;
  }

  static override styles = [
    sharedStyles,
    css`
      #menu {
        position: fixed;
        inset: auto;
        margin: 0;
        min-width: 15rem;
        max-width: min(22rem, calc(100vw - 16px));
        max-height: calc(100vh - 16px);
        overflow-y: auto;
        padding: 0.35rem;
        border: 1px solid var(--nf-border-strong);
        border-radius: var(--nf-radius);
        background: var(--nf-surface);
        color: var(--nf-text);
        box-shadow: var(--nf-shadow-lg);
      }
      .heading {
        padding: 0.35rem 0.6rem 0.15rem;
        font-size: 0.75rem;
        font-weight: 600;
        letter-spacing: 0.02em;
        text-transform: uppercase;
        color: var(--nf-text-muted);
      }
      .note {
        padding: 0 0.6rem 0.35rem;
        font-size: 0.75rem;
        color: var(--nf-text-muted);
      }
      .item {
        display: grid;
        gap: 0.05rem;
        width: 100%;
        padding: 0.45rem 0.6rem;
        border: 1px solid transparent;
        border-radius: var(--nf-radius-sm);
        background: none;
        color: var(--nf-text);
        text-align: left;
        text-decoration: none;
        cursor: pointer;
      }
      .item:hover:not(:disabled),
      .item:focus-visible {
        background: var(--nf-surface-2);
        outline: none;
        border-color: var(--nf-focus);
      }
      .item:disabled {
        cursor: not-allowed;
        opacity: 0.55;
      }
      .item .label {
        font-weight: 500;
      }
      .item .hint {
        font-size: 0.75rem;
        color: var(--nf-text-muted);
      }
      .item.suggested {
        background: var(--nf-accent-soft);
        border-color: color-mix(in srgb, var(--nf-accent) 40%, transparent);
      }
      .item.suggested .label::after {
        content: "suggested";
        margin-left: 0.5rem;
        padding: 0 0.4rem;
        border-radius: 999px;
        background: var(--nf-accent);
        color: var(--nf-on-accent);
        font-size: 0.6875rem;
        font-weight: 600;
        vertical-align: 1px;
      }
      .item.danger .label {
        color: var(--nf-red);
      }
      hr {
        margin: 0.3rem 0.2rem;
        border: 0;
        border-top: 1px solid var(--nf-border);
      }
    `,
  ];

  get isOpen(): boolean {
    return this._content !== null;
  }

  /** Opens the menu below (or above) `anchor`; a second open at the same anchor closes it. */
  async open(anchor: Anchor, content: MenuContent): Promise<void> {
    const sameAnchor = this._anchor === anchor && this._content !== null;
    if (this._content !== null) this.close(false);
    const justClosed = this._closedByAnchor?.anchor === anchor && performance.now() - this._closedByAnchor.at < 1000;
    this._closedByAnchor = null;
    if (sameAnchor || justClosed) return;
    this._anchor = anchor;
    this._restoreFocus = true;
    this._content = content;
    setExpanded(anchor, true);
    await this.updateComplete;
    const menu = this._menu;
    menu.showPopover();
    this.position(anchor, menu);
    window.addEventListener("pointerdown", this._onPointerDown, { capture: true });
    window.addEventListener("resize", this._followAnchor);
    window.addEventListener("scroll", this._followAnchor, { capture: true, passive: true });
    this.items()[0]?.focus();
  }

  close(restoreFocus = true): void {
    this._restoreFocus = restoreFocus;
    if (this._menu?.matches(":popover-open")) this._menu.hidePopover();
    else this.closed();
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.close(false);
  }

  override render() {
    const content = this._content;
    return html`<div id="menu" popover="auto" role="menu" aria-label=${content?.heading ?? "actions"} @toggle=${this.onToggle} @keydown=${this.onKeydown}>
      ${content === null
        ? nothing
        : html`<div class="heading" role="none" aria-hidden="true">${content.heading}</div>
            ${content.note ? html`<div class="note" role="none">${content.note}</div>` : nothing}
            ${content.entries.map((entry) => this.renderEntry(entry))}`}
    </div>`;
  }

  private renderEntry(entry: MenuEntry) {
    const classes = `item${entry.suggested ? " suggested" : ""}${entry.danger ? " danger" : ""}`;
    const body = html`<span class="label">${entry.label}</span>${entry.hint ? html`<span class="hint">${entry.hint}</span>` : nothing}`;
    if (entry.href !== undefined) {
      return html`<a
        class=${classes}
        role="menuitem"
        href=${entry.href}
        target=${entry.external ? "_blank" : "_self"}
        rel=${entry.external ? "noopener noreferrer" : ""}
        @click=${() => this.close(false)}
        >${body}</a
      >`;
    }
    return html`<button class=${classes} role="menuitem" ?disabled=${entry.disabled} @click=${() => this.choose(entry)}>${body}</button>`;
  }

  private choose(entry: MenuEntry): void {
    this.close(true);
    entry.run?.();
  }

  private items(): HTMLElement[] {
    return [...this.renderRoot.querySelectorAll<HTMLElement>(".item")].filter((item) => !(item instanceof HTMLButtonElement && item.disabled));
  }

  private onKeydown(event: KeyboardEvent): void {
    const items = this.items();
    if (items.length === 0) return;
    const active = this.shadowRoot?.activeElement;
    const index = items.findIndex((item) => item === active);
    let next: number | null = null;
    if (event.key === "ArrowDown") next = (index + 1) % items.length;
    else if (event.key === "ArrowUp") next = (index - 1 + items.length) % items.length;
    else if (event.key === "Home") next = 0;
    else if (event.key === "End") next = items.length - 1;
    else if (event.key === "Tab") {
      this.close(false);
      return;
    }
    if (next !== null) {
      event.preventDefault();
      items[next]?.focus();
    }
  }

  private onToggle(event: ToggleEvent): void {
    if (event.newState === "closed") this.closed();
  }

  /** The popover closed (a choice, Escape, a click outside): tidy up and hand focus back. */
  private closed(): void {
    window.removeEventListener("pointerdown", this._onPointerDown, { capture: true });
    window.removeEventListener("resize", this._followAnchor);
    window.removeEventListener("scroll", this._followAnchor, { capture: true });
    const anchor = this._anchor;
    const pressedAnchor = this._pressedAnchor;
    this._pressedAnchor = false;
    this._anchor = null;
    this._content = null;
    if (anchor) {
      this._closedByAnchor = pressedAnchor ? { anchor, at: performance.now() } : null;
      setExpanded(anchor, false);
      if (this._restoreFocus && anchor.isConnected) anchor.focus();
    }
  }

  private position(anchor: HTMLElement, menu: HTMLElement): void {
    const margin = 8;
    const rect = anchor.getBoundingClientRect();
    const width = menu.offsetWidth;
    const height = menu.offsetHeight;
    const below = rect.bottom + 4;
    const top = below + height > window.innerHeight - margin && rect.top - 4 - height > margin ? rect.top - 4 - height : below;
    const left = Math.min(Math.max(margin, rect.left), window.innerWidth - width - margin);
    // Fitting on neither side (a long menu mid-page): as low as it can go and still be whole on screen.
    menu.style.top = `${Math.max(margin, Math.min(top, window.innerHeight - margin - height))}px`;
    menu.style.left = `${Math.max(margin, left)}px`;
  }
}

function setExpanded(anchor: Anchor, value: boolean): void {
  if ("expanded" in anchor) anchor.expanded = value;
  else anchor.setAttribute("aria-expanded", String(value));
}

customElements.define("nf-action-menu", NfActionMenu);

declare global {
  interface HTMLElementTagNameMap {
    "nf-action-menu": NfActionMenu;
  }
}
