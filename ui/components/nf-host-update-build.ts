import { LitElement, css, html, nothing } from "lit";
import type { FleetBuildHostView } from "../../common/protocol.ts";
import { buildMark, hostBuildNote } from "../common/fleet-build.ts";
import { hostPath } from "../common/route.ts";
import { sharedStyles } from "../styles/shared.ts";
import "./nf-closure-diff.ts";

/**
 * What the pending update PR does on one host, on its page: whether the
 * update built there, what it changes, the build's log, and the whole closure
 * diff behind a disclosure. The host page loads it only while an update PR's
 * build covers the host.
 */
export class NfHostUpdateBuild extends LitElement {
  static override properties = {
    pr: { type: Number },
    host: {},
    build: { attribute: false },
  };
  declare pr: number;
  declare host: string;
  declare build: FleetBuildHostView | null;

  constructor() {
    super();
    this.pr = 0;
    this.host = "";
    this.build = null;
  }

  static override styles = [
    sharedStyles,
    css`
      :host {
        display: grid;
        gap: 0.4rem;
        padding: 0.6rem 0.9rem;
        font-size: 0.875rem;
      }
      .build-line {
        display: flex;
        flex-wrap: wrap;
        align-items: baseline;
        gap: 0.3rem 0.6rem;
      }
    `,
  ];

  override render() {
    const build = this.build;
    if (build === null) return nothing;
    const mark = buildMark(build)!;
    return html`<div class="build-line">
        <strong>Update PR #${this.pr}</strong>
        <span class="pill tone-${mark.tone}">${mark.text}</span>
        <span class="build-note">${hostBuildNote(build)}</span>
        ${build.commandId ? html`<a href=${hostPath(this.host, build.commandId)}>build log</a>` : nothing}
      </div>
      ${build.closureDiff ? html`<nf-closure-diff .diff=${build.closureDiff}></nf-closure-diff>` : nothing}`;
  }
}

customElements.define("nf-host-update-build", NfHostUpdateBuild);

declare global {
  interface HTMLElementTagNameMap {
    "nf-host-update-build": NfHostUpdateBuild;
  }
}
