import { LitElement, css, html, nothing } from "lit";
import { ActivationMode, type FleetBuildView, type RolloutPlanView, type UpdatePr } from "../../common/protocol.ts";
import { buildMark, currentBuild, failedBuildHosts, hostBuild } from "../common/fleet-build.ts";
import { lockDiffNote, shortSha } from "../common/format.ts";
import { notify } from "../common/notify.ts";
import { roleDenial } from "../../common/permissions.ts";
import { chosenHosts, ciBlocker, ciNeedsOverride, hostChoices, rolloutHeadline, waveLabel, type HostChoice } from "../common/rollouts.ts";
import { ApiError } from "../data/api.ts";
import { rolloutInProgress } from "../data/fleet-state.ts";
import type { FleetStore } from "../data/store.ts";
import { lockChangesStyles, lockChangesTable } from "../components/lock-changes.ts";
import { dialogStyles } from "../styles/dialog.ts";
import { sharedStyles } from "../styles/shared.ts";
import { plural } from "../../common/text.ts";
import { ModalDialog } from "../common/modal-dialog.ts";

/**
 * The confirmation before a rollout: Merge & Deploy of an update PR, or
 * Deploy of the branch head to chosen hosts. It shows the server's plan (the
 * waves, canary first, and who is left out and why) before anything is sent.
 */
export class NfDeployDialog extends LitElement {
  static override properties = {
    store: { attribute: false },
    _pr: { state: true },
    _open: { state: true },
    _plan: { state: true },
    _choices: { state: true },
    _ticked: { state: true },
    _override: { state: true },
    _needsOverride: { state: true },
    _ignoreWindows: { state: true },
    _activation: { state: true },
    _fleetOverride: { state: true },
    _busy: { state: true },
    _error: { state: true },
  };
  declare store: FleetStore | null;
  /** Merge & Deploy of this PR; null: Deploy the branch head. */
  private declare _pr: UpdatePr | null;
  private declare _open: boolean;
  private declare _plan: RolloutPlanView | null;
  /** Every host, the plan's ticked (for Merge & Deploy, hosts whose build failed too: leaving them out is the person's choice). */
  private declare _choices: HostChoice[];
  private declare _ticked: ReadonlySet<string>;
  private declare _override: string;
  private declare _needsOverride: boolean;
  private declare _ignoreWindows: boolean;
  /** The rollout's activation mode; "" leaves each host's own. */
  private declare _activation: ActivationMode | "";
  /** An admin's reason to merge although the fleet build failed on a ticked host (which is then deployed to as well). */
  private declare _fleetOverride: string;
  private declare _busy: boolean;
  private declare _error: string | null;
  /** Answers to an older plan request are dropped. */
  private _planSeq = 0;
  private readonly _modal = new ModalDialog(this, () => (this._open = false));

  constructor() {
    super();
    this.store = null;
    this._pr = null;
    this._open = false;
    this._plan = null;
    this._choices = [];
    this._ticked = new Set();
    this._override = "";
    this._needsOverride = false;
    this._ignoreWindows = false;
    this._activation = "";
    this._fleetOverride = "";
    this._busy = false;
    this._error = null;
  }

  static override styles = [
    sharedStyles,
    dialogStyles,
    lockChangesStyles,
    css`
      h3 {
        margin: 0 0 0.35rem;
        font-size: 0.875rem;
      }
      ol,
      .left-out {
        display: grid;
        gap: 0.4rem;
        margin: 0;
        padding: 0;
        list-style: none;
      }
      ol li {
        display: flex;
        flex-wrap: wrap;
        align-items: center;
        gap: 0.4rem 0.6rem;
      }
      p.tone-warn {
        padding: 0.4rem 0.6rem;
        border-radius: var(--nf-radius-sm);
      }
      ol strong {
        font-size: 0.875rem;
      }
      fieldset {
        display: grid;
        gap: 0.2rem;
        max-height: 14rem;
        overflow-y: auto;
        margin: 0;
        padding: 0.5rem 0.75rem;
        border: 1px solid var(--nf-border);
        border-radius: var(--nf-radius-sm);
      }
      .check {
        display: flex;
        gap: 0.5rem;
        align-items: baseline;
        font-weight: 400;
      }
      .check input {
        min-height: 0;
      }
    `,
  ];

