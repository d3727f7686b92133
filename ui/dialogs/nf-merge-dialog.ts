import { LitElement, html, nothing } from "lit";
import type { UpdatePr } from "../../common/protocol.ts";
import { shortSha } from "../common/format.ts";
import { ModalDialog } from "../common/modal-dialog.ts";
import { notify } from "../common/notify.ts";
import { ciBlocker } from "../common/rollouts.ts";
import { mergeUpdatePr } from "../data/repo-actions.ts";
import type { FleetStore } from "../data/store.ts";
import { dialogStyles } from "../styles/dialog.ts";
import { sharedStyles } from "../styles/shared.ts";

/**
 * The confirmation before Merge (merge only): the update PR is merged on GitHub and nothing is
 * rolled out, so hosts read "behind main" until someone deploys main or pulls. A refusal (GitHub's
 * branch protection, a head that moved, a PR no longer open) stays in the dialog, said as the
 * server said it.
 */
export class NfMergeDialog extends LitElement {
  static override properties = {
    store: { attribute: false },
    _pr: { state: true },
    _busy: { state: true },
    _error: { state: true },
  };
  declare store: FleetStore | null;
  private declare _pr: UpdatePr | null;
  private declare _busy: boolean;
  private declare _error: string | null;
  private readonly _modal = new ModalDialog(this, () => (this._pr = null));

  constructor() {
    super();
    this.store = null;
    this._pr = null;
    this._busy = false;
    this._error = null;
  }

  static override styles = [sharedStyles, dialogStyles];

  async show(pr: UpdatePr): Promise<void> {
    this._pr = pr;
    this._busy = false;
    this._error = null;
    await this._modal.open({ focus: "#merge" });
  }

  override render() {
    const pr = this._pr;
    const blocker = pr ? ciBlocker(pr.ciState) : null;
    return html`<dialog aria-labelledby="title">
      ${pr === null
        ? nothing
        : html`<form class="dialog-body" @submit=${this.onSubmit}>
            <h2 id="title">Merge #${pr.number} without deploying?</h2>
            <p>
              Merges <a href=${pr.url} target="_blank" rel="noopener noreferrer">${pr.title}</a> on GitHub. No rollout starts: hosts read
              “behind main” until main is deployed or they pull.
            </p>
            ${blocker ? html`<p class="tone-warn" role="note">${blocker}: GitHub refuses the merge if branch protection requires the checks.</p>` : nothing}
            ${this._error ? html`<div class="form-error" role="alert">${this._error}</div>` : nothing}
            <div class="actions">
              <button type="button" id="cancel" class="btn" @click=${() => this._modal.close()}>Cancel</button>
              <button id="merge" class="btn primary" ?disabled=${this._busy}>${this._busy ? "Merging…" : "Merge"}</button>
            </div>
          </form>`}
    </dialog>`;
  }

  private async onSubmit(event: Event): Promise<void> {
    event.preventDefault();
    const store = this.store;
    const pr = this._pr;
    if (!store || !pr) return;
    this._busy = true;
    this._error = null;
    try {
      const merged = await mergeUpdatePr(store.api, pr.number, { sha: pr.headSha });
      this._modal.close();
      notify(this, `Merged #${pr.number} as ${shortSha(merged.sha)}: no rollout started, hosts read behind main until it is deployed`);
    } catch (err) {
      this._error = `Merge refused: ${err instanceof Error ? err.message : String(err)}`;
    } finally {
      this._busy = false;
    }
  }
}

customElements.define("nf-merge-dialog", NfMergeDialog);

declare global {
  interface HTMLElementTagNameMap {
    "nf-merge-dialog": NfMergeDialog;
  }
}
