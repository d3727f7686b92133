import { LitElement, css, html, nothing, type PropertyValues } from "lit";
import { isFinalCommandState, type CommandView } from "../../common/protocol.ts";
import { COMMAND_LABELS, commandStateDisplay } from "../common/actions.ts";
import { commandDuration } from "../common/format.ts";
import { OutputLines, classifyLines, type LineKind } from "../common/output-lines.ts";
import type { CommandOutput } from "../data/fleet-state.ts";
import { sharedStyles } from "../styles/shared.ts";
import { formatDuration, localTimestamp } from "../../common/text.ts";

/** More lines than this and only the end is drawn; the rest is a click away in the raw output. */
const MAX_LINES = 5000;

const GUTTER: Record<LineKind, string> = { stdout: "", stderr: "stderr", error: "error", system: "agent" };

/**
 * A command's output as it streams: stderr marked but neutral (git and nix
 * write their progress there), errors red (classifyLines says which), the
 * agent's own (system) lines set apart, following the end unless the reader
 * scrolled up.
 */
export class NfCommandOutput extends LitElement {
  static override properties = {
    command: { attribute: false },
    output: { attribute: false },
    now: { type: Number },
    _follow: { state: true },
  };
  declare command: CommandView | null;
  declare output: CommandOutput | null;
  declare now: number;
  private declare _follow: boolean;
  private get _log(): HTMLElement | null {
    return this.renderRoot.querySelector<HTMLElement>(".log");
  }
  private _lines = new OutputLines();
  private _linesFor: string | null = null;
  private _taken = 0;

  constructor() {
    super();
    this.command = null;
    this.output = null;
    this.now = Date.now();
    this._follow = true;
  }

  static override styles = [
    sharedStyles,
    css`
      :host {
        display: block;
      }
      .head {
        display: flex;
        flex-wrap: wrap;
        align-items: center;
        gap: 0.4rem 0.6rem;
        padding: 0.7rem 0.9rem;
        border-bottom: 1px solid var(--nf-border);
      }
      h2 {
        margin: 0;
        font-size: 1rem;
      }
      .meta {
        font-size: 0.8125rem;
        color: var(--nf-text-muted);
      }
      .spacer {
        flex: 1;
      }
      .error {
        padding: 0.5rem 0.9rem;
        background: var(--nf-red-bg);
        color: var(--nf-red);
        font-family: var(--nf-mono);
        font-size: 0.8125rem;
        border-bottom: 1px solid var(--nf-border);
      }
      .error summary {
        cursor: pointer;
      }
      .error pre {
        margin: 0.35rem 0 0;
        max-height: 12rem;
        overflow: auto;
        white-space: pre-wrap;
        overflow-wrap: anywhere;
      }
      .log {
        height: clamp(14rem, 42vh, 30rem);
        margin: 0;
        padding: 0.5rem 0;
        overflow: auto;
        background: var(--nf-code-bg);
        font-family: var(--nf-mono);
        font-size: 0.8125rem;
        line-height: 1.45;
        border-radius: 0 0 var(--nf-radius) var(--nf-radius);
      }
      .line {
        display: flex;
        min-height: 1.45em;
        padding: 0 0.9rem 0 0;
        white-space: pre-wrap;
        overflow-wrap: anywhere;
      }
      .gutter {
        flex: none;
        width: 4.2rem;
        padding: 0 0.5rem 0 0.6rem;
        border-left: 3px solid transparent;
        color: var(--nf-text-muted);
        font-size: 0.6875rem;
        line-height: 1.9;
        text-transform: uppercase;
        user-select: none;
      }
      .stderr .gutter {
        border-left-color: var(--nf-border-strong);
      }
      .error-line {
        background: color-mix(in srgb, var(--nf-red-bg) 65%, transparent);
      }
      .error-line .gutter {
        border-left-color: var(--nf-red);
        color: var(--nf-red);
        font-weight: 700;
      }
      .system {
        color: var(--nf-blue);
        font-style: italic;
      }
      .system .gutter {
        border-left-color: var(--nf-blue);
        color: var(--nf-blue);
      }
      .placeholder {
        padding: 0.75rem 0.9rem;
        color: var(--nf-text-muted);
        font-family: inherit;
        font-style: italic;
      }
      .jump {
        position: sticky;
        bottom: 0.5rem;
        display: flex;
        justify-content: center;
        pointer-events: none;
      }
      .jump button {
        pointer-events: auto;
        box-shadow: var(--nf-shadow-lg);
      }
    `,
  ];

