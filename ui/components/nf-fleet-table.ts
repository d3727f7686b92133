import { LitElement, css, html, nothing } from "lit";
import { repeat } from "lit/directives/repeat.js";
import { COMPARTMENT_NAMES, type CompartmentName, type FleetBuildView, type HostView } from "../../common/protocol.ts";
import { isActiveCommand } from "../../common/commands.ts";
import { COMMAND_LABELS } from "../common/actions.ts";
import { COMPARTMENT_QUESTIONS, COMPARTMENT_TITLES } from "../common/compartment-display.ts";
import { hostBuild, hostBuildNote } from "../common/fleet-build.ts";
import { presenceLabel, shortSha } from "../common/format.ts";
import { hostPath } from "../common/route.ts";
import { HOST_STEPS, holdTitle } from "../common/rollouts.ts";
import { FIRST_ROWS, MORE_ROWS } from "../common/table-rows.ts";
import { PLATFORM_NAMES } from "../../common/fleet-table.ts";
import { sharedStyles, stateColours } from "../styles/shared.ts";
import { compartmentCell, compartmentCellStyles } from "./compartment-cell.ts";
import { localTimestamp } from "../../common/text.ts";

const staleTag = html`<span class="stale-tag">last known</span>`;

export { PLATFORM_NAMES };

export interface CompartmentMenuRequest {
  host: string;
  name: CompartmentName;
  anchor: HTMLElement;
}

export interface HostMenuRequest {
  host: string;
  anchor: HTMLElement;
}

/**
 * The fleet table: one row per host with its five compartments. It only
 * shows and reports: menus and selection are its panel's.
 */
/** "disk low: /boot 38 MiB free" on the host's row and page (the worker words it from the report and the fleet's threshold). */
export const diskLowPill = (warning: string | null) => (warning ? html`<span class="pill tone-warn">${warning}</span>` : nothing);

export class NfFleetTable extends LitElement {
  static override properties = {
    hosts: { attribute: false },
    selected: { attribute: false },
    lockNote: {},
    automationNote: {},
    fleetBuild: { attribute: false },
    now: { type: Number },
    _rowLimit: { state: true },
  };
  declare hosts: HostView[];
  declare selected: ReadonlySet<string>;
  /** An update PR is pending: Lock cells glow (see docs/compartments.md "Lock", row 5). */
  declare lockNote: string;
  /** What the auto-merge does with the pending update PR, or why it does nothing (see docs/automation.md "On the dashboard"). */
  declare automationNote: string;
  /** The pending update PR's build of its head: each Lock cell says what the update does on its host. */
  declare fleetBuild: FleetBuildView | null;
  declare now: number;
  private _markedRows = 0;
  /** How many rows are rendered: grows by MORE_ROWS a frame until every host has its row, and never shrinks. */
  private declare _rowLimit: number;
  private _moreRowsQueued = false;

  constructor() {
    super();
    this.hosts = [];
    this.selected = new Set();
    this.lockNote = "";
    this.automationNote = "";
    this.fleetBuild = null;
    this._rowLimit = FIRST_ROWS;
    this.now = Date.now();
  }

