import { LitElement, css, html, nothing, type PropertyValues } from "lit";
import { renderLockTooltip } from "../../common/lock-diff.ts";
import { automationLockNote } from "../common/automation.ts";
import {
  COMPARTMENT_NAMES,
  type CommandKind,
  type CommandView,
  type CompartmentName,
  type HostView,
} from "../../common/protocol.ts";
import { desiredClosureDiff } from "../../common/compartments/desired-closure-diff.ts";
import { isActiveCommand } from "../../common/commands.ts";
import { COMMAND_LABELS } from "../common/actions.ts";
import { currentBuild, hostBuild, hostBuildNote } from "../common/fleet-build.ts";
import { presenceLabel } from "../common/format.ts";
import { COMMAND_ROLE, roleDenial } from "../../common/permissions.ts";
import { FLEET_PATH, hostPath } from "../common/route.ts";
import { HOST_STEPS, holdTitle } from "../common/rollouts.ts";
import { pendingUpdatePr, type FleetState } from "../data/fleet-state.ts";
import type { HostDetail } from "../data/schemas.ts";
import type { FleetStore } from "../data/store.ts";
import { sharedStyles } from "../styles/shared.ts";
import type { NfActionMenu } from "../components/nf-action-menu.ts";
import type { NfHostActions } from "../components/nf-host-actions.ts";
import { diskLowPill, PLATFORM_NAMES } from "../components/nf-fleet-table.ts";
import "../components/nf-action-menu.ts";
import "../components/nf-command-history.ts";
import "../components/nf-command-output.ts";
import "../components/nf-compartment-card.ts";
import "../components/nf-host-actions.ts";
import "../components/nf-host-report.ts";
import { formatAge, localTimestamp, plural } from "../../common/text.ts";

interface AskedCommand {
  id: string;
  /** null once loaded: the coordinator does not keep it. */
  command: CommandView | null;
  problem: string | null;
  loaded: boolean;
}

/**
 * One host: its five compartments with their reasons and actions, the live
 * output of the running (or chosen) command, its history and its last report.
 */
export class NfHostPanel extends LitElement {
  static override properties = {
    store: { attribute: false },
    state: { attribute: false },
    name: {},
    commandId: {},
    now: { type: Number },
    _asked: { state: true },
  };
  declare store: FleetStore | null;
  declare state: FleetState | null;
  declare name: string;
  /** From the URL (`?command=`): the command whose output to show; otherwise the active or newest one. */
  declare commandId: string;
  declare now: number;
  /** The URL's command when the host's list does not hold it: read by its id. */
  declare private _asked: AskedCommand | null;
  private get _menu(): NfActionMenu {
    return this.renderRoot.querySelector("nf-action-menu")!;
  }
  private get _actions(): NfHostActions {
    return this.renderRoot.querySelector("nf-host-actions")!;
  }
  private _watching: { store: FleetStore; name: string; release: () => void } | null = null;
  private _watchingOutput: { store: FleetStore; id: string; release: () => void } | null = null;

  constructor() {
    super();
    this.store = null;
    this.state = null;
    this.name = "";
    this.commandId = "";
    this.now = Date.now();
    this._asked = null;
  }

  static override styles = [
    sharedStyles,
    css`
      :host {
        display: grid;
        grid-template-columns: minmax(0, 1fr);
        gap: 1rem;
      }
      .crumbs {
        font-size: 0.875rem;
      }
      .title-row {
        display: flex;
        flex-wrap: wrap;
        align-items: center;
        gap: 0.5rem 0.75rem;
      }
      h1 {
        margin: 0;
        font-size: 1.6rem;
        font-family: var(--nf-mono);
        letter-spacing: -0.01em;
        overflow-wrap: anywhere;
      }
      h1:focus {
        outline: none;
      }
      .spacer {
        flex: 1;
      }
      .online {
        color: var(--nf-green);
        background: var(--nf-green-bg);
      }
      .offline {
        color: var(--nf-gray);
        background: var(--nf-gray-bg);
      }
      .compartments {
        display: grid;
        grid-template-columns: repeat(5, minmax(0, 1fr));
        gap: 0.75rem;
      }
      .active {
        display: flex;
        flex-wrap: wrap;
        align-items: center;
        gap: 0.5rem 0.75rem;
        padding: 0.6rem 0.9rem;
        border-color: color-mix(in srgb, var(--nf-blue) 45%, var(--nf-border));
        background: var(--nf-blue-bg);
      }
      .spin {
        display: inline-block;
        animation: spin 1.6s linear infinite;
        color: var(--nf-blue);
      }
      @keyframes spin {
        to {
          transform: rotate(360deg);
        }
      }
      @media (prefers-reduced-motion: reduce) {
        .spin {
          animation: none;
        }
      }
      .columns {
        display: grid;
        grid-template-columns: minmax(0, 3fr) minmax(0, 2fr);
        gap: 1rem;
        align-items: start;
      }
      .stack {
        display: grid;
        gap: 1rem;
      }
      .card {
        overflow: hidden;
      }
      .problem {
        padding: 1rem;
      }

      @media (max-width: 1100px) {
        .compartments {
          grid-template-columns: repeat(auto-fit, minmax(min(13rem, 100%), 1fr));
        }
        .columns {
          grid-template-columns: minmax(0, 1fr);
        }
      }
    `,
  ];