  protected override willUpdate(changed: PropertyValues<this>): void {
    if (!changed.has("output") && !changed.has("command")) return;
    const id = this.command?.id ?? null;
    const chunks = this.output?.chunks ?? [];
    const restarted = id !== this._linesFor || chunks.length < this._taken || (this._taken > 0 && chunks[this._taken - 1]?.seq !== this._lines.seq);
    if (restarted) {
      // Another command, or an earlier chunk filled in: draw from scratch.
      this._lines = new OutputLines();
      this._linesFor = id;
      this._taken = 0;
      if (changed.has("command")) this._follow = true;
    }
    this._lines.append(chunks.slice(this._taken));
    this._taken = chunks.length;
  }

  protected override updated(): void {
    const log = this._log;
    if (log && this._follow) log.scrollTop = log.scrollHeight;
  }

  override render() {
    const command = this.command;
    if (command === null) {
      return html`<div class="head"><h2>Output</h2></div>
        <div class="log"><div class="placeholder">No command yet: run one from a compartment above.</div></div>`;
    }
    const display = commandStateDisplay(command.state);
    const duration = commandDuration(command, this.now);
    const lines = this._lines.lines;
    const hidden = Math.max(0, lines.length - MAX_LINES);
    const shown = hidden > 0 ? lines.slice(hidden) : lines;
    const kinds = classifyLines(lines, command.state);
    const final = isFinalCommandState(command.state);
    return html`<div class="head" data-command=${command.id}>
        <h2>Output · ${COMMAND_LABELS[command.kind]}</h2>
        <span class="pill tone-${display.tone}" data-state=${command.state}><span aria-hidden="true">${display.icon}</span>${display.label}</span>
        ${command.exitCode !== null ? html`<span class="meta">exit ${command.exitCode}</span>` : nothing}
        <span class="spacer"></span>
        <span class="meta"
          >${localTimestamp(command.createdAt)} · ${command.actor}${duration !== null ? html` · ${formatDuration(duration)}` : nothing}</span
        >
      </div>
      ${command.error ? this.renderError(command.error) : nothing}
      <div class="log" role="log" aria-label="Output of ${COMMAND_LABELS[command.kind]}" tabindex="0" @scroll=${this.onScroll}>
        ${hidden > 0 ? html`<div class="line system"><span class="gutter">…</span>${hidden} earlier lines not shown</div>` : nothing}
        ${shown.map((line, i) => {
          const kind = kinds[hidden + i] ?? line.stream;
          return html`<div class="line ${line.stream}${kind === "error" ? " error-line" : ""}">
            <span class="gutter">${GUTTER[kind]}</span><span class="text">${line.text}</span>
          </div>`;
        })}
        ${lines.length === 0 ? html`<div class="placeholder">${this.placeholder(command, final)}</div>` : nothing}
        ${this.output?.truncated ? html`<div class="line system"><span class="gutter">agent</span>output truncated by the control plane</div>` : nothing}
        ${!this._follow && !final
          ? html`<div class="jump"><button class="btn small" @click=${this.jumpToEnd}>↓ Follow output</button></div>`
          : nothing}
      </div>`;
  }

  /** The agent's error: its first line at once, the rest (often the log's tail again) on request. */
  private renderError(error: string) {
    const [first = "", ...rest] = error.trim().split("\n");
    return html`<div class="error" role="alert">
      ${rest.length === 0
        ? first
        : html`<details>
            <summary>${first}</summary>
            <pre>${rest.join("\n")}</pre>
          </details>`}
    </div>`;
  }

  private placeholder(command: CommandView, final: boolean): string {
    if (this.output?.error) return `Could not load the output: ${this.output.error}`;
    if (this.output && !this.output.loaded) return "Loading output…";
    if (command.state === "queued") return "Queued: waiting for the host to pick it up…";
    if (!final) return "Waiting for output…";
    return "This command wrote no output.";
  }

  private onScroll(event: Event): void {
    const log = event.currentTarget as HTMLElement;
    const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 24;
    if (atEnd !== this._follow) this._follow = atEnd;
  }

  private jumpToEnd(): void {
    this._follow = true;
  }
}

customElements.define("nf-command-output", NfCommandOutput);

declare global {
  interface HTMLElementTagNameMap {
    "nf-command-output": NfCommandOutput;
  }
}
