import { LitElement, css, html, nothing } from "lit";
import { formatAge, localTimestamp } from "../../common/text.ts";
import { hostPath } from "../common/route.ts";
import type { AuditEntry } from "../data/schemas.ts";
import type { FleetStore } from "../data/store.ts";
import { PagedList } from "../components/paged-list.ts";
import { sharedStyles } from "../styles/shared.ts";

/** Who did what to which host, newest first. */
export class NfAuditPanel extends LitElement {
  static override properties = {
    store: { attribute: false },
    hostNames: { attribute: false },
    now: { type: Number },
  };
  declare store: FleetStore | null;
  /** Host names that still exist, so targets link only where there is a page. */
  declare hostNames: ReadonlySet<string>;
  declare now: number;
  private readonly _entries = new PagedList<AuditEntry>(this, {
    pageSize: 100,
    fetchPage: (page) => this.store?.audit(page) ?? null,
    what: "the audit log",
  });

  constructor() {
    super();
    this.store = null;
    this.hostNames = new Set();
    this.now = Date.now();
  }

  static override styles = [
    sharedStyles,
    css`
      :host {
        display: grid;
        grid-template-columns: minmax(0, 1fr);
        gap: 1rem;
      }
      .title-row {
        display: flex;
        flex-wrap: wrap;
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
      .scroller {
        overflow-x: auto;
      }
      table {
        width: 100%;
        border-collapse: collapse;
        font-size: 0.875rem;
      }
      th,
      td {
        padding: 0.45rem 0.9rem 0.45rem 0;
        text-align: left;
        vertical-align: top;
        border-bottom: 1px solid var(--nf-border);
      }
      th:first-child,
      td:first-child {
        padding-left: 0.9rem;
      }
      th {
        background: var(--nf-surface-2);
        font-size: 0.75rem;
        font-weight: 600;
        letter-spacing: 0.03em;
        text-transform: uppercase;
        color: var(--nf-text-muted);
      }
      td.when,
      td.action {
        white-space: nowrap;
      }
      .action {
        font-family: var(--nf-mono);
        font-size: 0.8125rem;
      }
      .details {
        font-family: var(--nf-mono);
        font-size: 0.75rem;
        color: var(--nf-text-muted);
        overflow-wrap: anywhere;
      }
      .refused {
        color: var(--nf-red);
      }
      .footer {
        display: flex;
        justify-content: center;
        padding: 0.75rem;
      }
      .problem {
        padding: 0.75rem 0.9rem;
        color: var(--nf-red);
      }
      .empty {
        padding: 1rem 0.9rem;
        color: var(--nf-text-muted);
      }
    `,
  ];

  override render() {
    const { items: entries, loading, error } = this._entries;
    return html`<div class="title-row">
        <h1 tabindex="-1">Audit log</h1>
        <span class="spacer"></span>
        <button class="btn small" ?disabled=${loading} @click=${() => this._entries.load(true)}>Refresh</button>
      </div>
      <div class="card">
        ${error ? html`<div class="problem" role="alert">${error}</div>` : nothing}
        ${entries.length === 0 && !loading && !error ? html`<div class="empty">Nothing recorded yet.</div>` : nothing}
        ${entries.length > 0
          ? html`<div class="scroller" role="region" aria-label="Audit entries" tabindex="0">
              <table>
                <thead>
                  <tr>
                    <th scope="col">When</th>
                    <th scope="col">Who</th>
                    <th scope="col">Action</th>
                    <th scope="col">Target</th>
                    <th scope="col">Result</th>
                    <th scope="col">Details</th>
                  </tr>
                </thead>
                <tbody>
                  ${entries.map((entry) => this.renderEntry(entry))}
                </tbody>
              </table>
            </div>`
          : nothing}
        <div class="footer">${this._entries.footer("Load older entries")}</div>
      </div>`;
  }

  private renderEntry(entry: AuditEntry) {
    const target = entry.target;
    return html`<tr>
      <td class="when" title=${localTimestamp(entry.at)}>${localTimestamp(entry.at)} <span class="muted">· ${formatAge(entry.at, this.now)}</span></td>
      <td>${entry.actor}${entry.role ? html` <span class="muted">· ${entry.role}</span>` : nothing}</td>
      <td class="action">${entry.action}</td>
      <td>${target === null ? "—" : this.hostNames.has(target) ? html`<a href=${hostPath(target)}>${target}</a>` : target}</td>
      <td class=${entry.result.startsWith("refused") ? "refused" : ""}>${entry.result}</td>
      <td class="details">${entry.details ? JSON.stringify(entry.details) : ""}</td>
    </tr>`;
  }
}

customElements.define("nf-audit-panel", NfAuditPanel);

declare global {
  interface HTMLElementTagNameMap {
    "nf-audit-panel": NfAuditPanel;
  }
}