  static override styles = [
    sharedStyles,
    stateColours,
    compartmentCellStyles,
    css`
      :host {
        display: block;
      }
      .scroller {
        overflow-x: auto;
        border: 1px solid var(--nf-border);
        border-radius: var(--nf-radius);
        background: var(--nf-surface);
      }
      .table {
        min-width: 72rem;
        font-size: 0.875rem;
      }
      /* Every row lays out on the same columns; no table layout over all rows at once. */
      .tr {
        display: grid;
        grid-template-columns: 2.75rem minmax(7rem, 1fr) 6rem 9.25rem 4.75rem 5rem repeat(5, minmax(7.25rem, 1fr)) 2.75rem;
        align-items: center;
        border-bottom: 1px solid var(--nf-border);
      }
      .row {
        /*
         * Rows off screen skip style and layout until scrolled to: 100 hosts paint like 15. Until then each is as
         * tall as a row laid out (a state cell's 2rem and its 0.3rem padding inside, the border added outside the
         * size given here), so the table's height and the scrollbar do not change when they are.
         */
        content-visibility: auto;
        contain-intrinsic-size: auto 2.6rem;
      }
      .row:nth-child(-n + 24) {
        /*
         * The rows a first screen can show are laid out at once: with auto, Chromium first lays every row
         * out skipped, finds the visible ones, and styles and lays out the page a second time (bench:ui).
         */
        content-visibility: visible;
      }
      .row:last-child {
        border-bottom: 0;
      }
      .th,
      .td {
        min-width: 0;
        padding: 0.45rem 0.5rem;
      }
      .th {
        background: var(--nf-surface-2);
        color: var(--nf-text-muted);
        font-size: 0.75rem;
        font-weight: 600;
        letter-spacing: 0.03em;
        text-transform: uppercase;
        white-space: nowrap;
      }
      .head {
        background: var(--nf-surface-2);
      }
      .row:hover {
        background: color-mix(in srgb, var(--nf-surface-2) 55%, transparent);
      }
      .row.selected {
        background: var(--nf-accent-soft);
      }
      .select {
        padding-left: 0.85rem;
      }
      input[type="checkbox"] {
        display: block;
        width: 1.05rem;
        height: 1.05rem;
        margin: 0;
        accent-color: var(--nf-accent);
        cursor: pointer;
      }
      .name a {
        overflow-wrap: anywhere;
        font-weight: 600;
        font-size: 0.9375rem;
        color: var(--nf-text);
        text-decoration: none;
      }
      .name a:hover {
        color: var(--nf-link);
        text-decoration: underline;
      }
      .pill {
        margin-left: 0.3rem;
        font-size: 0.75rem;
      }
      .doing {
        display: block;
        margin-top: 0.1rem;
        font-size: 0.75rem;
        color: var(--nf-blue);
      }
      .presence {
        white-space: nowrap;
      }
      .dot {
        display: inline-block;
        width: 0.55rem;
        height: 0.55rem;
        margin-right: 0.4rem;
        border-radius: 50%;
        background: var(--nf-gray);
      }
      .online .dot {
        background: var(--nf-green);
        box-shadow: 0 0 0 3px var(--nf-green-bg);
      }
      .offline {
        color: var(--nf-text-muted);
      }
      .mono {
        white-space: nowrap;
      }
      .compartment {
        padding: 0.3rem 0.25rem;
      }
      .menu {
        padding: 0 0.4rem 0 0;
        text-align: right;
      }
      @media (max-width: 760px) {
        .scroller {
          overflow: visible;
          border: 0;
          background: none;
        }
        .table {
          min-width: 0;
        }
        .head {
          position: absolute;
          width: 1px;
          height: 1px;
          overflow: hidden;
          clip: rect(0 0 0 0);
        }
        .row {
          grid-template-columns: repeat(10, minmax(0, 1fr));
          grid-template-areas:
            "sel name name name name name name name name menu"
            "st st st st pf pf ver ver sha sha"
            "c1 c1 c2 c2 c3 c3 c4 c4 c5 c5";
          gap: 0.5rem 0.25rem;
          margin-bottom: 0.75rem;
          padding: 0.7rem 0.6rem;
          border: 1px solid var(--nf-border);
          border-radius: var(--nf-radius);
          background: var(--nf-surface);
          contain-intrinsic-size: auto 10.5rem;
        }
        .row:last-child {
          border-bottom: 1px solid var(--nf-border);
        }
        .row:hover {
          background: var(--nf-surface);
        }
        .td {
          padding: 0;
        }
        .select {
          grid-area: sel;
          padding-top: 0.35rem;
        }
        .name {
          grid-area: name;
        }
        .menu {
          grid-area: menu;
        }
        .status {
          grid-area: st;
        }
        .platform {
          grid-area: pf;
        }
        .version {
          grid-area: ver;
        }
        .commit {
          grid-area: sha;
        }
        .c-agent {
          grid-area: c1;
        }
        .c-git {
          grid-area: c2;
        }
        .c-lock {
          grid-area: c3;
        }
        .c-system {
          grid-area: c4;
        }
        .c-tests {
          grid-area: c5;
        }
        .td[data-label]::before {
          content: attr(data-label);
          display: block;
          font-family: var(--nf-font);
          font-size: 0.6875rem;
          color: var(--nf-text-muted);
          text-transform: uppercase;
          letter-spacing: 0.03em;
        }
        .status,
        .platform,
        .version,
        .commit {
          font-size: 0.8125rem;
          overflow: hidden;
          text-overflow: ellipsis;
        }
      }
    `,
  ];

