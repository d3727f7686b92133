import { LitElement, css, html, nothing } from "lit";
import type { RolloutView } from "../../common/protocol.ts";
import { formatAge, formatTimestamp, shortSha } from "../common/format.ts";
import { ROLLOUT_STATES, rolloutHeadline } from "../common/rollouts.ts";
import { withLiveRollouts } from "../data/fleet-state.ts";
import type { RolloutDetail } from "../data/schemas.ts";
import type { FleetStore } from "../data/store.ts";
import { lockChangesStyles, lockChangesTable } from "../components/lock-changes.ts";
import { sharedStyles } from "../styles/shared.ts";
import "../components/nf-rollout-progress.ts";

const PAGE = 20;

/** Every rollout, newest first: its PR and lock diff, who started it, each host's outcome, the failure and the revert. */
export class NfRolloutsPanel extends LitElement {
  static override properties = {
    store: { attribute: false },
    /** The rollouts the live events describe (the store's). */
    live: { attribute: false },
    repository: {},
    now: { type: Number },
    _paged: { state: true },
    _details: { state: true },
    _loading: { state: true },
    _error: { state: true },
    _end: { state: true },
  };
  declare store: FleetStore | null;
  declare live: readonly RolloutView[];
  declare repository: string;
  declare now: number;
  private declare _paged: RolloutView[];
  /** Opened entries: the detail, or why it could not be loaded. */
  private declare _details: Record<string, RolloutDetail | string>;
  private declare _loading: boolean;
  private declare _error: string | null;
  private declare _end: boolean;

  constructor() {
    super();
    this.store = null;
    this.live = [];
    this.repository = "";
    this.now = Date.now();
    this._paged = [];
    this._details = {};
    this._loading = false;
    this._error = null;
    this._end = false;
  }

  static override styles = [
    sharedStyles,
    lockChangesStyles,
    css`
      :host {
        display: grid;
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

  override connectedCallback(): void {
    super.connectedCallback();
    void this.load(true);
  }

  override render() {
    const rollouts = withLiveRollouts(this._paged, this.live);
    return html`<div class="title-row">
        <h1 tabindex="-1">Update history</h1>
        <span class="spacer"></span>
        <button class="btn small" ?disabled=${this._loading} @click=${() => this.load(true)}>Refresh</button>
      </div>
      ${this._error ? html`<div class="card problem" role="alert">${this._error}</div>` : nothing}
      ${rollouts.length === 0 && !this._loading && !this._error ? html`<div class="card empty muted">No rollout yet.</div>` : nothing}
      <ol>
        ${rollouts.map((rollout) => this.renderRollout(rollout))}
      </ol>
      <div class="footer">
        ${this._loading
          ? html`<span class="muted" role="status">Loading…</span>`
          : this._end || this._paged.length === 0
            ? nothing
            : html`<button class="btn small" @click=${() => this.load(false)}>Load older rollouts</button>`}
      </div>`;
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
          <span class="muted when" title=${formatTimestamp(rollout.startedAt)}
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
        </div>
      </details>
    </li>`;
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

  private async load(fromStart: boolean): Promise<void> {
    if (!this.store) return;
    this._loading = true;
    this._error = null;
    try {
      const before = fromStart ? undefined : this._paged.at(-1)?.id;
      const page = await this.store.rollouts({ limit: PAGE, ...(before === undefined ? {} : { before }) });
      this._paged = fromStart ? page : [...this._paged, ...page];
      this._end = page.length < PAGE;
    } catch (err) {
      this._error = `Could not load the update history: ${err instanceof Error ? err.message : String(err)}`;
    } finally {
      this._loading = false;
    }
  }
}

customElements.define("nf-rollouts-panel", NfRolloutsPanel);

declare global {
  interface HTMLElementTagNameMap {
    "nf-rollouts-panel": NfRolloutsPanel;
  }
}
