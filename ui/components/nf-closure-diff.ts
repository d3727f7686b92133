import { LitElement, css, html, nothing } from "lit";
import type { ClosureDiff } from "../../common/protocol.ts";
import { formatVersions } from "../../common/closure-diff.ts";
import { formatSizeDelta } from "../common/format.ts";
import { sharedStyles } from "../styles/shared.ts";
import { plural } from "../../common/text.ts";

/**
 * The whole `nix store diff-closures` of an update's build (or of main's
 * system, once built on the host) against the running system, behind a
 * disclosure: every package whose version or size changes. The host page
 * loads it only when there is a diff to show.
 */
export class NfClosureDiff extends LitElement {
  static override properties = {
    diff: { attribute: false },
    afterLabel: { attribute: false },
  };
  declare diff: ClosureDiff | null;
  /** The heading of the column of the new versions: what the diff leads to. */
  declare afterLabel: string;

  constructor() {
    super();
    this.diff = null;
    this.afterLabel = "After the update";
  }

  static override styles = [
    sharedStyles,
    css`
      :host {
        display: block;
        font-size: 0.8125rem;
      }
      summary {
        cursor: pointer;
      }
      .scroll {
        max-height: 24rem;
        overflow: auto;
        margin-top: 0.4rem;
      }
      table {
        width: 100%;
        border-collapse: collapse;
      }
      th,
      td {
        padding: 0.2rem 0.5rem;
        border-bottom: 1px solid var(--nf-border);
        text-align: left;
        vertical-align: top;
      }
      td.size,
      th.size {
        text-align: right;
        white-space: nowrap;
      }
    `,
  ];

  override render() {
    const diff = this.diff;
    if (diff === null) return nothing;
    const count = diff.entries.length + diff.omitted;
    return html`<details>
      <summary>Full closure diff: ${plural(count, "package")}, ${formatSizeDelta(diff.totalSizeDelta)} in all</summary>
      <div class="scroll" role="region" aria-label="Closure diff" tabindex="0">
        <table>
          <thead>
            <tr><th>Package</th><th>Running</th><th>${this.afterLabel}</th><th class="size">Size</th></tr>
          </thead>
          <tbody>
            ${diff.entries.map(
              (entry) =>
                html`<tr data-package=${entry.name}>
                  <td class="mono">${entry.name}</td>
                  <td class="mono">${formatVersions(entry.old)}</td>
                  <td class="mono">${formatVersions(entry.new)}</td>
                  <td class="size">${entry.sizeDelta === 0 ? "" : formatSizeDelta(entry.sizeDelta)}</td>
                </tr>`,
            )}
          </tbody>
        </table>
        ${diff.omitted > 0 ? html`<p class="muted">${diff.omitted} more not listed (the diff is bounded).</p>` : nothing}
      </div>
    </details>`;
  }
}

customElements.define("nf-closure-diff", NfClosureDiff);

declare global {
  interface HTMLElementTagNameMap {
    "nf-closure-diff": NfClosureDiff;
  }
}
