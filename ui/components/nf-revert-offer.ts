import { LitElement, css, html, nothing } from "lit";
import type { RevertStrategy, RolloutView } from "../../common/protocol.ts";
import { notify } from "../common/notify.ts";
import { COMMAND_ROLE, roleDenial } from "../../common/permissions.ts";
import type { FleetStore } from "../data/store.ts";
import type { NfRevertDialog } from "../dialogs/nf-revert-dialog.ts";
import { sharedStyles } from "../styles/shared.ts";

/**
 * Spec 002 §5's rollback options under a failed rollout whose rollback strategy made no revert (it is
 * `alert-only`, or the revert failed): revert the merge commit, open a revert PR, or only alert. Loaded
 * with its first failed rollout, not in the first paint; it stays while its dialog shows what was done.
 */
export class NfRevertOffer extends LitElement {
  static override properties = {
    rollout: { attribute: false },
    store: { attribute: false },
    _dismissed: { state: true },
  };
  declare rollout: RolloutView | null;
  declare store: FleetStore | null;
  /** "Only alert" chosen for this rollout: the offer goes away, nothing else happens. */
  private declare _dismissed: string | null;

  constructor() {
    super();
    this.rollout = null;
    this.store = null;
    this._dismissed = null;
  }

  static override styles = [
    sharedStyles,
    css`
      :host {
        display: flex;
        flex-wrap: wrap;
        align-items: center;
        gap: 0.4rem 0.6rem;
      }
    `,
  ];

  override render() {
    const r = this.rollout;
    if (r === null) return nothing;
    // Once a revert is under way or made, only the dialog stays (one template, so the same element): it shows the outcome it asked for.
    const offered = this._dismissed !== r.id && (!r.revert || r.revert.state === "failed");
    return html`${offered ? this.renderChoices(r) : nothing}<nf-revert-dialog .store=${this.store}></nf-revert-dialog>`;
  }

  private renderChoices(r: RolloutView) {
    const denied = roleDenial(this.store?.state.me ?? null, COMMAND_ROLE);
    const offer = (id: string, label: string, strategy: RevertStrategy) =>
      html`<button class="btn small" id=${id} ?disabled=${denied !== null} title=${denied ?? nothing} @click=${() => this.open(r, strategy)}>${label}</button>`;
    return html`<span role="group" aria-label="Rollback options" id="options">
      <strong>Rollback:</strong> ${offer("offer-revert-commit", "Revert the merge commit…", "revert-commit")}
      ${offer("offer-revert-pr", "Create a revert PR…", "revert-pr")}
      <button class="btn small" id="offer-alert-only" @click=${() => this.onlyAlert(r)}>Just alert</button>
    </span>`;
  }

  private async open(rollout: RolloutView, strategy: RevertStrategy): Promise<void> {
    await import("../dialogs/nf-revert-dialog.ts");
    await (this.renderRoot.querySelector("nf-revert-dialog") as NfRevertDialog).show(rollout, strategy);
  }

  private onlyAlert(rollout: RolloutView): void {
    this._dismissed = rollout.id;
    notify(this, "Nothing is reverted: the failure was notified, and the history keeps the revert at hand.");
  }
}

customElements.define("nf-revert-offer", NfRevertOffer);

declare global {
  interface HTMLElementTagNameMap {
    "nf-revert-offer": NfRevertOffer;
  }
}
