import { LitElement, css, html, nothing } from "lit";
import type { CommandKind } from "../../common/protocol.ts";
import { BULK_KINDS, COMMAND_LABELS } from "../common/actions.ts";
import { COMMAND_ROLE, HOST_ADMIN_ROLE, roleDenial, roleNote } from "../../common/permissions.ts";
import type { FleetBuildView, HostView, UpdatePr } from "../../common/protocol.ts";
import { renderLockTooltip } from "../../common/lock-diff.ts";
import { automationLockNote } from "../common/automation.ts";
import { currentBuild } from "../common/fleet-build.ts";
import type { AutomationActionDetail } from "../components/nf-automation-timeline.ts";
import { currentRollouts, pendingUpdatePr, type FleetState } from "../data/fleet-state.ts";
import type { FleetStore } from "../data/store.ts";
import { sharedStyles } from "../styles/shared.ts";
import type { NfActionMenu } from "../components/nf-action-menu.ts";
import type { CompartmentMenuRequest, HostMenuRequest } from "../components/nf-fleet-table.ts";
import type { NfHostActions } from "../components/nf-host-actions.ts";
import type { NfAddHostDialog } from "../dialogs/nf-add-host-dialog.ts";
import type { NfBulkDialog } from "../dialogs/nf-bulk-dialog.ts";
import type { NfDeployDialog } from "../dialogs/nf-deploy-dialog.ts";
import "../components/nf-action-menu.ts";
import "../components/nf-fleet-header.ts";
import "../components/nf-fleet-table.ts";
import "../components/nf-host-actions.ts";
import "../components/nf-rollout-progress.ts";
import "../components/nf-update-pr-banner.ts";
import { plural, pluralWord } from "../../common/text.ts";

/** The fleet page: header, update PR, bulk actions and the table. */
export class NfFleetPanel extends LitElement {
  static override properties = {
    store: { attribute: false },
    state: { attribute: false },
    now: { type: Number },
    _selected: { state: true },
    _rebootOnly: { state: true },
  };
  declare store: FleetStore | null;
  declare state: FleetState | null;
  declare now: number;
  private declare _selected: ReadonlySet<string>;
  private _shownSelection: ReadonlySet<string> | null = null;
  /** The "Reboot needed" filter: only hosts whose report says a reboot is due. */
  private declare _rebootOnly: boolean;
  private _filtered: { from: readonly HostView[]; hosts: HostView[] } | null = null;
  private get _menu(): NfActionMenu {
    return this.renderRoot.querySelector("nf-action-menu")!;
  }
  private get _actions(): NfHostActions {
    return this.renderRoot.querySelector("nf-host-actions")!;
  }
  // The dialogs load on their first opening, not in the first paint: the table needs none of them.
  private async _addHost(): Promise<NfAddHostDialog> {
    await import("../dialogs/nf-add-host-dialog.ts");
    return this.renderRoot.querySelector("nf-add-host-dialog")!;
  }
  private async _bulk(): Promise<NfBulkDialog> {
    await import("../dialogs/nf-bulk-dialog.ts");
    return this.renderRoot.querySelector("nf-bulk-dialog")!;
  }
  private async _deploy(): Promise<NfDeployDialog> {
    await import("../dialogs/nf-deploy-dialog.ts");
    return this.renderRoot.querySelector("nf-deploy-dialog")!;
  }

  constructor() {
    super();
    this.store = null;
    this.state = null;
    this.now = Date.now();
    this._selected = new Set();
    this._rebootOnly = false;
  }