  /** Opens the confirmation: for `pr`, Merge & Deploy; without, Deploy of the branch head. */
  async show(pr: UpdatePr | null): Promise<void> {
    this._pr = pr;
    this._plan = null;
    this._choices = [];
    this._ticked = new Set();
    this._override = "";
    this._needsOverride = pr !== null && ciNeedsOverride(pr);
    this._ignoreWindows = false;
    this._activation = "";
    this._fleetOverride = "";
    this._error = null;
    this._open = true;
    await this._modal.open();
    void this.plan(true);
  }

  override render() {
    const pr = this._pr;
    const plan = this._plan;
    const running = this.store?.state.rollouts.find(rolloutInProgress);
    // The plan's copy is as new as the plan; before it, the banner's.
    const build = pr ? (plan?.fleetBuild ?? currentBuild(pr)) : null;
    const failedTicked = this.failedTicked();
    const blocker = pr ? ciBlocker(pr.ciState) : null;
    const reasonOk = (!this._needsOverride || this._override.trim().length >= 3) && (failedTicked.length === 0 || this._fleetOverride.trim().length >= 3);
    const ready = plan !== null && !this._busy && reasonOk && (pr === null ? this._ticked.size > 0 : this._choices.length === 0 || this._ticked.size > 0);
    const overriding = [this._needsOverride ? "CI" : null, failedTicked.length > 0 ? "the fleet build" : null].filter((what) => what !== null);
    const label = pr ? (overriding.length > 0 ? `Override ${overriding.join(" and ")}, merge & deploy` : "Merge & Deploy") : `Deploy ${plural(this._ticked.size, "host")}`;
    return html`<dialog class="wide" aria-labelledby="title">
      ${!this._open
        ? nothing
        : html`<form class="dialog-body" @submit=${this.onSubmit}>
            <h2 id="title">${pr ? html`Merge &amp; Deploy #${pr.number}?` : `Deploy ${this.store?.state.repo?.branch ?? "the branch head"}?`}</h2>
            <p>
              ${pr
                ? html`Merges <a href=${pr.url} target="_blank" rel="noopener noreferrer">${pr.title}</a> on GitHub, then rolls the merge commit out to the ticked hosts; the
                    others stay behind main.`
                : html`Rolls ${plan ? html`<span class="mono">${shortSha(plan.commit)}</span>` : "the head of the branch"} out to the ticked hosts.`}
              Wave by wave; a failing host stops the rollout.
            </p>
            ${pr ? (lockDiffNote(pr) === null ? lockChangesTable(pr.lockChanges) : html`<p class="muted">${lockDiffNote(pr)}</p>`) : nothing}
            ${this._choices.length > 0 ? this.renderChoices() : nothing}
            ${build ? html`<p class="build-verdict">Fleet build of the PR head: ${build.description}</p>` : nothing}
            ${plan === null ? html`<p class="muted" role="status">Planning…</p>` : this.renderPlan(plan, build)}
            ${running
              ? html`<p class="tone-warn" role="note">
                  Supersedes the running rollout (${rolloutHeadline(running)}): its hosts not started yet are cancelled.
                </p>`
              : nothing}
            <label class="check"
              ><input type="checkbox" .checked=${this._ignoreWindows} @change=${(e: Event) => (this._ignoreWindows = (e.target as HTMLInputElement).checked)} />
              Ignore maintenance windows (hosts start outside their windows too)</label
            >
            <label
              >Activation
              <span class="field-hint">How the hosts activate the new system (docs/hosts.md, "Activation modes and reboots").</span>
              <select id="activation" @change=${(e: Event) => (this._activation = (e.target as HTMLSelectElement).value as ActivationMode | "")}>
                <option value="" ?selected=${this._activation === ""}>each host's own mode</option>
                ${ActivationMode.options.map((mode) => html`<option value=${mode} ?selected=${this._activation === mode}>${mode}</option>`)}
              </select></label
            >
            ${failedTicked.length > 0 ? this.renderFleetBuildOverride(failedTicked) : nothing}
            ${this._needsOverride
              ? html`<label
                  >Override CI with a reason
                  <span class="field-hint">${blocker ?? "GitHub says CI is not green"}. The reason is kept in the audit log.</span>
                  <input
                    id="override"
                    required
                    minlength="3"
                    maxlength="500"
                    .value=${this._override}
                    @input=${(e: Event) => (this._override = (e.target as HTMLInputElement).value)}
                /></label>`
              : nothing}
            ${this._error ? html`<div class="form-error" role="alert">${this._error}</div>` : nothing}
            <div class="actions">
              <button type="button" class="btn" @click=${() => this._modal.close()}>Cancel</button>
              <button id="deploy" class="btn ${overriding.length > 0 ? "danger" : "primary"}" ?disabled=${!ready}>
                ${this._busy ? "Starting…" : label}
              </button>
            </div>
          </form>`}
    </dialog>`;
  }

