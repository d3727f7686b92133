import { LitElement, css, html, nothing } from "lit";
import type { CommandView } from "../../common/protocol.ts";
import type { PrunedCommands } from "../data/schemas.ts";
import { COMMAND_LABELS, commandStateDisplay } from "../common/actions.ts";
import { commandDuration } from "../common/format.ts";
import { hostPath } from "../common/route.ts";
import { hostSectionStyles } from "../styles/host-section.ts";
import { sharedStyles } from "../styles/shared.ts";
import { formatAge, formatDuration, localTimestamp, plural } from "../../common/text.ts";

/**
 * A host's recent commands: what ran, how it ended, how long, who asked; each links to its output. When
 * the coordinator's history bounds pruned older ones, it says how many and where who asked for them is kept.
 */
export class NfCommandHistory extends LitElement {
  static override properties = {
    commands: { attribute: false },
    pruned: { attribute: false },
    host: {},
    selectedId: {},
    now: { type: Number },
  };
  declare commands: CommandView[];
  declare pruned: PrunedCommands | null | undefined;
  declare host: string;
  declare selectedId: string;
  declare now: number;

  constructor() {
    super();
    this.commands = [];
    this.pruned = null;
    this.host = "";
    this.selectedId = "";
    this.now = Date.now();
  }

  static override styles = [
    sharedStyles,
    hostSectionStyles,
    css`
      .scroller {
        overflow-x: auto;
      }
      table {
        width: 100%;
        border-collapse: collapse;
        font-size: 0.8125rem;
      }
      th,
      td {
        padding: 0.4rem 0.9rem 0.4rem 0;
        text-align: left;
        white-space: nowrap;
        border-bottom: 1px solid var(--nf-border);
      }
      th:first-child,
      td:first-child {
        padding-left: 0.9rem;
      }
      th {
        font-size: 0.75rem;
        font-weight: 600;
        color: var(--nf-text-muted);
      }
      tr[aria-current="true"] {
        background: var(--nf-accent-soft);
      }
      tr:last-child td {
        border-bottom: 0;
      }
      .kind {
        font-weight: 600;
      }
      .empty,
      .pruned {
        padding: 0.9rem;
        color: var(--nf-text-muted);
      }
    `,
  ];

  override render() {
    return html`<h2 id="history-h">History</h2>
      ${this.commands.length === 0
        ? html`<div class="empty">No commands yet.</div>`
        : html`<div class="scroller" role="region" aria-labelledby="history-h" tabindex="0">
            <table>
              <thead>
                <tr>
                  <th scope="col">Command</th>
                  <th scope="col">Outcome</th>
                  <th scope="col">Started</th>
                  <th scope="col">Duration</th>
                  <th scope="col">By</th>
                  <th scope="col"><span class="visually-hidden">Output</span></th>
                </tr>
              </thead>
              <tbody>
                ${this.commands.map((command) => this.renderRow(command))}
              </tbody>
            </table>
          </div>`}
      ${this.renderPruned()}`;
  }

  private renderPruned() {
    const pruned = this.pruned;
    if (!pruned) return nothing;
    return html`<p class="pruned">
      ${plural(pruned.count, "older command")} pruned to keep the coordinator's storage bounded, the newest of them from
      <span title=${localTimestamp(pruned.newestCreatedAt)}>${formatAge(pruned.newestCreatedAt, this.now)}</span>.
      The <a href="/audit">audit log</a> keeps who asked for each.
    </p>`;
  }

  private renderRow(command: CommandView) {
    const display = commandStateDisplay(command.state);
    const duration = commandDuration(command, this.now);
    const current = command.id === this.selectedId;
    const started = command.startedAt ?? command.createdAt;
    return html`<tr aria-current=${current ? "true" : "false"} data-command=${command.id}>
      <td class="kind">${COMMAND_LABELS[command.kind]}</td>
      <td>
        <span class="pill tone-${display.tone}" title=${command.error ?? ""}><span aria-hidden="true">${display.icon}</span>${display.label}</span>
        ${command.exitCode !== null && command.exitCode !== 0 ? html`<span class="muted">exit ${command.exitCode}</span>` : nothing}
      </td>
      <td title=${localTimestamp(started)}>${formatAge(started, this.now)}</td>
      <td>${duration === null ? "—" : formatDuration(duration)}</td>
      <td class="muted">${command.actor}</td>
      <td>
        ${current
          ? html`<span class="muted">shown</span>`
          : html`<a href=${hostPath(this.host, command.id)} aria-label="Output of ${COMMAND_LABELS[command.kind]} ${localTimestamp(command.createdAt)}">output</a>`}
      </td>
    </tr>`;
  }
}

customElements.define("nf-command-history", NfCommandHistory);

declare global {
  interface HTMLElementTagNameMap {
    "nf-command-history": NfCommandHistory;
  }
}