  override connectedCallback(): void {
    super.connectedCallback();
    this.syncWatches();
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this._watching?.release();
    this._watching = null;
    this._watchingOutput?.release();
    this._watchingOutput = null;
  }

  protected override willUpdate(_changed: PropertyValues<this>): void {
    this.askForUnlisted();
    this.syncWatches();
  }

  /** A link may name a command older than the list's newest: it is fetched by its id, never replaced by another. */
  private askForUnlisted(): void {
    const id = this.commandId;
    const detail = this.detail;
    if (!id || !detail || !this.store || this.listed(detail, id) || this._asked?.id === id) return;
    const asked: AskedCommand = { id, command: null, problem: null, loaded: false };
    this._asked = asked;
    this.store.command(id).then(
      (command) => {
        if (this._asked === asked) this._asked = { ...asked, command, loaded: true };
      },
      (err: unknown) => {
        if (this._asked === asked) this._asked = { ...asked, problem: err instanceof Error ? err.message : String(err), loaded: true };
      },
    );
  }

  private listed(detail: HostDetail, id: string): CommandView | null {
    return detail.commands.find((command) => command.id === id) ?? (detail.activeCommand?.id === id ? detail.activeCommand : null);
  }

  /** The host's details, and the output of the command on show, stay loaded while the page is open. */
  private syncWatches(): void {
    if (!this.isConnected) return;
    const store = this.store;
    const name = this.name;
    if (this._watching && (this._watching.store !== store || this._watching.name !== name)) {
      this._watching.release();
      this._watching = null;
    }
    if (store && name && !this._watching) this._watching = { store, name, release: store.watchHost(name) };

    const id = this.shownCommand()?.id ?? null;
    if (this._watchingOutput && (this._watchingOutput.store !== store || this._watchingOutput.id !== id)) {
      this._watchingOutput.release();
      this._watchingOutput = null;
    }
    if (store && id && !this._watchingOutput) this._watchingOutput = { store, id, release: store.watchOutput(id) };
  }

  private get detail(): HostDetail | null {
    return this.state?.details[this.name] ?? null;
  }

  /** The command whose output is shown: the one in the URL, else the active one, else the newest (stops aside). */
  private shownCommand(): CommandView | null {
    const detail = this.detail;
    if (detail === null) return null;
    if (this.commandId) {
      const asked = this._asked?.id === this.commandId ? this._asked.command : null;
      // Never another command in its place: until it is read, or when it is gone, none.
      return this.listed(detail, this.commandId) ?? (asked?.host === detail.name ? asked : null);
    }
    // A stop says nothing of its own; the command it stopped is the one worth showing.
    const active = isActiveCommand(detail.activeCommand) && detail.activeCommand.kind !== "stop" ? detail.activeCommand : null;
    return active ?? detail.commands.find((command) => command.kind !== "stop") ?? detail.commands[0] ?? null;
  }

