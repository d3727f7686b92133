import { LitElement, css, html, nothing } from "lit";
import type { RolloutView } from "../../common/protocol.ts";
import { shortSha } from "../common/format.ts";
import { notify } from "../common/notify.ts";
import { HOST_STEPS, ROLLOUT_STATES, hostStepDuration, rolloutHeadline, waveLabel } from "../common/rollouts.ts";
import { hostPath } from "../common/route.ts";
import { rolloutInProgress } from "../data/fleet-state.ts";
import type { FleetStore } from "../data/store.ts";
import type { NfConfirmDialog } from "../dialogs/nf-confirm-dialog.ts";
import { confirmDialogIn } from "../common/confirm-dialog.ts";
import { sharedStyles } from "../styles/shared.ts";
import { formatAge, localTimestamp } from "../../common/text.ts";

/**
 * One rollout: the progress line, each wave and each host's step with its
 * log, the failure and the revert, and Cancel while it runs. The fleet page
 * shows the current one live; the update history shows every one with it.
 */
export class NfRolloutProgress extends LitElement {
  static override properties = {
    rollout: { attribute: false },
    store: { attribute: false },
    repository: {},
    now: { type: Number },
  };
  declare rollout: RolloutView | null;
  /** Without a store there is no Cancel (the history shows, the fleet page acts). */
  declare store: FleetStore | null;
  declare repository: string;
  declare now: number;
  /** Loaded on the first Cancel, not in the first paint. */
  private _confirm(): Promise<NfConfirmDialog> {
    return confirmDialogIn(this.renderRoot);
  }

  constructor() {
    super();
    this.rollout = null;
    this.store = null;
    this.repository = "";
    this.now = Date.now();
  }

  static override styles = [
    sharedStyles,
    css`
      :host {
        display: grid;
        gap: 0.6rem;
        overflow-wrap: anywhere;
      }
      .top {
        display: flex;
        flex-wrap: wrap;
        align-items: center;
        gap: 0.4rem 0.75rem;
      }
      .spacer {
        flex: 1;
      }
      .meta {
        font-size: 0.8125rem;
      }
      p {
        margin: 0;
        padding: 0.4rem 0.6rem;
        border-radius: var(--nf-radius-sm);
        font-size: 0.875rem;
      }
      ol,
      ul {
        margin: 0;
        padding: 0;
        list-style: none;
      }
      .waves {
        display: grid;
        gap: 0.6rem;
      }
      .wave {
        font-size: 0.8125rem;
        font-weight: 600;
      }
      .hosts {
        display: grid;
        grid-template-columns: repeat(auto-fill, minmax(min(17rem, 100%), 1fr));
        gap: 0.3rem 1rem;
        margin-top: 0.3rem;
      }
      .hosts li {
        display: flex;
        flex-wrap: wrap;
        align-items: baseline;
        gap: 0.2rem 0.5rem;
        font-size: 0.8125rem;
      }
      .hosts a:first-child {
        font-family: var(--nf-mono);
        font-weight: 600;
      }
    `,
  ];

