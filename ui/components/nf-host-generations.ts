import { LitElement, css, html, nothing } from "lit";
import type { Generation, Report } from "../../common/protocol.ts";
import { hostSectionStyles } from "../styles/host-section.ts";
import { sharedStyles } from "../styles/shared.ts";
import { formatAge, localTimestamp, storePathName } from "../../common/text.ts";

/**
 * The host's system generations from its last report, newest first, each with a "Roll back to this"
 * that asks the host page to send `rollback` with that generation (docs/hosts.md "Generations and
 * garbage collection"). The host page loads it on first use: the fleet's first paint does without.
 */
export class NfHostGenerations extends LitElement {
  static override properties = {
    generations: { attribute: false },
    /** Why the actions are off (a viewer, say); empty when they are on. */
    deniedReason: {},
    now: { type: Number },
  };
  declare generations: Report["generations"] | null;
  declare deniedReason: string;
  declare now: number;

  constructor() {
    super();
    this.generations = null;
    this.deniedReason = "";
    this.now = Date.now();
  }

  static override styles = [
    sharedStyles,
    hostSectionStyles,
    css`
      .scroll {
        overflow-x: auto;
      }
      table {
        width: 100%;
        border-collapse: collapse;
        font-size: 0.875rem;
      }
      th,
      td {
        text-align: left;
        padding: 0.35rem 0.9rem;
        border-bottom: 1px solid var(--nf-border);
        vertical-align: baseline;
      }
      th {
        color: var(--nf-text-muted);
        font-weight: 500;
      }
      .none {
        padding: 0.8rem 0.9rem;
        color: var(--nf-text-muted);
        font-style: italic;
      }
    `,
  ];

  override render() {
    const known = this.generations ?? null;
    return html`<h2 id="generations-title">Generations</h2>
      ${known === null
        ? html`<p class="none">The agent does not report generations.</p>`
        : known.value === null
          ? html`<p class="none">Not known: ${known.reason ?? "the agent did not say why"}</p>`
          : known.value.length === 0
            ? html`<p class="none">The profile has no generations.</p>`
            : html`<div class="scroll">
                <table aria-labelledby="generations-title">
                  <thead>
                    <tr><th scope="col">#</th><th scope="col">Created</th><th scope="col">System</th><th scope="col">Label</th><th scope="col">State</th><th scope="col"><span class="visually-hidden">Action</span></th></tr>
                  </thead>
                  <tbody>
                    ${[...known.value].reverse().map((generation) => this.renderRow(generation))}
                  </tbody>
                </table>
              </div>`}`;
  }

  private renderRow(generation: Generation) {
    const marks = [generation.current ? "current" : null, generation.booted ? "booted" : null].filter((mark) => mark !== null);
    return html`<tr data-generation=${generation.number}>
      <td>${generation.number}</td>
      <td title=${localTimestamp(generation.createdAt)}>${formatAge(generation.createdAt, this.now)}</td>
      <td><code title=${generation.storePath}>${storePathName(generation.storePath)}</code></td>
      <td>${generation.label ?? html`<span class="muted">—</span>`}</td>
      <td>${marks.map((mark) => html`<span class="pill tone-${mark === "current" ? "good" : "muted"}">${mark}</span> `)}</td>
      <td>
        ${generation.current
          ? nothing
          : html`<button
              class="btn small"
              ?disabled=${this.deniedReason !== ""}
              title=${this.deniedReason || `activate generation ${generation.number} again`}
              @click=${() => this.dispatchEvent(new CustomEvent("nf-rollback-generation", { detail: { generation: generation.number }, bubbles: true, composed: true }))}
            >
              Roll back to this
            </button>`}
      </td>
    </tr>`;
  }
}

customElements.define("nf-host-generations", NfHostGenerations);

declare global {
  interface HTMLElementTagNameMap {
    "nf-host-generations": NfHostGenerations;
  }
}
