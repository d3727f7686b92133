import { LitElement, css, html, nothing } from "lit";
import type { CiState, LockChange, LockedRef, UpdatePr } from "../../common/protocol.ts";
import { formatAge, formatDay, lockDiffNote } from "../common/format.ts";
import { sharedStyles } from "../styles/shared.ts";

const CI: Record<CiState, { icon: string; label: string; tone: string }> = {
  success: { icon: "✓", label: "CI passed", tone: "tone-good" },
  failure: { icon: "✕", label: "CI failed", tone: "tone-bad" },
  pending: { icon: "⟳", label: "CI running", tone: "tone-busy" },
  unknown: { icon: "?", label: "CI unknown", tone: "tone-muted" },
};

const shortRev = (ref: LockedRef | null): string => (ref?.rev ? ref.rev.slice(0, 7) : ref?.narHash ? ref.narHash.slice(7, 14) : "—");

/** The pending flake.lock update PR: what it changes, its CI, and where to merge it. */
export class NfUpdatePrBanner extends LitElement {
  static override properties = {
    pr: { attribute: false },
    now: { type: Number },
  };
  declare pr: UpdatePr | null;
  declare now: number;

  constructor() {
    super();
    this.pr = null;
    this.now = Date.now();
  }

  static override styles = [
    sharedStyles,
    css`
      :host {
        display: block;
      }
      .banner {
        display: grid;
        gap: 0.6rem;
        padding: 0.9rem 1.1rem;
        border: 1px solid color-mix(in srgb, var(--nf-yellow) 50%, var(--nf-border));
        border-left: 4px solid var(--nf-yellow);
        border-radius: var(--nf-radius);
        background: linear-gradient(90deg, var(--nf-yellow-bg), var(--nf-surface) 70%);
      }
      .top {
        display: flex;
        flex-wrap: wrap;
        align-items: center;
        gap: 0.5rem 0.75rem;
      }
      h2 {
        margin: 0;
        font-size: 1rem;
      }
      .kicker {
        font-size: 0.75rem;
        font-weight: 600;
        letter-spacing: 0.04em;
        text-transform: uppercase;
        color: var(--nf-yellow);
      }
      .spacer {
        flex: 1;
      }
      table {
        border-collapse: collapse;
        font-size: 0.8125rem;
      }
      th,
      td {
        padding: 0.15rem 0.9rem 0.15rem 0;
        text-align: left;
        white-space: nowrap;
      }
      th {
        font-weight: 600;
        color: var(--nf-text-muted);
        font-size: 0.75rem;
      }
      .input {
        font-family: var(--nf-mono);
        font-weight: 600;
      }
      .arrow {
        color: var(--nf-text-muted);
        padding: 0 0.25rem;
      }
      .changes {
        overflow-x: auto;
      }
      .day {
        white-space: nowrap;
      }
      @media (max-width: 600px) {
        td.dates {
          white-space: normal;
        }
      }
      .opened {
        font-size: 0.8125rem;
      }
      .later {
        margin: 0;
        font-size: 0.8125rem;
        color: var(--nf-text-muted);
      }
    `,
  ];

  override render() {
    const pr = this.pr;
    if (pr === null) return nothing;
    const ci = CI[pr.ciState];
    return html`<section class="banner" aria-labelledby="pr-title" role="region">
      <div class="top">
        <span class="kicker">Update PR pending</span>
        <h2 id="pr-title"><a href=${pr.url} target="_blank" rel="noopener noreferrer">${pr.title}</a> <span class="muted">#${pr.number}</span></h2>
        <span class="pill ${ci.tone}"><span aria-hidden="true">${ci.icon}</span>${ci.label}</span>
        <span class="muted opened">opened ${formatAge(pr.createdAt, this.now)}</span>
        <span class="spacer"></span>
        <a class="btn small" href=${pr.url} target="_blank" rel="noopener noreferrer">Review on GitHub ↗</a>
      </div>
      ${this.renderChanges(pr)}
      <div class="later">Merge it on GitHub, then Pull + Switch the hosts. (Merge &amp; Deploy from here comes later.)</div>
    </section>`;
  }

  private renderChanges(pr: UpdatePr) {
    const note = lockDiffNote(pr);
    if (note !== null) return html`<p class="muted later">${note}</p>`;
    return html`<div class="changes">
      <table>
        <thead>
          <tr>
            <th scope="col">Input</th>
            <th scope="col">Revision</th>
            <th scope="col">Date</th>
            <th scope="col"><span class="visually-hidden">Details</span></th>
          </tr>
        </thead>
        <tbody>
          ${pr.lockChanges.map((change) => this.renderChange(change))}
        </tbody>
      </table>
    </div>`;
  }

  private renderChange(change: LockChange) {
    const revs =
      change.kind === "added"
        ? html`<span class="muted">added</span> <span class="mono">${shortRev(change.new)}</span>`
        : change.kind === "removed"
          ? html`<span class="mono">${shortRev(change.old)}</span> <span class="muted">removed</span>`
          : html`<span class="mono">${shortRev(change.old)}</span><span class="arrow" aria-label="to">→</span><span class="mono"
                >${shortRev(change.new)}</span
              >`;
    const dates =
      change.kind === "updated"
        ? html`<span class="day">${formatDay(change.old?.lastModified)}</span><span class="arrow" aria-label="to">→</span><span class="day"
              >${formatDay(change.new?.lastModified)}</span
            >`
        : formatDay((change.new ?? change.old)?.lastModified);
    const commits = change.commits === null ? "" : `${change.commits} commit${change.commits === 1 ? "" : "s"}`;
    return html`<tr>
      <td class="input">${change.input}</td>
      <td>${revs}</td>
      <td class="dates">${dates}</td>
      <td>
        ${commits ? html`<span class="muted">${commits}</span>` : nothing}
        ${change.compareUrl ? html`<a href=${change.compareUrl} target="_blank" rel="noopener noreferrer">compare</a>` : nothing}
      </td>
    </tr>`;
  }
}

customElements.define("nf-update-pr-banner", NfUpdatePrBanner);

declare global {
  interface HTMLElementTagNameMap {
    "nf-update-pr-banner": NfUpdatePrBanner;
  }
}