  override render() {
    const r = this.rollout;
    if (r === null) return nothing;
    const state = ROLLOUT_STATES[r.state];
    // A rollout that succeeded with hosts pending can still be cancelled: their queued commands go.
    const cancellable = this.store !== null && (rolloutInProgress(r) || (r.state === "succeeded" && r.pending > 0));
    const commitUrl = this.repository ? `https://github.com/${this.repository}/commit/${r.commit}` : null;
    return html`<div class="top">
        <span class="pill tone-${state.tone}">${state.label}</span>
        <strong class="headline" role=${this.store ? "status" : nothing}>${rolloutHeadline(r)}</strong>
        <span class="spacer"></span>
        ${cancellable ? html`<button class="btn small" id="cancel-rollout" @click=${() => this.cancel(r)}>Cancel rollout</button>` : nothing}
      </div>
      <div class="meta muted">
        ${commitUrl ? html`<a class="mono" href=${commitUrl} target="_blank" rel="noopener noreferrer">${shortSha(r.commit)}</a>` : html`<span class="mono">${shortSha(r.commit)}</span>`}
        ${r.pr ? html` · PR #${r.pr}` : nothing} · ${r.automatic ? "automatic" : "started by"} ${r.startedBy} ·
        <span title=${localTimestamp(r.startedAt)}>${formatAge(r.startedAt, this.now)}</span>
        ${r.finishedAt ? html` · ended ${localTimestamp(r.finishedAt)}` : nothing}
      </div>
      ${r.failure
        ? html`<p class="tone-bad failure">
            ${r.failure.host} failed: ${r.failure.reason}
            ${r.failure.commandId ? html`· <a href=${hostPath(r.failure.host, r.failure.commandId)}>View log</a>` : nothing}
          </p>`
        : nothing}
      ${r.revert
        ? html`<p class="tone-${r.revert.state === "failed" ? "bad" : "warn"} revert">
            ${r.revert.kind === "revert-pr" ? "Revert PR" : "Revert commit"} ${r.revert.state}${r.revert.error ? `: ${r.revert.error}` : ""}
            ${r.revert.url ? html`· <a href=${r.revert.url} target="_blank" rel="noopener noreferrer">${r.revert.url}</a>` : nothing}
            ${r.revert.note ?? ""}
          </p>`
        : nothing}
      ${this.store && r.state === "failed" && r.finishedAt ? this.revertOffer(r) : nothing}
      <ol class="waves">
        ${r.waves.map(
          (wave) =>
            html`<li>
              <span class="wave">${waveLabel(wave)} · ${wave.state}${wave.soakUntil && wave.state === "soaking" ? ` until ${localTimestamp(wave.soakUntil)}` : ""}</span>
              <ul class="hosts">
                ${wave.hosts.map((host) => {
                  const step = HOST_STEPS[host.state];
                  const took = hostStepDuration(host, this.now);
                  return html`<li data-host=${host.name} data-step=${host.state}>
                    <a href=${hostPath(host.name)}>${host.name}</a><span class="pill tone-${step.tone}">${step.label}</span>${host.reason
                      ? html`<span class="muted">${host.reason}</span>`
                      : nothing}${took ? html`<span class="muted">${took}</span>` : nothing}${host.commandId
                      ? html`<a href=${hostPath(host.name, host.commandId)}>log</a>`
                      : nothing}
                  </li>`;
                })}
              </ul>
            </li>`,
        )}
      </ol>
      ${r.unchanged.length > 0
        ? html`<div class="meta muted unchanged">Unchanged (pulled, not switched): ${r.unchanged.map((name, i) => html`${i ? ", " : ""}<span class="mono">${name}</span>`)}</div>`
        : nothing}
      ${r.leftOut.length > 0
        ? html`<div class="meta muted">Left out: ${r.leftOut.map((host, i) => html`${i ? ", " : ""}<span class="mono">${host.name}</span> (${host.reason})`)}</div>`
        : nothing}
      ${cancellable ? html`<nf-confirm-dialog></nf-confirm-dialog>` : nothing}`;
  }

  /** Under a failed rollout, on the fleet page: spec 002's rollback options, whose element loads with the first such rollout. */
  private revertOffer(r: RolloutView) {
    void import("./nf-revert-offer.ts");
    return html`<nf-revert-offer .rollout=${r} .store=${this.store}></nf-revert-offer>`;
  }

  private async cancel(rollout: RolloutView): Promise<void> {
    const store = this.store;
    if (!store) return;
    const confirmed = await (await this._confirm()).ask({
      title: `Cancel the rollout of ${shortSha(rollout.commit)}?`,
      body: "Hosts not started yet are left out and queued commands are cancelled; commands already running finish. Nothing is reverted.",
      confirmLabel: "Cancel rollout",
      danger: true,
    });
    if (!confirmed) return;
    try {
      await store.cancelRollout(rollout.id);
    } catch (err) {
      notify(this, `Cancelling the rollout failed: ${err instanceof Error ? err.message : String(err)}`, "error");
    }
  }
}

customElements.define("nf-rollout-progress", NfRolloutProgress);

declare global {
  interface HTMLElementTagNameMap {
    "nf-rollout-progress": NfRolloutProgress;
  }
}