  protected override updated(): void {
    // Performance marks when a new number of rows is in the DOM, and once it is painted: what bench/ui.ts measures.
    const rows = Math.min(this.hosts.length, this._rowLimit);
    if (rows !== this._markedRows) {
      const hosts = this.hosts.length;
      this._markedRows = rows;
      performance.mark("nf-fleet-table-rendered", { detail: { rows, hosts } });
      requestAnimationFrame(() => setTimeout(() => performance.mark("nf-fleet-table-painted", { detail: { rows, hosts } })));
    }
    if (this.hosts.length > this._rowLimit && !this._moreRowsQueued) {
      this._moreRowsQueued = true;
      requestAnimationFrame(() =>
        setTimeout(() => {
          this._moreRowsQueued = false;
          this._rowLimit += MORE_ROWS;
        }),
      );
    }
  }

  override render() {
    const all = this.hosts.length > 0 && this.hosts.every((host) => this.selected.has(host.name));
    const some = !all && this.hosts.some((host) => this.selected.has(host.name));
    // An ARIA table of grid rows rather than <table>: rows can then skip rendering while off screen.
    return html`<div class="scroller">
      <div class="table" role="table" aria-label="Fleet" aria-rowcount=${this.hosts.length + 1}>
        <div class="head" role="rowgroup">
          <div class="tr" role="row">
            <div class="th select" role="columnheader">
              <input
                type="checkbox"
                aria-label="Select all hosts"
                .checked=${all}
                .indeterminate=${some}
                @change=${(e: Event) => this.selectAll((e.target as HTMLInputElement).checked)}
              />
            </div>
            <div class="th" role="columnheader">Host</div>
            <div class="th" role="columnheader">Platform</div>
            <div class="th" role="columnheader">Status</div>
            <div class="th" role="columnheader">Version</div>
            <div class="th" role="columnheader">Commit</div>
            ${COMPARTMENT_NAMES.map((name) => html`<div class="th" role="columnheader" title=${COMPARTMENT_QUESTIONS[name]}>${COMPARTMENT_TITLES[name]}</div>`)}
            <div class="th" role="columnheader"><span class="visually-hidden">Actions</span></div>
          </div>
        </div>
        <div role="rowgroup" @click=${this.onClick}>
          ${repeat(
            this.hosts.length > this._rowLimit ? this.hosts.slice(0, this._rowLimit) : this.hosts,
            (host) => host.name,
            (host) => this.renderRow(host),
          )}
        </div>
      </div>
    </div>`;
  }

