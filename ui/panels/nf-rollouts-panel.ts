import { LitElement, css, html, nothing } from "lit";
import type { RolloutIncident, RolloutView } from "../../common/protocol.ts";
import { shortSha } from "../common/format.ts";
import { ROLLOUT_STATES, rolloutHeadline } from "../common/rollouts.ts";
import { withLiveRollouts } from "../data/fleet-state.ts";
import type { RolloutDetail } from "../data/schemas.ts";
import type { FleetStore } from "../data/store.ts";
import { lockChangesStyles, lockChangesTable } from "../components/lock-changes.ts";
import { PagedList } from "../components/paged-list.ts";
import { sharedStyles } from "../styles/shared.ts";
import "../components/nf-rollout-progress.ts";
import "../components/nf-rollout-incidents.ts";
import { rolloutIncidents } from "../data/rollout-incidents.ts";
import { formatAge, localTimestamp } from "../../common/text.ts";
import { COMMAND_ROLE, roleDenial } from "../../common/permissions.ts";
import type { NfRevertDialog } from "../dialogs/nf-revert-dialog.ts";

/** Every rollout, newest first: its PR and lock diff, who started it, each host's outcome, the failure and the revert. */
export class NfRolloutsPanel extends LitElement {
  static override properties = {
    store: { attribute: false },
    /** The rollouts the live events describe (the store's). */
    live: { attribute: false },
    repository: {},
    now: { type: Number },
    _details: { state: true },
    _incidents: { state: true },
  };
  declare store: FleetStore | null;
  declare live: readonly RolloutView[];
  declare repository: string;
  declare now: number;
  private readonly _paged = new PagedList<RolloutView>(this, {
    pageSize: 20,
    fetchPage: (page) => this.store?.rollouts(page) ?? null,
    what: "the update history",
  });
  /** Opened entries: the detail, or why it could not be loaded. */
  private declare _details: Record<string, RolloutDetail | string>;
  /** Hosts that turned red after each rollout (worker/coordinator/incidents.ts), by rollout id; asked once per shown rollout. */
  private declare _incidents: Record<string, RolloutIncident[]>;
  private readonly _incidentsAsked = new Set<string>();

  constructor() {
    super();
    this.store = null;
    this.live = [];
    this.repository = "";
    this.now = Date.now();
    this._details = {};
    this._incidents = {};
  }

  static override styles = [
    sharedStyles,
    lockChangesStyles,
    css`
      :host {
        display: grid;
        grid-template-columns: minmax(0, 1fr);
        gap: 1rem;
      }
      .title-row {
        display: flex;
        align-items: center;
        gap: 0.75rem;
      }
      h1 {
        margin: 0;
        font-size: 1.5rem;
      }
      h1:focus {
        outline: none;
      }
      .spacer {
        flex: 1;
      }
      ol {
        display: grid;
        gap: 0.6rem;
        margin: 0;
        padding: 0;
        list-style: none;
      }
      summary {
        display: flex;
        flex-wrap: wrap;
        align-items: center;
        gap: 0.3rem 0.75rem;
        padding: 0.7rem 0.9rem;
        cursor: pointer;
      }
      summary::before {
        content: "▸";
        color: var(--nf-text-muted);
      }
      details[open] summary::before {
        content: "▾";
      }
      .when {
        font-size: 0.8125rem;
      }
      .body {
        display: grid;
        gap: 0.75rem;
        padding: 0 0.9rem 0.9rem;
      }
      .empty,
      .problem {
        padding: 1rem 0.9rem;
      }
      .problem {
        color: var(--nf-red);
      }
      .footer {
        display: flex;
        justify-content: center;
      }
    `,
  ];

  override render() {
    const { items: paged, loading, error } = this._paged;
    const rollouts = withLiveRollouts(paged, this.live);
    return html`<div class="title-row">
        <h1 tabindex="-1">Update history</h1>
        <span class="spacer"></span>
        <button class="btn small" ?disabled=${loading} @click=${() => (this._incidentsAsked.clear(), this._paged.load(true))}>Refresh</button>
      </div>
      ${error ? html`<div class="card problem" role="alert">${error}</div>` : nothing}
      ${rollouts.length === 0 && !loading && !error ? html`<div class="card empty muted">No rollout yet.</div>` : nothing}
      <ol>
        ${rollouts.map((rollout) => this.renderRollout(rollout))}
      </ol>
      <div class="footer">${this._paged.footer("Load older rollouts")}</div>
      <nf-revert-dialog .store=${this.store}></nf-revert-dialog>`;
  }

