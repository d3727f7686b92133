import { LitElement, css, html, nothing } from "lit";
import type { RevertStrategy, RolloutView } from "../../common/protocol.ts";
import { shortSha } from "../common/format.ts";
import { ModalDialog } from "../common/modal-dialog.ts";
import { notify } from "../common/notify.ts";
import { revertRollout } from "../data/revert.ts";
import type { FleetStore } from "../data/store.ts";
import { dialogStyles } from "../styles/dialog.ts";
import { sharedStyles } from "../styles/shared.ts";

const CHOICES: Record<RevertStrategy, { label: string; hint: string }> = {
  "revert-commit": {
    label: "Revert the merge commit",
    hint: "a revert commit on the branch, then deployed to this rollout's hosts with the same waves and gates (a protected branch gets a revert PR instead)",
  },
  "revert-pr": { label: "Open a revert PR", hint: "for review; nothing is deployed until someone merges it" },
};

/**
 * "Revert this update…": the revert a person chooses for a finished rollout (POST /api/rollouts/:id/revert),
 * then what GitHub did — the revert commit and its rollout, the revert PR, or why neither, with the
 * way on when the revert does not apply: a revert PR for a person to resolve, or the commit before the update.
 */
export class NfRevertDialog extends LitElement {
  static override properties = {
    store: { attribute: false },
    _rollout: { state: true },
    _strategy: { state: true },
    _busy: { state: true },
    _error: { state: true },
  };
  declare store: FleetStore | null;
  /** The rollout to revert; after a request, as the answer left it (its `revert` says what happened). */
  private declare _rollout: RolloutView | null;
  private declare _strategy: RevertStrategy;
  private declare _busy: boolean;
  private declare _error: string | null;
  /** Whether `_rollout.revert` is this dialog's own outcome (not one from before it opened). */
  private _asked = false;
  private readonly _modal = new ModalDialog(this, () => (this._rollout = null));

  constructor() {
    super();
    this.store = null;
    this._rollout = null;
    this._strategy = "revert-commit";
    this._busy = false;
    this._error = null;
  }

  static override styles = [
    sharedStyles,
    dialogStyles,
    css`
      fieldset {
        display: grid;
        gap: 0.5rem;
        margin: 0;
        padding: 0;
        border: 0;
      }
      .radio {
        display: flex;
        align-items: baseline;
        gap: 0.5rem;
        font-weight: 400;
      }
      .radio input {
        min-height: 0;
        accent-color: var(--nf-accent);
      }
      .outcome {
        overflow-wrap: anywhere;
      }
    `,
  ];

  async show(rollout: RolloutView, strategy: RevertStrategy = "revert-commit"): Promise<void> {
    this._rollout = rollout;
    this._strategy = strategy;
    this._error = null;
    this._asked = false;
    await this._modal.open({ focus: "#revert" });
  }

  override render() {
    const r = this._rollout;
    return html`<dialog aria-labelledby="title">
      ${r === null
        ? nothing
        : html`<form class="dialog-body" @submit=${(e: Event) => this.submit(e, r, this._strategy)}>
            <h2 id="title">Revert ${r.pr ? `PR #${r.pr}` : "the deploy"} (${shortSha(r.commit)})?</h2>
            ${this._asked && r.revert ? this.renderOutcome(r) : this.renderChoice()}
            ${this._error ? html`<div class="form-error" role="alert">${this._error}</div>` : nothing}
          </form>`}
    </dialog>`;
  }

  private renderChoice() {
    return html`<fieldset>
        ${(Object.keys(CHOICES) as RevertStrategy[]).map(
          (strategy) =>
            html`<label class="radio"
              ><input type="radio" name="strategy" value=${strategy} .checked=${this._strategy === strategy} @change=${() => (this._strategy = strategy)} /><span
                ><strong>${CHOICES[strategy].label}</strong> <span class="field-hint">${CHOICES[strategy].hint}</span></span
              ></label
            >`,
        )}
      </fieldset>
      <div class="actions">
        <button type="button" class="btn" @click=${() => this._modal.close()}>Cancel</button>
        <button id="revert" class="btn danger" ?disabled=${this._busy}>${this._busy ? "Reverting…" : CHOICES[this._strategy].label}</button>
      </div>`;
  }

  private renderOutcome(r: RolloutView) {
    const revert = r.revert!;
    const link = revert.url ? html` <a href=${revert.url} target="_blank" rel="noopener noreferrer">${revert.url}</a>` : nothing;
    let said;
    if (revert.state === "failed") said = html`<p class="outcome tone-bad" role="alert" id="outcome">Not reverted: ${revert.error}</p>`;
    else if (revert.kind === "revert-commit") {
      said = html`<p class="outcome" role="status" id="outcome">
        Reverted on the branch:${link}. ${revert.rollout ? `Its rollout ${revert.rollout} has started.` : ""}
      </p>`;
    } else said = html`<p class="outcome" role="status" id="outcome">Revert PR opened:${link}</p>`;
    return html`${said} ${revert.note ? html`<p class="outcome tone-warn" id="note">${revert.note}</p>` : nothing}
      <div class="actions">
        ${revert.state === "failed" && revert.before
          ? html`<button type="button" class="btn" id="deploy-before" ?disabled=${this._busy} @click=${() => this.deployBefore(revert.before!)}>
                Deploy ${shortSha(revert.before)}, the commit before
              </button>
              <button type="button" class="btn" id="revert-pr" ?disabled=${this._busy} @click=${(e: Event) => this.submit(e, r, "revert-pr")}>
                Open a revert PR to resolve
              </button>`
          : nothing}
        <button type="button" class="btn primary" id="done" @click=${() => this._modal.close()}>Close</button>
      </div>`;
  }

  private async submit(event: Event, rollout: RolloutView, strategy: RevertStrategy): Promise<void> {
    event.preventDefault();
    if (!this.store || this._busy) return;
    this._busy = true;
    this._error = null;
    try {
      this._rollout = await revertRollout(this.store, rollout.id, strategy);
      this._asked = true;
      await this._modal.focus("#done");
    } catch (err) {
      this._error = err instanceof Error ? err.message : String(err);
    } finally {
      this._busy = false;
    }
  }

  /** The way on when the revert does not apply: the fleet back at the commit before the update, main unchanged. */
  private async deployBefore(commit: string): Promise<void> {
    if (!this.store) return;
    this._busy = true;
    try {
      const started = await this.store.startRollout({ commit });
      this._modal.close();
      notify(this, `Deploying ${shortSha(commit)}: rollout ${started.id}`);
    } catch (err) {
      this._error = err instanceof Error ? err.message : String(err);
    } finally {
      this._busy = false;
    }
  }
}

customElements.define("nf-revert-dialog", NfRevertDialog);

declare global {
  interface HTMLElementTagNameMap {
    "nf-revert-dialog": NfRevertDialog;
  }
}
