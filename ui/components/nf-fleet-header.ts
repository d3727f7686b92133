import { LitElement, css, html, nothing } from "lit";
import { COMPARTMENT_NAMES, type CompartmentState, type MeResponse, type RepoState } from "../../common/protocol.ts";
import { COMPARTMENT_QUESTIONS, COMPARTMENT_TITLES, stateDisplay } from "../common/compartment-display.ts";
import { firstLine, shortSha } from "../common/format.ts";
import type { Summary } from "../data/fleet-state.ts";
import type { FleetStore } from "../data/store.ts";
import { sharedStyles, stateColours } from "../styles/shared.ts";
import { formatAge, localTimestamp, plural } from "../../common/text.ts";

const STATE_ORDER: readonly CompartmentState[] = ["red", "yellow", "blue", "gray", "green"];

/** The fleet at a glance: the commit hosts should run (read again from GitHub on request), and how many hosts show each colour. */
export class NfFleetHeader extends LitElement {
  static override properties = {
    repo: { attribute: false },
    summary: { attribute: false },
    hostCount: { type: Number },
    onlineCount: { type: Number },
    now: { type: Number },
    store: { attribute: false },
    me: { attribute: false },
  };
  declare repo: RepoState | null;
  declare summary: Summary | null;
  declare hostCount: number;
  declare onlineCount: number;
  declare now: number;
  /** For Refresh from GitHub. */
  declare store: FleetStore | null;
  declare me: MeResponse | null;

  constructor() {
    super();
    this.store = null;
    this.me = null;
    this.repo = null;
    this.summary = null;
    this.hostCount = 0;
    this.onlineCount = 0;
    this.now = Date.now();
  }

  static override styles = [
    sharedStyles,
    stateColours,
    css`
      :host {
        display: block;
      }
      .wrap {
        display: grid;
        grid-template-columns: minmax(16rem, 1.1fr) 2fr;
        gap: 1px;
        overflow: hidden;
        background: var(--nf-border);
      }
      .wrap > * {
        background: var(--nf-surface);
        padding: 0.9rem 1.1rem;
      }
      h2 {
        margin: 0 0 0.35rem;
        font-size: 0.75rem;
        font-weight: 600;
        letter-spacing: 0.04em;
        text-transform: uppercase;
        color: var(--nf-text-muted);
      }
      .target-line {
        display: flex;
        flex-wrap: wrap;
        align-items: baseline;
        gap: 0.2rem 0.5rem;
      }
      .sha {
        font-family: var(--nf-mono);
        font-weight: 600;
        font-size: 0.9375rem;
      }
      .message {
        display: block;
        margin-top: 0.25rem;
        overflow: hidden;
        text-overflow: ellipsis;
        white-space: nowrap;
      }
      .meta {
        margin-top: 0.25rem;
        font-size: 0.8125rem;
        color: var(--nf-text-muted);
      }
      .deploy {
        margin-top: 0.6rem;
      }
      .counts {
        display: grid;
        grid-template-columns: repeat(5, minmax(0, 1fr));
        gap: 0.75rem;
      }
      .compartment h3 {
        margin: 0 0 0.35rem;
        font-size: 0.8125rem;
        font-weight: 600;
      }
      .chips {
        display: flex;
        flex-wrap: wrap;
        gap: 0.25rem;
        margin: 0;
        padding: 0;
        list-style: none;
      }
      .chip {
        display: inline-flex;
        align-items: center;
        gap: 0.25rem;
        padding: 0.05rem 0.45rem;
        border-radius: 999px;
        background: var(--state-bg);
        color: var(--state-fg);
        font-size: 0.8125rem;
        font-weight: 600;
        font-variant-numeric: tabular-nums;
      }
      .none {
        font-size: 0.8125rem;
        color: var(--nf-text-muted);
      }
      @media (max-width: 900px) {
        .wrap {
          grid-template-columns: minmax(0, 1fr);
        }
      }
      @media (max-width: 520px) {
        .counts {
          grid-template-columns: repeat(3, minmax(0, 1fr));
        }
      }
    `,
  ];

  override updated(): void {
    // Refresh from GitHub is used now and then: it loads once there is a repository to read again, never
    // for the first paint (a control plane without GitHub, or one that has not read it yet, shows none).
    if (this.repo !== null && !customElements.get("nf-repo-refresh")) void import("./nf-repo-refresh.ts");
  }

  override render() {
    return html`<div class="wrap card">
      <section aria-labelledby="target-h">${this.renderTarget()}</section>
      <section aria-labelledby="counts-h">
        <h2 id="counts-h">${plural(this.hostCount, "host")} · ${this.onlineCount} online</h2>
        <div class="counts">${COMPARTMENT_NAMES.map((name) => this.renderCounts(name))}</div>
      </section>
    </div>`;
  }

  private renderTarget() {
    const repo = this.repo;
    const head = repo?.head ?? null;
    if (repo === null || head === null) {
      return html`<h2 id="target-h">Target commit</h2>
        <div class="muted">unknown — ${repo === null ? "the control plane has not read the repository yet" : `${repo.branch} not read yet`}</div>
        ${repo === null ? nothing : html`<nf-repo-refresh .store=${this.store} .me=${this.me}></nf-repo-refresh>`}`;
    }
    const commitUrl = `https://github.com/${repo.repository}/commit/${head.sha}`;
    return html`<h2 id="target-h">Target commit</h2>
      <div class="target-line">
        <span class="mono">${repo.branch} @</span>
        <a class="sha" href=${commitUrl} target="_blank" rel="noopener noreferrer" title=${head.sha}>${shortSha(head.sha)}</a>
      </div>
      <span class="message" title=${head.message}>${firstLine(head.message)}</span>
      <div class="meta">
        ${head.author} · <span title=${localTimestamp(head.committedAt)}>${formatAge(head.committedAt, this.now)}</span> ·
        ${repo.repository}
      </div>
      <button
        class="btn small primary deploy"
        id="deploy-main"
        title="Roll ${shortSha(head.sha)} out to the fleet, wave by wave"
        @click=${() => this.dispatchEvent(new CustomEvent("nf-deploy", { bubbles: true, composed: true }))}
      >
        Deploy ${repo.branch}…
      </button>
      <nf-repo-refresh .store=${this.store} .me=${this.me}></nf-repo-refresh>`;
  }

  private renderCounts(name: (typeof COMPARTMENT_NAMES)[number]) {
    const counts = this.summary?.[name];
    const states = STATE_ORDER.filter((state) => (counts?.[state] ?? 0) > 0);
    return html`<div class="compartment" title=${COMPARTMENT_QUESTIONS[name]}>
      <h3>${COMPARTMENT_TITLES[name]}</h3>
      ${states.length === 0
        ? html`<span class="none">—</span>`
        : html`<ul class="chips">
            ${states.map((state) => {
              const { icon, label } = stateDisplay(name, state);
              const count = counts?.[state] ?? 0;
              return html`<li class="chip state-${state}" title="${count} ${label}">
                <span aria-hidden="true">${icon}</span>${count}<span class="visually-hidden"> ${label}</span>
              </li>`;
            })}
          </ul>`}
      ${nothing}
    </div>`;
  }
}

customElements.define("nf-fleet-header", NfFleetHeader);

declare global {
  interface HTMLElementTagNameMap {
    "nf-fleet-header": NfFleetHeader;
  }
}
