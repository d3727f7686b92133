import { LitElement, css, html, nothing } from "lit";
import type { MeResponse, UpdatePr } from "../../common/protocol.ts";
import { currentBuild } from "../common/fleet-build.ts";
import { BUILD_STEPS, VERDICTS, hostBuildDetail } from "../common/fleet-build-lines.ts";
import { notify } from "../common/notify.ts";
import { COMMAND_ROLE, roleDenial } from "../../common/permissions.ts";
import { hostPath } from "../common/route.ts";
import type { FleetStore } from "../data/store.ts";
import { sharedStyles } from "../styles/shared.ts";
import { plural } from "../../common/text.ts";

/**
 * The update PR's fleet build on its banner (docs/fleet-build.md): the
 * verdict, one line per host as the events move it, and Build on all hosts.
 */
export class NfFleetBuildStatus extends LitElement {
  static override properties = {
    pr: { attribute: false },
    store: { attribute: false },
    now: { type: Number },
    _me: { state: true },
    _busy: { state: true },
  };
  declare pr: UpdatePr | null;
  declare store: FleetStore | null;
  declare now: number;
  private declare _me: MeResponse | null;
  private declare _busy: boolean;
  private _unsubscribe: (() => void) | null = null;

  constructor() {
    super();
    this.pr = null;
    this.store = null;
    this.now = Date.now();
    this._me = null;
    this._busy = false;
  }

  static override styles = [
    sharedStyles,
    css`
      :host {
        display: grid;
        gap: 0.35rem;
        font-size: 0.8125rem;
        /* nix's error lines hold store paths: they break anywhere rather than widen the page. */
        overflow-wrap: anywhere;
      }
      .top {
        display: flex;
        flex-wrap: wrap;
        align-items: center;
        gap: 0.3rem 0.6rem;
      }
      .spacer {
        flex: 1;
      }
      ul {
        display: grid;
        grid-template-columns: repeat(auto-fill, minmax(min(19rem, 100%), 1fr));
        gap: 0.2rem 1rem;
        margin: 0;
        padding: 0;
        list-style: none;
      }
      li {
        display: flex;
        flex-wrap: wrap;
        align-items: baseline;
        gap: 0.1rem 0.45rem;
      }
      li > a:first-child {
        font-family: var(--nf-mono);
        font-weight: 600;
      }
    `,
  ];

  // The role decides whether the button is offered; the store says when it is known.
  override connectedCallback(): void {
    super.connectedCallback();
    this.subscribe();
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this._unsubscribe?.();
    this._unsubscribe = null;
  }

  protected override willUpdate(changed: Map<PropertyKey, unknown>): void {
    if (changed.has("store")) this.subscribe();
  }

  private subscribe(): void {
    this._unsubscribe?.();
    this._unsubscribe = this.isConnected && this.store ? this.store.subscribe((state) => (this._me = state.me)) : null;
  }

  override render() {
    const pr = this.pr;
    if (pr === null) return nothing;
    const build = currentBuild(pr);
    const denied = roleDenial(this._me, COMMAND_ROLE);
    const verdict = build ? VERDICTS[build.verdict] : null;
    return html`<div class="top">
        <strong>Fleet build</strong>
        ${build && verdict
          ? html`<span class="pill tone-${verdict.tone}" data-verdict=${build.verdict}>${verdict.label}</span>
              <span class="verdict" role="status">${build.description}</span>`
          : html`<span class="muted verdict" role="status">not built on the hosts yet</span>`}
        ${build?.githubStatus?.error ? html`<span class="error-text">GitHub status not posted: ${build.githubStatus.error}</span>` : nothing}
        <span class="spacer"></span>
        <button
          class="btn small"
          id="build-all"
          ?disabled=${denied !== null || this._busy || this.store === null}
          title=${denied ?? "build this PR's head on every host again, without switching any"}
          @click=${() => this.buildAll(pr.number)}
        >
          ${this._busy ? "Starting…" : "Build on all hosts"}
        </button>
      </div>
      ${build
        ? html`<ul aria-label="Fleet build per host">
            ${build.hosts.map((host) => {
              const step = BUILD_STEPS[host.state];
              const detail = hostBuildDetail(host, this.now);
              return html`<li data-host=${host.name} data-state=${host.state}>
                <a href=${hostPath(host.name)}>${host.name}</a><span class="pill tone-${step.tone}"><span aria-hidden="true">${step.icon}</span>${step.label}</span>${detail
                  ? html`<span class="muted">${detail}</span>`
                  : nothing}${host.counted || host.reason?.startsWith("not counted") ? nothing : html`<span class="muted">(not counted)</span>`}${host.commandId
                  ? html`<a href=${hostPath(host.name, host.commandId)}>log</a>`
                  : nothing}
              </li>`;
            })}
          </ul>`
        : nothing}`;
  }

  private async buildAll(pr: number): Promise<void> {
    const store = this.store;
    if (!store) return;
    this._busy = true;
    try {
      const build = await store.buildUpdatePr(pr);
      notify(this, `Building PR #${pr} on ${plural(build.hosts.length, "host")}`);
    } catch (err) {
      notify(this, `Could not start the fleet build: ${err instanceof Error ? err.message : String(err)}`, "error");
    } finally {
      this._busy = false;
    }
  }
}

customElements.define("nf-fleet-build-status", NfFleetBuildStatus);

declare global {
  interface HTMLElementTagNameMap {
    "nf-fleet-build-status": NfFleetBuildStatus;
  }
}