  override render() {
    const state = this.state;
    const detail = this.detail;
    const error = state?.detailErrors[this.name];
    // One heading element whether loading or loaded, so the focus put on it after navigation stays.
    return html`<nav class="crumbs" aria-label="Breadcrumb"><a href=${FLEET_PATH}>← Fleet</a></nav>
      <div class="title-row">
        <h1 tabindex="-1">${detail?.name ?? this.name}</h1>
        ${detail ? this.renderTitleDetails(detail) : nothing}
      </div>
      ${detail
        ? this.renderHost(detail)
        : error
          ? html`<div class="card problem" role="alert">${error}</div>`
          : html`<div class="card problem muted" role="status">Loading ${this.name}…</div>`}
      <nf-action-menu></nf-action-menu>
      <nf-host-actions .store=${this.store} .repository=${state?.repo?.repository ?? ""}></nf-host-actions>`;
  }

  private renderTitleDetails(detail: HostDetail) {
    // The row, not the detail: rollout events move it without refetching the host.
    const part = this.state?.hosts.find((host) => host.name === detail.name)?.rollout ?? null;
    return html`<span class="pill tone-muted">${PLATFORM_NAMES[detail.platform]}</span>
      <span class="pill ${detail.online ? "online" : "offline"}" title=${detail.lastSeenAt ? `last seen ${localTimestamp(detail.lastSeenAt)}` : ""}
        >${presenceLabel(detail, this.now)}</span
      >
      ${detail.hold ? html`<span class="pill tone-warn held">${holdTitle(detail.hold)}</span>` : nothing}
      ${diskLowPill(detail.diskLow)}
      ${part ? html`<span class="pill tone-${HOST_STEPS[part.state].tone}">rollout wave ${part.wave}: ${HOST_STEPS[part.state].label}</span>` : nothing}
      <span class="muted">flake attribute <code>${detail.flakeAttr}</code></span>
      <span class="spacer"></span>
      <button
        class="icon-btn host-menu"
        aria-haspopup="menu"
        aria-expanded="false"
        aria-label="Actions for ${detail.name}"
        @click=${(e: Event) => {
          const anchor = e.currentTarget as HTMLElement;
          void this.hostMenu(detail).then((menu) => this._menu.open(anchor, menu));
        }}
      >
        ⋮
      </button>`;
  }

  /** The fleet's host menu plus garbage collection, whose entries load with the first opening (they are not in the first paint). */
  private async hostMenu(detail: HostDetail) {
    const { withGcEntries } = await import("../common/generation-confirm.ts");
    const denied = roleDenial(this.state?.me ?? null, COMMAND_ROLE);
    return withGcEntries(this._actions.hostMenu(detail, { onHostPage: true }), detail, denied, (kind, options) => void this._actions.runCommand(detail, kind, options));
  }

  private renderHost(detail: HostDetail) {
    const state = this.state;
    const pr = state ? pendingUpdatePr(state.updatePrs) : null;
    const shown = this.shownCommand();
    const output = shown ? (state?.outputs[shown.id] ?? null) : null;
    const active = isActiveCommand(detail.activeCommand) ? detail.activeCommand : null;
    const denied = roleDenial(state?.me ?? null, COMMAND_ROLE);
    const build = hostBuild(currentBuild(pr), detail.name);
    // Rarely there, so loaded only when it is: the update's build on this host, and its closure diff.
    if (build) void import("../components/nf-host-update-build.ts");
    const systemDiff = detail.compartments.system.state === "yellow" ? desiredClosureDiff(detail.report) : null;
    // Only while a switch to main's built system is pending: what that switch changes, package by package.
    if (systemDiff) void import("../components/nf-closure-diff.ts");
    const lockTitle = pr === null ? "" : [renderLockTooltip(pr.lockChanges), automationLockNote(pr.automation), build ? hostBuildNote(build) : null].filter((note) => note !== null).join(" ");
    return html`${active ? this.renderActive(detail, active) : nothing}
      <div class="compartments" @nf-run-command=${this.onRun} @nf-compartment-menu=${this.onCompartmentMenu}>
        ${COMPARTMENT_NAMES.map(
          (name) =>
            html`<nf-compartment-card
              .name=${name}
              .host=${detail.name}
              .compartment=${detail.compartments[name]}
              .glow=${name === "lock" && pr !== null}
              .busyReason=${denied ?? (active ? `${COMMAND_LABELS[active.kind]} is ${active.state}` : "")}
              .now=${this.now}
              title=${name === "lock" ? lockTitle : ""}
              >${name === "system" && systemDiff ? html`<nf-closure-diff .diff=${systemDiff} .afterLabel=${"Main's system"}></nf-closure-diff>` : nothing}</nf-compartment-card
            >`,
        )}
      </div>
      ${pr && build
        ? html`<nf-host-update-build
            class="card"
            role="region"
            aria-label="Update PR #${pr.number} on this host"
            .pr=${pr.number}
            .host=${detail.name}
            .build=${build}
          ></nf-host-update-build>`
        : nothing}
      <div class="columns">
        <div class="stack">
          ${shown || !this.commandId
            ? html`<nf-command-output class="card" .command=${shown} .output=${output} .now=${this.now}></nf-command-output>`
            : this.renderUnshown(detail)}
          <nf-command-history class="card" .commands=${detail.commands} .pruned=${detail.prunedCommands} .host=${detail.name} .selectedId=${shown?.id ?? ""} .now=${this.now}></nf-command-history>
        </div>
        <nf-host-report class="card" .host=${detail} .now=${this.now}></nf-host-report>
      </div>
      ${this.renderGenerations(detail, denied)}`;
  }