  private renderChoices() {
    return html`<fieldset>
      <legend>Hosts</legend>
      ${this._choices.map(
        (choice) =>
          html`<label class="check"
            ><input type="checkbox" .checked=${this._ticked.has(choice.name)} @change=${(e: Event) => this.tick(choice.name, (e.target as HTMLInputElement).checked)} /><span
              class="mono"
              >${choice.name}</span
            >${choice.leftOut ? html`<span class="muted">${choice.leftOut}</span>` : nothing}</label
          >`,
      )}
    </fieldset>`;
  }

  /** The host's name and, for an update PR, whether the update built there and how much it changes. */
  private hostWithBuild(name: string, build: FleetBuildView | null) {
    const mark = buildMark(hostBuild(build, name));
    return html`<span class="mono">${name}</span>${mark ? html` <span class="pill tone-${mark.tone}" data-build=${name}>${mark.text}</span>` : nothing}`;
  }

  private renderPlan(plan: RolloutPlanView, build: FleetBuildView | null) {
    return html`<div>
        <h3>Waves</h3>
        ${plan.waves.length === 0
          ? html`<p class="muted">No host to deploy.</p>`
          : html`<ol aria-label="Waves">
              ${plan.waves.map(
                (wave) =>
                  html`<li>
                    <strong>${waveLabel(wave)}</strong>
                    <ul class="host-list">
                      ${wave.hosts.map((host) => html`<li>${build ? this.hostWithBuild(host, build) : host}</li>`)}
                    </ul>
                  </li>`,
              )}
            </ol>`}
      </div>
      ${plan.unchanged.length === 0
        ? nothing
        : html`<div>
            <h3>Unchanged</h3>
            <p class="muted">This commit does not change their system: their clone is pulled, nothing is switched.</p>
            <ul class="unchanged" aria-label="Unchanged">
              ${plan.unchanged.map((host) => html`<li><span class="mono">${host}</span></li>`)}
            </ul>
          </div>`}
      ${plan.leftOut.length === 0
        ? nothing
        : html`<div>
            <h3>Left out</h3>
            <ul class="left-out" aria-label="Left out">
              ${plan.leftOut.map((host) => html`<li>${this.hostWithBuild(host.name, build)} — <span class="muted">${host.reason}</span></li>`)}
            </ul>
          </div>`}`;
  }

  /** A ticked host whose build of the PR head failed needs an admin's reason; unticking it is the other way. */
  private renderFleetBuildOverride(failed: string[]) {
    const denied = roleDenial(this.store?.state.me ?? null, "admin");
    return html`<p class="tone-warn" role="note" id="fleet-build-failed">
        The fleet build failed on ${failed.join(", ")}: untick ${failed.length === 1 ? "it" : "them"} to leave ${failed.length === 1 ? "it" : "them"} behind main on purpose (the
        update history says so), or override with a reason to merge and deploy to ${failed.length === 1 ? "it" : "them"} as well.
      </p>
      <label
        >Override the failed fleet build with a reason
        <span class="field-hint">${denied ?? "An admin's call; the reason is kept in the audit log."}</span>
        <input
          id="fleet-build-override"
          minlength="3"
          maxlength="500"
          ?disabled=${denied !== null}
          .value=${this._fleetOverride}
          @input=${(e: Event) => (this._fleetOverride = (e.target as HTMLInputElement).value)}
      /></label>`;
  }