  private renderRollout(rollout: RolloutView) {
    const state = ROLLOUT_STATES[rollout.state];
    const detail = this._details[rollout.id];
    return html`<li class="card" data-rollout=${rollout.id}>
      <details @toggle=${(e: Event) => (e.target as HTMLDetailsElement).open && this.open(rollout.id)}>
        <summary>
          <span class="pill tone-${state.tone}">${state.label}</span>
          <strong>${rollout.pr ? `PR #${rollout.pr}` : "Deploy"} · <span class="mono">${shortSha(rollout.commit)}</span></strong>
          <span>${rolloutHeadline(rollout)}</span>
          <span class="muted when" title=${localTimestamp(rollout.startedAt)}
            >${rollout.automatic ? "automatic" : rollout.startedBy} · ${formatAge(rollout.startedAt, this.now)}</span
          >
        </summary>
        <div class="body">
          ${detail === undefined
            ? html`<span class="muted" role="status">Loading…</span>`
            : typeof detail === "string"
              ? html`<div class="problem" role="alert">${detail}</div>`
              : detail.context.pr
                ? html`<div>
                    <a href=${detail.context.pr.url} target="_blank" rel="noopener noreferrer">${detail.context.pr.title}</a>
                    <span class="muted">#${detail.context.pr.number}</span>
                  </div>
                  ${detail.context.lockChanges.length > 0 ? lockChangesTable(detail.context.lockChanges) : nothing}`
                : nothing}
          <nf-rollout-progress .rollout=${rollout} .repository=${this.repository} .now=${this.now}></nf-rollout-progress>
          ${this.renderRevert(rollout)}
        </div>
      </details>
      <nf-rollout-incidents .incidents=${this._incidents[rollout.id] ?? []}></nf-rollout-incidents>
    </li>`;
  }

  /** "Revert this update…": for operators, once the rollout ended (the server refuses it before). */
  private renderRevert(rollout: RolloutView) {
    const why = roleDenial(this.store?.state.me ?? null, COMMAND_ROLE) ?? (rollout.finishedAt ? null : "the rollout has not ended yet");
    return html`<div>
      <button class="btn small revert" ?disabled=${why !== null} title=${why ?? "revert the merge commit on the branch or open a revert PR"} @click=${() => this.revert(rollout)}>
        Revert this update…
      </button>
      ${why ? html`<span class="muted">${why}</span>` : nothing}
    </div>`;
  }

  private async revert(rollout: RolloutView): Promise<void> {
    await import("../dialogs/nf-revert-dialog.ts");
    await (this.renderRoot.querySelector("nf-revert-dialog") as NfRevertDialog).show(rollout);
  }

  override updated(): void {
    this.askIncidents(withLiveRollouts(this._paged.items, this.live));
  }

  /** Asks for the links of the rollouts shown that were not asked for yet. */
  private askIncidents(rollouts: readonly RolloutView[]): void {
    const ids = rollouts.map((r) => r.id).filter((id) => !this._incidentsAsked.has(id)).slice(0, 100);
    if (this.store && ids.length > 0) {
      for (const id of ids) this._incidentsAsked.add(id);
      rolloutIncidents(this.store.api, ids).then(
        (found) => (this._incidents = { ...this._incidents, ...found }),
        // The history reads without them; Refresh asks again.
        (err: unknown) => console.warn("could not load the hosts that turned red after these rollouts", err),
      );
    }
  }

  private async open(id: string): Promise<void> {
    if (!this.store || this._details[id] !== undefined) return;
    try {
      const detail = await this.store.rolloutDetail(id);
      this._details = { ...this._details, [id]: detail };
    } catch (err) {
      this._details = { ...this._details, [id]: `Could not load this rollout: ${err instanceof Error ? err.message : String(err)}` };
    }
  }
}

customElements.define("nf-rollouts-panel", NfRolloutsPanel);

declare global {
  interface HTMLElementTagNameMap {
    "nf-rollouts-panel": NfRolloutsPanel;
  }
}
