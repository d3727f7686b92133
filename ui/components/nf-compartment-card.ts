import { LitElement, css, html, nothing } from "lit";
import type { CommandKind, Compartment, CompartmentName } from "../../common/protocol.ts";
import { COMMAND_LABELS } from "../common/actions.ts";
import { COMPARTMENT_QUESTIONS, COMPARTMENT_TITLES, stateDisplay } from "../common/compartment-display.ts";
import { formatAge, localTimestamp } from "../../common/text.ts";
import { hostPath } from "../common/route.ts";
import { sharedStyles, stateColours } from "../styles/shared.ts";

/** One compartment on the host page: state, reason, since when, and what to do about it. */
export class NfCompartmentCard extends LitElement {
  static override properties = {
    name: {},
    host: {},
    compartment: { attribute: false },
    glow: { type: Boolean, reflect: true },
    busyReason: {},
    now: { type: Number },
  };
  declare name: CompartmentName;
  declare host: string;
  declare compartment: Compartment | null;
  declare glow: boolean;
  /** Disables the suggested action while the host is busy with another command. */
  declare busyReason: string;
  declare now: number;

  constructor() {
    super();
    this.name = "agent";
    this.host = "";
    this.compartment = null;
    this.glow = false;
    this.busyReason = "";
    this.now = Date.now();
  }

  static override styles = [
    sharedStyles,
    stateColours,
    css`
      :host {
        display: block;
      }
      .card {
        display: grid;
        grid-template-rows: auto 1fr auto;
        /* A slotted detail (System's closure diff) scrolls inside the card instead of widening it. */
        grid-template-columns: minmax(0, 1fr);
        gap: 0.5rem;
        height: 100%;
        padding: 0.85rem 0.95rem;
        border: 1px solid var(--nf-border);
        border-top: 4px solid var(--state-fg);
        border-radius: var(--nf-radius);
        background: var(--nf-surface);
      }
      .stale {
        border-top-style: dashed;
      }
      .stale .state {
        background: none;
      }
      .stale .reason {
        color: var(--nf-text-muted);
      }
      .head {
        display: flex;
        align-items: center;
        gap: 0.5rem;
      }
      h2 {
        margin: 0;
        font-size: 0.9375rem;
      }
      .state {
        display: inline-flex;
        align-items: center;
        gap: 0.3rem;
        margin-left: auto;
        padding: 0.05rem 0.5rem;
        border-radius: 999px;
        background: var(--state-bg);
        color: var(--state-fg);
        font-size: 0.8125rem;
        font-weight: 600;
        white-space: nowrap;
      }
      .reason {
        margin: 0;
        font-size: 0.875rem;
        line-height: 1.45;
        overflow-wrap: anywhere;
      }
      ::slotted(*) {
        margin-top: 0.5rem;
      }
      .since {
        font-size: 0.75rem;
        color: var(--nf-text-muted);
      }
      .actions {
        display: flex;
        flex-wrap: wrap;
        align-items: center;
        gap: 0.4rem;
      }
      :host([glow]) .card {
        animation: glow 2.4s ease-in-out infinite;
      }
      @keyframes glow {
        50% {
          box-shadow: 0 0 0 4px color-mix(in srgb, var(--nf-yellow) 40%, transparent);
        }
      }
      @media (prefers-reduced-motion: reduce) {
        :host([glow]) .card {
          animation: none;
          box-shadow: 0 0 0 3px color-mix(in srgb, var(--nf-yellow) 40%, transparent);
        }
      }
    `,
  ];

  override render() {
    const compartment = this.compartment;
    if (compartment === null) return nothing;
    const { icon, label } = stateDisplay(this.name, compartment.state);
    const action = compartment.action;
    return html`<section class="card state-${compartment.state}${compartment.stale ? " stale" : ""}" aria-labelledby="h">
      <div class="head">
        <h2 id="h" title=${COMPARTMENT_QUESTIONS[this.name]}>${COMPARTMENT_TITLES[this.name]}</h2>
        <span class="state"><span aria-hidden="true">${icon}</span>${label}${compartment.stale ? " · last known" : ""}</span>
      </div>
      <div>
        <p class="reason">${compartment.reason}</p>
        ${compartment.since
          ? html`<span class="since" title=${localTimestamp(compartment.since)}>since ${formatAge(compartment.since, this.now)}</span>`
          : nothing}
        <slot></slot>
      </div>
      <div class="actions">
        ${action
          ? html`<button
              class="btn small primary"
              ?disabled=${this.busyReason !== ""}
              title=${this.busyReason || `${COMMAND_LABELS[action]} ${this.host}`}
              @click=${() => this.emitRun(action)}
            >
              ${COMMAND_LABELS[action]}
            </button>`
          : nothing}
        ${compartment.commandId ? html`<a class="btn small" href=${hostPath(this.host, compartment.commandId)}>View log</a>` : nothing}
        <button
          class="btn small more"
          aria-haspopup="menu"
          aria-expanded="false"
          aria-label="${COMPARTMENT_TITLES[this.name]} actions"
          @click=${(e: Event) => this.emitMenu(e.currentTarget as HTMLElement)}
        >
          Actions ▾
        </button>
      </div>
    </section>`;
  }

  private emitRun(kind: CommandKind): void {
    this.dispatchEvent(new CustomEvent("nf-run-command", { detail: { kind }, bubbles: true, composed: true }));
  }

  private emitMenu(anchor: HTMLElement): void {
    this.dispatchEvent(new CustomEvent("nf-compartment-menu", { detail: { name: this.name, anchor }, bubbles: true, composed: true }));
  }
}

customElements.define("nf-compartment-card", NfCompartmentCard);

declare global {
  interface HTMLElementTagNameMap {
    "nf-compartment-card": NfCompartmentCard;
  }
}
