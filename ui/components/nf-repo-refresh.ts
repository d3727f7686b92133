import { LitElement, css, html, nothing } from "lit";
import type { MeResponse } from "../../common/protocol.ts";
import { UPDATE_PR_ROLE, roleDenial } from "../../common/permissions.ts";
import { refreshOutcome, refreshRefusal } from "../common/repo-refresh.ts";
import { refreshRepo } from "../data/repo-actions.ts";
import type { FleetStore } from "../data/store.ts";
import { sharedStyles } from "../styles/shared.ts";

/**
 * Refresh from GitHub: reads the branch, its flake.lock and the open update PRs now, without waiting
 * for a webhook or the 5-minute sync, then says what it read or why GitHub could not be read.
 */
export class NfRepoRefresh extends LitElement {
  static override properties = {
    store: { attribute: false },
    me: { attribute: false },
    _busy: { state: true },
    _outcome: { state: true },
  };
  declare store: FleetStore | null;
  declare me: MeResponse | null;
  private declare _busy: boolean;
  /** What the last refresh read, or why it was refused. */
  private declare _outcome: { ok: boolean; text: string } | null;

  constructor() {
    super();
    this.store = null;
    this.me = null;
    this._busy = false;
    this._outcome = null;
  }

  static override styles = [
    sharedStyles,
    css`
      :host {
        display: contents;
      }
      button {
        margin-top: 0.6rem;
      }
      .outcome {
        margin: 0.4rem 0 0;
        font-size: 0.8125rem;
      }
    `,
  ];

  override render() {
    const denied = roleDenial(this.me, UPDATE_PR_ROLE);
    const outcome = this._outcome;
    return html`<button
        class="btn small"
        id="refresh-github"
        ?disabled=${denied !== null || this._busy || this.store === null}
        title=${denied ?? "Read the branch, its flake.lock and the open update PRs from GitHub now, without waiting for a webhook or the 5-minute sync"}
        @click=${() => void this.refresh()}
      >
        ${this._busy ? "Refreshing…" : "Refresh from GitHub"}
      </button>
      ${this._busy
        ? html`<p class="outcome muted" role="status" data-testid="refresh-outcome">Reading the repository from GitHub…</p>`
        : outcome === null
          ? nothing
          : html`<p class="outcome ${outcome.ok ? "muted" : "tone-bad"}" role=${outcome.ok ? "status" : "alert"} data-testid="refresh-outcome">${outcome.text}</p>`}`;
  }

  private async refresh(): Promise<void> {
    const store = this.store;
    if (store === null) return;
    this._busy = true;
    try {
      const { repo, updatePrs } = await refreshRepo(store.api);
      this._outcome = { ok: true, text: refreshOutcome(repo, updatePrs.filter((pr) => pr.state === "open" && !pr.superseded).length, new Date()) };
      // The page shows what was read even when nothing changed (no `repo` event then).
      store.refreshFleet();
    } catch (err) {
      this._outcome = { ok: false, text: refreshRefusal(err) };
    } finally {
      this._busy = false;
    }
  }
}

customElements.define("nf-repo-refresh", NfRepoRefresh);

declare global {
  interface HTMLElementTagNameMap {
    "nf-repo-refresh": NfRepoRefresh;
  }
}