  static override styles = [
    sharedStyles,
    css`
      :host {
        display: grid;
        /* One column no wider than the page: a long word wraps instead of widening it. */
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
        letter-spacing: -0.01em;
      }
      h1:focus {
        outline: none;
      }
      .spacer {
        flex: 1;
      }
      .role-note {
        color: var(--nf-text-muted);
        font-size: 0.875rem;
      }
      .rollout {
        padding: 0.9rem 1.1rem;
      }
      .bulk {
        display: flex;
        flex-wrap: wrap;
        align-items: center;
        gap: 0.5rem;
        padding: 0.6rem 0.8rem;
      }
      .bulk .scope {
        margin-right: 0.25rem;
        font-size: 0.875rem;
      }
      .bulk.has-selection {
        border-color: color-mix(in srgb, var(--nf-accent) 50%, var(--nf-border));
        background: var(--nf-accent-soft);
      }
      .filters {
        display: flex;
        flex-wrap: wrap;
        align-items: center;
        gap: 0.75rem;
        font-size: 0.875rem;
      }
      .filters label {
        display: inline-flex;
        align-items: center;
        gap: 0.35rem;
        cursor: pointer;
      }
      .filters .none {
        color: var(--nf-text-muted);
      }
      .empty {
        display: grid;
        justify-items: center;
        gap: 0.75rem;
        padding: 3rem 1rem;
        text-align: center;
      }
      .empty h2 {
        margin: 0;
        font-size: 1.15rem;
      }
      .empty p {
        margin: 0;
        max-width: 32rem;
        color: var(--nf-text-muted);
      }
      .problem {
        padding: 0.7rem 0.9rem;
        border-radius: var(--nf-radius-sm);
        border: 1px solid color-mix(in srgb, var(--nf-red) 45%, transparent);
        background: var(--nf-red-bg);
        color: var(--nf-text);
      }
      .loading {
        padding: 2rem;
        text-align: center;
        color: var(--nf-text-muted);
      }
    `,
  ];

  override render() {
    const fleet = this.state;
    const hosts = fleet?.hosts ?? [];
    const pr = fleet ? pendingUpdatePr(fleet.updatePrs) : null;
    const selected = this.selectionOf(this.shownHosts(hosts));
    const repository = fleet?.repo?.repository ?? "";
    const me = fleet?.me ?? null;
    const addDenied = roleDenial(me, HOST_ADMIN_ROLE);
    const note = roleNote(me);
    return html`
      <div class="title-row">
        <h1 tabindex="-1">Fleet</h1>
        <span class="spacer"></span>
        ${note !== null ? html`<span class="role-note" data-testid="role-note">${note}</span>` : nothing}
        <button class="btn primary" ?disabled=${addDenied !== null} title=${addDenied ?? "add a host and get its agent token"} @click=${() => void this._addHost().then((dialog) => dialog.show())}>
          <span aria-hidden="true">+</span> Add host
        </button>
      </div>
      ${fleet?.error && fleet.phase === "ready" ? html`<div class="problem" role="alert">Could not refresh the fleet: ${fleet.error}</div>` : nothing}
      ${pr
        ? html`<nf-update-pr-banner
            .pr=${pr}
            .now=${this.now}
            .store=${this.store}
            .me=${me}
            @nf-merge-deploy=${(e: CustomEvent<UpdatePr>) => void this._deploy().then((dialog) => dialog.show(e.detail))}
            @nf-merge-only=${(e: CustomEvent<UpdatePr>) => this.mergeOnly(e.detail)}
            @nf-update-pr-automation=${(e: CustomEvent<AutomationActionDetail>) => void this.automationAction(e.detail)}
          ></nf-update-pr-banner>`
        : nothing}
      ${currentRollouts(fleet?.rollouts ?? [], this.now).map(
        (rollout) =>
          html`<nf-rollout-progress
            class="card rollout"
            role="region"
            aria-label="Rollout"
            .rollout=${rollout}
            .store=${this.store}
            .repository=${repository}
            .now=${this.now}
          ></nf-rollout-progress>`,
      )}
      ${fleet?.phase === "ready"
        ? html`<nf-fleet-header
            .repo=${fleet.repo}
            .summary=${fleet.summary}
            .hostCount=${hosts.length}
            .onlineCount=${hosts.filter((host) => host.online).length}
            .now=${this.now}
            .store=${this.store}
            .me=${me}
            @nf-deploy=${() => void this._deploy().then((dialog) => dialog.show(null))}
          ></nf-fleet-header>`
        : nothing}
      ${this.renderBody(fleet, selected, pr, currentBuild(pr))}
      <nf-action-menu></nf-action-menu>
      <nf-host-actions .store=${this.store} .repository=${repository}></nf-host-actions>
      <nf-add-host-dialog .store=${this.store} .repository=${repository}></nf-add-host-dialog>
      <nf-bulk-dialog .store=${this.store}></nf-bulk-dialog>
      <nf-deploy-dialog .store=${this.store}></nf-deploy-dialog>
      <nf-merge-dialog .store=${this.store}></nf-merge-dialog>
    `;
  }