  private renderRow(host: HostView) {
    const selected = this.selected.has(host.name);
    const active = isActiveCommand(host.activeCommand) ? host.activeCommand : null;
    const commit = host.report?.repo.commit.value ?? null;
    const branch = host.report?.repo.branch.value ?? null;
    const prNote = this.lockNote !== "" && !host.compartments.lock.reason.startsWith("Update PR pending") ? this.lockNote : "";
    const buildNote = hostBuildNote(hostBuild(this.fleetBuild, host.name));
    const lockNote = [prNote, this.automationNote, buildNote ?? ""].filter((note) => note !== "").join(" ");
    // Written out cell by cell in the row's one template (see compartment-cell.ts).
    const plain = { glow: false, note: "" };
    const agent = compartmentCell(host.name, "agent", host.compartments.agent, plain);
    const git = compartmentCell(host.name, "git", host.compartments.git, plain);
    const lock = compartmentCell(host.name, "lock", host.compartments.lock, { glow: this.lockNote !== "", note: lockNote });
    const system = compartmentCell(host.name, "system", host.compartments.system, plain);
    const tests = compartmentCell(host.name, "tests", host.compartments.tests, plain);
    return html`<div class="tr row${selected ? " selected" : ""}" role="row" data-host=${host.name}>
      <div class="td select" role="cell">
        <input
          type="checkbox"
          aria-label="Select ${host.name}"
          .checked=${selected}
          @change=${(e: Event) => this.toggle(host.name, (e.target as HTMLInputElement).checked)}
        />
      </div>
      <div class="td name" role="rowheader">
        <a href=${hostPath(host.name)}>${host.name}</a>
        ${host.hold ? html`<span class="pill tone-warn held" title=${holdTitle(host.hold)}>held<span class="visually-hidden">. ${holdTitle(host.hold)}</span></span>` : nothing}
        ${diskLowPill(host.diskLow)}
        ${host.rollout
          ? html`<span class="pill tone-${HOST_STEPS[host.rollout.state].tone} in-rollout" title="Part of the running rollout, wave ${host.rollout.wave}"
              >rollout · ${HOST_STEPS[host.rollout.state].label}</span
            >`
          : nothing}
        ${active ? html`<span class="doing">${COMMAND_LABELS[active.kind]} ${active.state}…</span>` : nothing}
      </div>
      <div class="td platform" role="cell" data-label="Platform">${PLATFORM_NAMES[host.platform]}</div>
      <div class="td status" role="cell" data-label="Status">
        <span class="presence ${host.online ? "online" : "offline"}" title=${host.lastSeenAt ? `last seen ${localTimestamp(host.lastSeenAt)}` : "never connected"}
          ><span class="dot"></span>${presenceLabel(host, this.now)}</span
        >
      </div>
      <div class="td version mono" role="cell" data-label="Version">${host.report?.agentVersion ?? "—"}</div>
      <div class="td commit mono" role="cell" data-label="Commit" title=${commit ? `${commit}${branch ? ` on ${branch}` : ""}` : "not reported"}>
        ${shortSha(commit)}
      </div>
      <div class="td compartment c-agent" role="cell">
        <button class=${agent.classes} data-compartment="agent" data-title="Agent" title=${agent.title} aria-label=${agent.ariaLabel} aria-haspopup="menu" aria-expanded="false">
          ${agent.label}${agent.stale ? staleTag : nothing}
        </button>
      </div>
      <div class="td compartment c-git" role="cell">
        <button class=${git.classes} data-compartment="git" data-title="Git" title=${git.title} aria-label=${git.ariaLabel} aria-haspopup="menu" aria-expanded="false">
          ${git.label}${git.stale ? staleTag : nothing}
        </button>
      </div>
      <div class="td compartment c-lock" role="cell">
        <button class=${lock.classes} data-compartment="lock" data-title="Lock" title=${lock.title} aria-label=${lock.ariaLabel} aria-haspopup="menu" aria-expanded="false">
          ${lock.label}${lock.stale ? staleTag : nothing}
        </button>
      </div>
      <div class="td compartment c-system" role="cell">
        <button class=${system.classes} data-compartment="system" data-title="System" title=${system.title} aria-label=${system.ariaLabel} aria-haspopup="menu" aria-expanded="false">
          ${system.label}${system.stale ? staleTag : nothing}
        </button>
      </div>
      <div class="td compartment c-tests" role="cell">
        <button class=${tests.classes} data-compartment="tests" data-title="Tests" title=${tests.title} aria-label=${tests.ariaLabel} aria-haspopup="menu" aria-expanded="false">
          ${tests.label}${tests.stale ? staleTag : nothing}
        </button>
      </div>
      <div class="td menu" role="cell">
        <button class="icon-btn host-menu" aria-haspopup="menu" aria-expanded="false" aria-label="Actions for ${host.name}">
          ⋮
        </button>
      </div>
    </div>`;
  }

  private onClick(event: MouseEvent): void {
    const path = event.composedPath();
    const row = path.find((node): node is HTMLElement => node instanceof HTMLElement && node.dataset.host !== undefined);
    const host = row?.dataset.host;
    if (!host) return;
    const cell = path.find((node): node is HTMLButtonElement => node instanceof HTMLButtonElement && node.classList.contains("cell"));
    if (cell) {
      const name = COMPARTMENT_NAMES.find((n) => n === cell.dataset.compartment);
      if (name) this.emit<CompartmentMenuRequest>("nf-compartment-menu", { host, name, anchor: cell });
      return;
    }
    const menu = path.find((node): node is HTMLElement => node instanceof HTMLElement && node.classList.contains("host-menu"));
    if (menu) this.emit<HostMenuRequest>("nf-host-menu", { host, anchor: menu });
  }

  private toggle(host: string, on: boolean): void {
    const next = new Set(this.selected);
    if (on) next.add(host);
    else next.delete(host);
    this.emit("nf-selection-change", { selected: [...next] });
  }

  private selectAll(on: boolean): void {
    this.emit("nf-selection-change", { selected: on ? this.hosts.map((host) => host.name) : [] });
  }

  private emit<T>(type: string, detail: T): void {
    this.dispatchEvent(new CustomEvent<T>(type, { detail, bubbles: true, composed: true }));
  }
}

customElements.define("nf-fleet-table", NfFleetTable);

declare global {
  interface HTMLElementTagNameMap {
    "nf-fleet-table": NfFleetTable;
  }
}
