/**
 * The table of an update's flake.lock changes (per input old → new, dates,
 * commits, compare link): the update-PR banner, the deploy confirmation and
 * the update history show the same one.
 */
import { css, html, nothing } from "lit";
import type { LockChange, LockedRef } from "../../common/protocol.ts";
import { plural, utcDay } from "../../common/text.ts";

const shortRev = (ref: LockedRef | null): string => (ref?.rev ? ref.rev.slice(0, 7) : ref?.narHash ? ref.narHash.slice(7, 14) : "—");

export const lockChangesStyles = css`
  .changes {
    overflow-x: auto;
  }
  .changes table {
    border-collapse: collapse;
    font-size: 0.8125rem;
  }
  .changes th,
  .changes td {
    padding: 0.15rem 0.9rem 0.15rem 0;
    text-align: left;
    white-space: nowrap;
  }
  .changes th {
    font-weight: 600;
    color: var(--nf-text-muted);
    font-size: 0.75rem;
  }
  .changes .input {
    font-family: var(--nf-mono);
    font-weight: 600;
  }
  .arrow {
    color: var(--nf-text-muted);
    padding: 0 0.25rem;
  }
  @media (max-width: 600px) {
    .changes td.dates {
      white-space: normal;
    }
  }
`;

export function lockChangesTable(changes: readonly LockChange[]) {
  return html`<div class="changes" role="region" aria-label="flake.lock changes" tabindex="0">
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
        ${changes.map(lockChangeRow)}
      </tbody>
    </table>
  </div>`;
}

const arrow = html`<span class="arrow" aria-label="to">→</span>`;

function lockChangeRow(change: LockChange) {
  const revs =
    change.kind === "added"
      ? html`<span class="muted">added</span> <span class="mono">${shortRev(change.new)}</span>`
      : change.kind === "removed"
        ? html`<span class="mono">${shortRev(change.old)}</span> <span class="muted">removed</span>`
        : html`<span class="mono">${shortRev(change.old)}</span>${arrow}<span class="mono">${shortRev(change.new)}</span>`;
  const dates =
    change.kind === "updated"
      ? html`${utcDay(change.old?.lastModified)}${arrow}${utcDay(change.new?.lastModified)}`
      : utcDay((change.new ?? change.old)?.lastModified);
  const commits = change.commits === null ? "" : plural(change.commits, "commit");
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