  /** Merge now / Skip this PR from the banner's timeline. */
  private async automationAction(request: AutomationActionDetail): Promise<void> {
    if (this.store === null) return request.done("not connected");
    try {
      if (request.action === "merge-now") await this.store.mergeUpdatePrNow(request.pr);
      else await this.store.skipUpdatePr(request.pr);
      request.done(null);
    } catch (err) {
      request.done(`${request.action === "merge-now" ? "Merge now" : "Skip"} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /**
   * The selection among the hosts there are. The same set while nothing
   * changed, so the table does not redraw 100 rows on every render of the panel.
   */
  private selectionOf(hosts: readonly { name: string }[]): ReadonlySet<string> {
    const names = new Set(hosts.map((host) => host.name));
    const kept = [...this._selected].filter((name) => names.has(name));
    const last = this._shownSelection;
    if (last !== null && last.size === kept.length && kept.every((name) => last.has(name))) return last;
    this._shownSelection = new Set(kept);
    return this._shownSelection;
  }

  private renderBody(fleet: FleetState | null, selected: ReadonlySet<string>, pr: UpdatePr | null, fleetBuild: FleetBuildView | null) {
    if (fleet === null || fleet.phase === "loading") return html`<div class="loading card" role="status">Loading the fleet…</div>`;
    if (fleet.phase === "error") {
      return html`<div class="problem" role="alert">
        <strong>The fleet could not be loaded.</strong> ${fleet.error}
        <button class="btn small" @click=${() => this.store?.refreshFleet()}>Try again</button>
      </div>`;
    }
    if (fleet.hosts.length === 0) {
      return html`<div class="empty card">
        <h2>No hosts yet</h2>
        <p>Add a host to get its agent token and the few lines of Nix that connect it to this dashboard.</p>
        <button
          class="btn primary"
          ?disabled=${roleDenial(fleet.me, HOST_ADMIN_ROLE) !== null}
          title=${roleDenial(fleet.me, HOST_ADMIN_ROLE) ?? "add a host and get its agent token"}
          @click=${() => void this._addHost().then((dialog) => dialog.show())}
        >
          Add your first host
        </button>
      </div>`;
    }
    const shown = this.shownHosts(fleet.hosts);
    const rebootCount = fleet.hosts.filter((host) => host.rebootNeeded === true).length;
    return html`${this.renderBulk(shown, fleet, selected)}
      <div class="filters" role="group" aria-label="Filters">
        <label title="hosts whose system profile boots another kernel, initrd or kernel modules than the ones they booted">
          <input type="checkbox" .checked=${this._rebootOnly} @change=${(e: Event) => (this._rebootOnly = (e.target as HTMLInputElement).checked)} />
          Reboot needed (${rebootCount})
        </label>
        ${this._rebootOnly && shown.length === 0 ? html`<span class="none" role="status">No host needs a reboot.</span>` : nothing}
      </div>
      <nf-fleet-table
        .hosts=${shown}
        .selected=${selected}
        .lockNote=${pr ? renderLockTooltip(pr.lockChanges) : ""}
        .automationNote=${automationLockNote(pr?.automation ?? null) ?? ""}
        .fleetBuild=${fleetBuild}
        .now=${this.now}
        @nf-selection-change=${(e: CustomEvent<{ selected: string[] }>) => (this._selected = new Set(e.detail.selected))}
        @nf-compartment-menu=${this.onCompartmentMenu}
        @nf-host-menu=${this.onHostMenu}
      ></nf-fleet-table>`;
  }

  /** The hosts the filter lets through; the same array while nothing changed, so the table does not redraw. */
  private shownHosts(hosts: HostView[]): HostView[] {
    if (!this._rebootOnly) return hosts;
    if (this._filtered?.from === hosts) return this._filtered.hosts;
    this._filtered = { from: hosts, hosts: hosts.filter((host) => host.rebootNeeded === true) };
    return this._filtered.hosts;
  }

  /** Bulk actions act on the hosts shown: with a filter on, "all online" are the shown ones. */
  private renderBulk(shown: readonly HostView[], fleet: FleetState, selected: ReadonlySet<string>) {
    const online = shown.filter((host) => host.online).map((host) => host.name);
    const targets = selected.size > 0 ? [...selected] : online;
    const scope = selected.size > 0 ? "selected" : "online";
    const denied = roleDenial(fleet.me, COMMAND_ROLE);
    const label =
      selected.size > 0
        ? `${selected.size} selected ${pluralWord(selected.size, "host")}:`
        : online.length > 0
          ? `All ${online.length} online ${pluralWord(online.length, "host")}:`
          : "No host online — select hosts to queue commands for them:";
    return html`<div class="bulk card ${selected.size > 0 ? "has-selection" : ""}" role="toolbar" aria-label="Bulk actions">
      <span class="scope">${label}</span>
      ${BULK_KINDS.map(
        (kind) =>
          html`<button
            class="btn small"
            ?disabled=${targets.length === 0 || denied !== null}
            title=${denied ?? `${COMMAND_LABELS[kind]} on ${plural(targets.length, "host")}`}
            @click=${() => this.bulk(kind, targets, scope)}
          >
            ${COMMAND_LABELS[kind]}
          </button>`,
      )}
      ${selected.size > 0 ? html`<button class="btn small" @click=${() => (this._selected = new Set())}>Clear selection</button>` : nothing}
    </div>`;
  }

  private bulk(kind: CommandKind, hosts: string[], scope: string): void {
    void this._bulk().then((dialog) => dialog.show(kind, hosts, scope));
  }

  /** Merge (merge only): rarely used, so its dialog loads on the first opening. */
  private mergeOnly(pr: UpdatePr): void {
    void import("../dialogs/nf-merge-dialog.ts").then(() => this.renderRoot.querySelector("nf-merge-dialog")!.show(pr));
  }

  private onCompartmentMenu(event: CustomEvent<CompartmentMenuRequest>): void {
    const host = this.state?.hosts.find((h) => h.name === event.detail.host);
    if (!host) return;
    const updatePr = this.state ? pendingUpdatePr(this.state.updatePrs) : null;
    const { anchor, name } = event.detail;
    if (name !== "lock" || updatePr === null) {
      void this._menu.open(anchor, this._actions.compartmentMenu(host, name, { updatePr }));
      return;
    }
    // The Lock cell of a pending update PR leads to the PR's own actions, the banner's (loaded with the first such menu).
    void import("../common/update-pr-actions.ts").then(({ updatePrMenuEntries }) => {
      const updatePrActions = updatePrMenuEntries(updatePr, this.state?.me ?? null, host.compartments.lock.action, {
        mergeAndDeploy: () => void this._deploy().then((dialog) => dialog.show(updatePr)),
        merge: () => this.mergeOnly(updatePr),
      });
      return this._menu.open(anchor, this._actions.compartmentMenu(host, name, { updatePr, updatePrActions }));
    });
  }

  private onHostMenu(event: CustomEvent<HostMenuRequest>): void {
    const host = this.state?.hosts.find((h) => h.name === event.detail.host);
    if (!host) return;
    void this._menu.open(event.detail.anchor, this._actions.hostMenu(host));
  }
}

customElements.define("nf-fleet-panel", NfFleetPanel);

declare global {
  interface HTMLElementTagNameMap {
    "nf-fleet-panel": NfFleetPanel;
  }
}
