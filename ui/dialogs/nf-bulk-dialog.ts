import { LitElement, css, html, nothing } from "lit";
import type { CommandKind } from "../../common/protocol.ts";
import { COMMAND_HINTS, COMMAND_LABELS } from "../common/actions.ts";
import { holdTitle } from "../common/rollouts.ts";
import { bulkTargets, heldAmong, sendToHosts, type BulkOutcome } from "../data/bulk.ts";
import type { FleetStore } from "../data/store.ts";
import { dialogStyles } from "../styles/dialog.ts";
import { sharedStyles } from "../styles/shared.ts";
import { plural, pluralWord } from "../../common/text.ts";
import { ModalDialog } from "../common/modal-dialog.ts";

/**
 * One command for several hosts: names them before anything is sent, then
 * shows each host's outcome (a busy host says so; nothing is swallowed).
 */
export class NfBulkDialog extends LitElement {
  static override properties = {
    store: { attribute: false },
    _kind: { state: true },
    _hosts: { state: true },
    _scope: { state: true },
    _outcomes: { state: true },
    _busy: { state: true },
    _held: { state: true },
    _skipHeld: { state: true },
  };
  declare store: FleetStore | null;
  private declare _kind: CommandKind | null;
  private declare _hosts: readonly string[];
  private declare _scope: string;
  private declare _outcomes: BulkOutcome[] | null;
  private declare _busy: boolean;
  private declare _held: ReturnType<typeof heldAmong>;
  private declare _skipHeld: boolean;
  private readonly _modal = new ModalDialog(this, () => (this._kind = null));

  constructor() {
    super();
    this.store = null;
    this._kind = null;
    this._hosts = [];
    this._scope = "";
    this._outcomes = null;
    this._busy = false;
    this._held = [];
    this._skipHeld = true;
  }

  static override styles = [
    sharedStyles,
    dialogStyles,
    css`
      .outcomes {
        display: grid;
        gap: 0.35rem;
        margin: 0;
        padding: 0;
        list-style: none;
        max-height: 50vh;
        overflow-y: auto;
      }
      .outcomes li {
        display: grid;
        grid-template-columns: 1.25rem minmax(6rem, auto) 1fr;
        gap: 0.5rem;
        align-items: baseline;
        padding: 0.4rem 0.6rem;
        border-radius: var(--nf-radius-sm);
        font-size: 0.875rem;
      }
      .ok {
        background: var(--nf-green-bg);
      }
      .ok .mark {
        color: var(--nf-green);
      }
      .failed {
        background: var(--nf-red-bg);
      }
      .failed .mark {
        color: var(--nf-red);
      }
      .held {
        display: grid;
        gap: 0.4rem;
        padding: 0.6rem 0.8rem;
        border-radius: var(--nf-radius-sm);
        font-size: 0.875rem;
      }
      .held ul {
        margin: 0;
        padding-left: 1.1rem;
      }
      .check {
        display: flex;
        gap: 0.5rem;
        align-items: center;
      }
      .check input {
        min-height: 0;
      }
      .host {
        font-family: var(--nf-mono);
        font-weight: 600;
      }
    `,
  ];

  /** `scope` says which hosts these are ("selected", "online"), for the title. */
  async show(kind: CommandKind, hosts: readonly string[], scope: string): Promise<void> {
    this._kind = kind;
    this._hosts = hosts;
    this._scope = scope;
    this._outcomes = null;
    this._held = heldAmong(this.store?.state.hosts ?? [], hosts);
    this._skipHeld = true;
    await this._modal.open({ focus: "#run" });
  }

  override render() {
    const kind = this._kind;
    return html`<dialog aria-labelledby="title">
      ${kind === null ? nothing : this._outcomes === null ? this.renderConfirm(kind) : this.renderOutcomes(kind, this._outcomes)}
    </dialog>`;
  }

  /** The hosts the command goes to: the held ones only when the person says so. */
  private targets(): readonly string[] {
    return bulkTargets(this._hosts, this._held, this._skipHeld);
  }

  private renderConfirm(kind: CommandKind) {
    const n = this.targets().length;
    return html`<div class="dialog-body">
      <h2 id="title">${COMMAND_LABELS[kind]} on ${n} ${this._scope} ${pluralWord(n, "host")}?</h2>
      <p>Each host will ${COMMAND_HINTS[kind]}. A host that is already busy refuses and says so below.</p>
      <ul class="host-list" aria-label="hosts">
        ${this.targets().map((host) => html`<li>${host}</li>`)}
      </ul>
      ${this._held.length > 0
        ? html`<div class="tone-warn held" role="note">
            <p>${this._held.length} of these hosts ${pluralWord(this._held.length, "is", "are")} held:</p>
            <ul>
              ${this._held.map(({ name, hold }) => html`<li><span class="host">${name}</span> — ${holdTitle(hold)}</li>`)}
            </ul>
            <label class="check"
              ><input type="checkbox" .checked=${this._skipHeld} @change=${(e: Event) => (this._skipHeld = (e.target as HTMLInputElement).checked)} /> Leave the
              held hosts out</label
            >
          </div>`
        : nothing}
      <div class="actions">
        <button class="btn" @click=${() => this._modal.close()}>Cancel</button>
        <button id="run" class="btn primary" ?disabled=${this._busy || n === 0} @click=${() => this.run(kind)}>
          ${this._busy ? "Sending…" : `${COMMAND_LABELS[kind]} ${plural(n, "host")}`}
        </button>
      </div>
    </div>`;
  }

  private renderOutcomes(kind: CommandKind, outcomes: BulkOutcome[]) {
    const failed = outcomes.filter((outcome) => !outcome.ok).length;
    return html`<div class="dialog-body">
      <h2 id="title">${COMMAND_LABELS[kind]}: ${outcomes.length - failed} queued${failed ? `, ${failed} refused` : ""}</h2>
      <ul class="outcomes" role="list" aria-live="polite">
        ${outcomes.map((outcome) =>
          outcome.ok
            ? html`<li class="ok"><span class="mark" aria-hidden="true">✓</span><span class="host">${outcome.host}</span><span>queued</span></li>`
            : html`<li class="failed">
                <span class="mark" aria-hidden="true">✕</span><span class="host">${outcome.host}</span><span>${outcome.message}</span>
              </li>`,
        )}
      </ul>
      <div class="actions"><button id="close" class="btn primary" @click=${() => this._modal.close()}>Close</button></div>
    </div>`;
  }

  private async run(kind: CommandKind): Promise<void> {
    const store = this.store;
    if (!store) return;
    this._busy = true;
    try {
      this._outcomes = await sendToHosts((host, k) => store.sendCommand(host, k), this.targets(), kind);
    } finally {
      this._busy = false;
    }
    await this._modal.focus("#close");
    this.dispatchEvent(new CustomEvent("nf-bulk-done", { bubbles: true, composed: true }));
  }
}

customElements.define("nf-bulk-dialog", NfBulkDialog);

declare global {
  interface HTMLElementTagNameMap {
    "nf-bulk-dialog": NfBulkDialog;
  }
}