  /** Ticked hosts whose build of the PR head failed (none for Deploy main). */
  private failedTicked(): string[] {
    const pr = this._pr;
    if (pr === null) return [];
    return failedBuildHosts(this._plan?.fleetBuild ?? currentBuild(pr)).filter((name) => this._ticked.has(name));
  }

  private tick(name: string, on: boolean): void {
    const ticked = new Set(this._ticked);
    if (on) ticked.add(name);
    else ticked.delete(name);
    this._ticked = ticked;
    if (ticked.size > 0) void this.plan(false);
  }

  /** Merge & Deploy's plan: a failed host stays in it while ticked, and reads "left behind on purpose" once unticked. */
  private prPlanRequest(pr: UpdatePr, first: boolean) {
    if (first) return { pr: pr.number, includeFailedBuilds: true };
    return { pr: pr.number, ...this.hostsOf(), includeFailedBuilds: this.failedTicked().length > 0 };
  }

  /** Asks the server for the plan; the first answer also sets the host list. `keepError`: the server's refusal stays shown. */
  private async plan(first: boolean, keepError = false): Promise<void> {
    const store = this.store;
    if (!store) return;
    const seq = ++this._planSeq;
    const pr = this._pr;
    const hosts = first || pr ? undefined : chosenHosts(this._choices, this._ticked);
    try {
      const plan = await store.planRollout(pr ? this.prPlanRequest(pr, first) : hosts ? { hosts } : {});
      if (seq !== this._planSeq) return;
      this._plan = plan;
      if (!keepError) this._error = null;
      if (first) {
        this._choices = hostChoices(plan, store.state.hosts.map((host) => host.name));
        this._ticked = new Set(this._choices.filter((choice) => choice.planned).map((choice) => choice.name));
      }
    } catch (err) {
      if (seq === this._planSeq) this._error = `Could not plan the rollout: ${err instanceof Error ? err.message : String(err)}`;
    }
  }

  private async onSubmit(event: Event): Promise<void> {
    event.preventDefault();
    const store = this.store;
    const plan = this._plan;
    if (!store || !plan) return;
    const pr = this._pr;
    this._busy = true;
    this._error = null;
    try {
      const ignoreWindows = this._ignoreWindows;
      const activation = this._activation === "" ? {} : { activation: this._activation };
      const rollout = pr
        ? await store.mergeAndDeploy(pr.number, {
            sha: pr.headSha,
            ignoreWindows,
            ...activation,
            ...this.hostsOf(),
            ...(this._needsOverride ? { override: { reason: this._override.trim() } } : {}),
            ...(this.failedTicked().length > 0 ? { includeFailedBuilds: true, overrideFleetBuild: { reason: this._fleetOverride.trim() } } : {}),
          })
        : await store.startRollout({ commit: plan.commit, ignoreWindows, ...activation, ...this.hostsOf() });
      this._modal.close();
      notify(this, `Rollout of ${shortSha(rollout.commit)} started: ${rolloutHeadline(rollout)}`);
    } catch (err) {
      if (err instanceof ApiError && err.code === "ci_not_green") this._needsOverride = true;
      this._error = err instanceof Error ? err.message : String(err);
      // The build failed while the dialog was open: the hosts are listed again, the failed ones marked.
      if (err instanceof ApiError && err.code === "fleet_build_failed") void this.plan(true, true);
    } finally {
      this._busy = false;
    }
  }

  private hostsOf(): { hosts?: string[] } {
    const hosts = chosenHosts(this._choices, this._ticked);
    return hosts ? { hosts } : {};
  }
}

customElements.define("nf-deploy-dialog", NfDeployDialog);

declare global {
  interface HTMLElementTagNameMap {
    "nf-deploy-dialog": NfDeployDialog;
  }
}
