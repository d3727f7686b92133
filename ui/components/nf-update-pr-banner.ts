import { LitElement, css, html, nothing } from "lit";
import type { CiState, MeResponse, UpdatePr } from "../../common/protocol.ts";
import { lockDiffNote } from "../common/format.ts";
import { roleDenial, UPDATE_PR_ROLE } from "../../common/permissions.ts";
import { ciBlocker, ciNeedsOverride, ciReading } from "../common/rollouts.ts";
import { SETTINGS_PATH } from "../common/route.ts";
import { sharedStyles } from "../styles/shared.ts";
import { lockChangesStyles, lockChangesTable } from "./lock-changes.ts";
import type { FleetStore } from "../data/store.ts";
import { formatAge } from "../../common/text.ts";

const CI: Record<CiState | "not-required" | "missing", { icon: string; label: string; tone: string }> = {
  success: { icon: "✓", label: "CI passed", tone: "tone-good" },
  failure: { icon: "✕", label: "CI failed", tone: "tone-bad" },
  pending: { icon: "⟳", label: "CI running", tone: "tone-busy" },
  unknown: { icon: "?", label: "CI unknown", tone: "tone-muted" },
  "not-required": { icon: "–", label: "CI not required", tone: "tone-muted" },
  missing: { icon: "?", label: "No CI seen", tone: "tone-warn" },
};

/** The pending flake.lock update PR: what it changes, its CI, Merge and Merge & Deploy (the panel opens their confirmations). */
export class NfUpdatePrBanner extends LitElement {
  static override properties = {
    pr: { attribute: false },
    now: { type: Number },
    store: { attribute: false },
    me: { attribute: false },
  };
  declare pr: UpdatePr | null;
  /** The signed-in identity: a viewer sees the merges disabled, with why. */
  declare me: MeResponse | null;
  declare now: number;
  /** For Build on all hosts. */
  declare store: FleetStore | null;

  constructor() {
    super();
    this.pr = null;
    this.now = Date.now();
    this.store = null;
    this.me = null;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    // The fleet build's lines and the auto-merge timeline are loaded with the banner only: most page
    // loads have no update PR.
    void import("./nf-fleet-build-status.ts");
    void import("./nf-automation-timeline.ts");
  }

  static override styles = [
    sharedStyles,
    lockChangesStyles,
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
        overflow-wrap: anywhere;
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
    const reading = ciReading(pr, this.now);
    const ci = CI[reading];
    const blocker = ciNeedsOverride(pr) ? ciBlocker(pr.ciState) : null;
    const denied = roleDenial(this.me, UPDATE_PR_ROLE);
    return html`<section class="banner" aria-labelledby="pr-title" role="region">
      <div class="top">
        <span class="kicker">Update PR pending</span>
        <h2 id="pr-title"><a href=${pr.url} target="_blank" rel="noopener noreferrer">${pr.title}</a> <span class="muted">#${pr.number}</span></h2>
        <span class="pill ${ci.tone}" id="ci-state"><span aria-hidden="true">${ci.icon}</span>${ci.label}</span>
        <span class="muted opened">opened ${formatAge(pr.createdAt, this.now)}</span>
        <span class="spacer"></span>
        <a class="btn small" href=${pr.url} target="_blank" rel="noopener noreferrer">Review on GitHub ↗</a>
        <button
          class="btn small"
          id="merge-only"
          ?disabled=${denied !== null}
          title=${denied ?? "Merge on GitHub without rolling out: the hosts then read behind main"}
          @click=${() => this.dispatchEvent(new CustomEvent("nf-merge-only", { detail: pr, bubbles: true, composed: true }))}
        >
          Merge…
        </button>
        <button
          class="btn small primary"
          id="merge-deploy"
          ?disabled=${denied !== null}
          title=${denied ?? (blocker ? `${blocker}: merging asks for an override with a reason` : "Merge on GitHub, then roll the merge commit out")}
          @click=${() => this.dispatchEvent(new CustomEvent("nf-merge-deploy", { detail: pr, bubbles: true, composed: true }))}
        >
          Merge &amp; Deploy…
        </button>
      </div>
      ${pr.automation ? html`<nf-automation-timeline .pr=${pr}></nf-automation-timeline>` : nothing}
      ${this.renderChanges(pr)}
      <nf-fleet-build-status .pr=${pr} .store=${this.store} .now=${this.now}></nf-fleet-build-status>
      ${reading === "missing"
        ? html`<div class="later" id="ci-missing" role="note">
            No CI check or status has reported on this head in the expected time, and green CI is required: the update is not merged without it. If this
            repository has no CI, turn off <a href=${`${SETTINGS_PATH}#s-automation`}>Require green CI</a> in Settings.
          </div>`
        : nothing}
      ${blocker ? html`<div class="later">${blocker}: Merge &amp; Deploy asks for an override with a reason.</div>` : nothing}
    </section>`;
  }

  private renderChanges(pr: UpdatePr) {
    const note = lockDiffNote(pr);
    return note === null ? lockChangesTable(pr.lockChanges) : html`<p class="muted later">${note}</p>`;
  }
}

customElements.define("nf-update-pr-banner", NfUpdatePrBanner);

declare global {
  interface HTMLElementTagNameMap {
    "nf-update-pr-banner": NfUpdatePrBanner;
  }
}