  /** The host's generations: their element loads with the page's first render of them, not in the first paint. */
  private renderGenerations(detail: HostDetail, denied: string | null) {
    void import("../components/nf-host-generations.ts");
    return html`<nf-host-generations
      class="card"
      role="region"
      aria-label="Generations of ${detail.name}"
      .generations=${detail.report?.generations ?? null}
      .deniedReason=${denied ?? ""}
      .now=${this.now}
      @nf-rollback-generation=${(event: CustomEvent<{ generation: number }>) => void this._actions.runCommand(detail, "rollback", { generation: event.detail.generation })}
    ></nf-host-generations>`;
  }

  /** Why the command the URL names is not shown: still being read, pruned (or never this host's), or unreadable. */
  private renderUnshown(detail: HostDetail) {
    const asked = this._asked?.id === this.commandId ? this._asked : null;
    const text = (() => {
      if (!asked?.loaded) return html`Loading command ${this.commandId}…`;
      if (asked.problem !== null) return html`Could not load command ${this.commandId}: ${asked.problem}`;
      if (asked.command) return html`Command ${asked.command.id} ran on <a href=${hostPath(asked.command.host, asked.command.id)}>${asked.command.host}</a>, not on ${detail.name}.`;
      if (detail.prunedCommands) {
        return html`Command ${this.commandId} is no longer kept: it was pruned to keep the coordinator's storage bounded
          (${plural(detail.prunedCommands.count, "command")} of ${detail.name} so far). The <a href="/audit">audit log</a> keeps who asked for it.`;
      }
      return html`${detail.name} has no command ${this.commandId}.`;
    })();
    return html`<div class="card problem unshown" role=${asked?.loaded ? "alert" : "status"}>${text}</div>`;
  }

  private renderActive(host: HostView, active: CommandView) {
    const since = active.startedAt ?? active.deliveredAt ?? active.createdAt;
    const stoppable = active.kind !== "stop";
    const denied = roleDenial(this.state?.me ?? null, COMMAND_ROLE);
    return html`<div class="active card" role="status">
      <span class="spin" aria-hidden="true">⟳</span>
      <strong>${COMMAND_LABELS[active.kind]}</strong>
      <span>${active.state}${host.online ? "" : " (host offline: waits for it)"}</span>
      <span class="muted" title=${localTimestamp(since)}>since ${formatAge(since, this.now)} · ${active.actor}</span>
      <span class="spacer"></span>
      ${stoppable
        ? html`<button class="btn small" ?disabled=${denied !== null} title=${denied ?? "cancel the queued or running command"} @click=${() => this._actions.runCommand(host, "stop")}>
            Stop
          </button>`
        : nothing}
    </div>`;
  }

  private onRun(event: CustomEvent<{ kind: CommandKind }>): void {
    const detail = this.detail;
    if (detail) void this._actions.runCommand(detail, event.detail.kind);
  }

  private onCompartmentMenu(event: CustomEvent<{ name: CompartmentName; anchor: HTMLElement }>): void {
    const detail = this.detail;
    if (!detail || !this.state) return;
    const content = this._actions.compartmentMenu(detail, event.detail.name, { updatePr: pendingUpdatePr(this.state.updatePrs), onHostPage: true });
    void this._menu.open(event.detail.anchor, content);
  }
}

customElements.define("nf-host-panel", NfHostPanel);

declare global {
  interface HTMLElementTagNameMap {
    "nf-host-panel": NfHostPanel;
  }
}
