import { LitElement, css, html, nothing } from "lit";
import type { UpdatePr } from "../../common/protocol.ts";
import { automationDisplay } from "../common/automation.ts";
import { notify } from "../common/notify.ts";
import { sharedStyles } from "../styles/shared.ts";

export type AutomationAction = "merge-now" | "skip";

export interface AutomationActionDetail {
  pr: number;
  action: AutomationAction;
  /** Called with the outcome's message (null when it worked), so the buttons come back. */
  done: (error: string | null) => void;
}

/**
 * What the automation will do with the update PR: "CI passed 13:05 · auto-merge at 14:05 (in 42 min)"
 * with a live countdown, the reason when it will not merge, and Merge now / Skip this PR. The buttons
 * ask the page (an `nf-update-pr-automation` event): the store lives there.
 */
export class NfAutomationTimeline extends LitElement {
  static override properties = {
    pr: { attribute: false },
    _now: { state: true },
    _busy: { state: true },
  };
  declare pr: UpdatePr | null;
  declare _now: number;
  declare _busy: boolean;
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor() {
    super();
    this.pr = null;
    this._now = Date.now();
    this._busy = false;
  }

  static override styles = [
    sharedStyles,
    css`
      :host {
        display: flex;
        flex-wrap: wrap;
        align-items: center;
        gap: 0.4rem 0.6rem;
        font-size: 0.8125rem;
      }
      .spacer {
        flex: 1;
      }
      details {
        flex-basis: 100%;
      }
      /* The line is a sentence: on a phone it wraps like one. */
      .pill {
        white-space: normal;
      }
      ol {
        margin: 0.25rem 0 0;
        padding-left: 1.2rem;
      }
    `,
  ];

  override connectedCallback(): void {
    super.connectedCallback();
    // One tick a second for the countdown; nothing else re-renders with it.
    this.timer = setInterval(() => {
      if (this.pr?.automation?.state === "scheduled") this._now = Date.now();
    }, 1000);
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  override render() {
    const automation = this.pr?.automation;
    if (!this.pr || !automation) return nothing;
    const d = automationDisplay(automation, this.pr.ciState === "success", this._now);
    const tone = { good: "tone-good", busy: "tone-busy", bad: "tone-bad", muted: "tone-muted" }[d.tone];
    return html`<span class="pill ${tone}" data-testid="automation-line">${d.line}</span>
      <span class="spacer"></span>
      ${d.canMergeNow
        ? html`<button class="btn small" id="merge-now" ?disabled=${this._busy} title="Merge now, without waiting for the delay, and deploy as the automation would" @click=${() => this.act("merge-now")}>Merge now</button>`
        : nothing}
      ${d.canSkip
        ? html`<button class="btn small" id="skip-pr" ?disabled=${this._busy} title="Leave this commit alone; a new commit on the PR is considered again" @click=${() => this.act("skip")}>Skip this PR</button>`
        : nothing}
      ${automation.timeline.length > 0
        ? html`<details>
            <summary class="muted">Timeline</summary>
            <ol>${automation.timeline.map((t) => html`<li><time datetime=${t.at}>${new Date(t.at).toLocaleTimeString()}</time> ${t.text}</li>`)}</ol>
          </details>`
        : nothing}`;
  }

  private act(action: AutomationAction): void {
    const pr = this.pr;
    if (pr === null) return;
    this._busy = true;
    const done = (error: string | null) => {
      this._busy = false;
      notify(this, error ?? (action === "merge-now" ? `Merging #${pr.number}` : `Skipped #${pr.number}`), error === null ? "info" : "error");
    };
    this.dispatchEvent(new CustomEvent<AutomationActionDetail>("nf-update-pr-automation", { detail: { pr: pr.number, action, done }, bubbles: true, composed: true }));
  }
}

customElements.define("nf-automation-timeline", NfAutomationTimeline);

declare global {
  interface HTMLElementTagNameMap {
    "nf-automation-timeline": NfAutomationTimeline;
  }
  interface HTMLElementEventMap {
    "nf-update-pr-automation": CustomEvent<AutomationActionDetail>;
  }
}
