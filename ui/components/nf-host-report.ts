import { LitElement, css, html, nothing } from "lit";
import { describeDesiredChanges } from "../../common/compartments/desired-changes.ts";
import type { HostView, Report, TestRun } from "../../common/protocol.ts";
import { shortSha } from "../common/format.ts";
import { hostSectionStyles } from "../styles/host-section.ts";
import { sharedStyles } from "../styles/shared.ts";
import { formatAge, formatDuration, localTimestamp, storePathName } from "../../common/text.ts";

type Known = { value: string | null; reason?: string | undefined };

/** The host's last report, as the agent sent it. */
export class NfHostReport extends LitElement {
  static override properties = {
    host: { attribute: false },
    now: { type: Number },
  };
  declare host: HostView | null;
  declare now: number;

  constructor() {
    super();
    this.host = null;
    this.now = Date.now();
  }

  static override styles = [
    sharedStyles,
    hostSectionStyles,
    css`
      h2 .muted {
        font-weight: 400;
        font-size: 0.8125rem;
      }
      dl {
        display: grid;
        grid-template-columns: max-content minmax(0, 1fr);
        gap: 0.35rem 1rem;
        margin: 0;
        padding: 0.8rem 0.9rem;
        font-size: 0.875rem;
      }
      dt {
        color: var(--nf-text-muted);
      }
      dd {
        margin: 0;
        overflow-wrap: anywhere;
      }
      .unknown {
        color: var(--nf-text-muted);
        font-style: italic;
      }
      .tests {
        display: grid;
        gap: 0.25rem;
        margin: 0;
        padding: 0;
        list-style: none;
      }
      details summary {
        cursor: pointer;
      }
      details pre {
        margin: 0.3rem 0 0.3rem 1.2rem;
        padding: 0.4rem 0.6rem;
        max-height: 12rem;
        overflow: auto;
        background: var(--nf-code-bg);
        border-radius: var(--nf-radius-sm);
        font-size: 0.75rem;
        white-space: pre-wrap;
      }
      .pass {
        color: var(--nf-green);
      }
      .fail {
        color: var(--nf-red);
      }
      .empty {
        padding: 0.9rem;
        color: var(--nf-text-muted);
      }
    `,
  ];

  override render() {
    const host = this.host;
    const report = host?.report ?? null;
    if (host === null || report === null) {
      return html`<h2>Last report</h2>
        <div class="empty">No report yet: the agent has not connected${host?.online ? " (it is online; the first report is on its way)" : ""}.</div>`;
    }
    return html`<h2>
        Last report
        ${host.reportedAt
          ? html`<span class="muted" title=${localTimestamp(host.reportedAt)}>· ${formatAge(host.reportedAt, this.now)}</span>`
          : nothing}
      </h2>
      <dl>
        <dt>Agent</dt>
        <dd class="mono">${report.agentVersion}</dd>
        <dt>Operating system</dt>
        <dd>${this.known(report.os)}</dd>
        <dt>nixpkgs</dt>
        <dd class="mono">${this.known(report.nixpkgsVersion)}</dd>
        <dt>Nix</dt>
        <dd class="mono">${this.known(report.nixVersion)}</dd>
        <dt>Commit</dt>
        <dd>${this.commit(report)}</dd>
        <dt>Lock hash</dt>
        <dd class="mono" title=${report.lock.hash.value ?? ""}>
          ${report.lock.hash.value ? shortSha(report.lock.hash.value, 12) : this.known(report.lock.hash)}
        </dd>
        <dt>Running system</dt>
        <dd class="mono" title=${report.system.current.value ?? ""}>
          ${report.system.current.value ? storePathName(report.system.current.value) : this.known(report.system.current)}
        </dd>
        ${this.mainSystem(report)}
        ${report.system.desired
          ? html`<dt>Clone builds</dt>
              <dd class="mono" title=${report.system.desired.value ?? ""}>
                ${report.system.desired.value ? storePathName(report.system.desired.value) : this.known(report.system.desired)}
              </dd>`
          : nothing}
        <dt>Built from</dt>
        <dd class="mono">${report.system.builtFromCommit ? shortSha(report.system.builtFromCommit) : html`<span class="unknown">not switched by NixFleet yet</span>`}</dd>
        <dt>Tests</dt>
        <dd>${this.tests(report)}</dd>
        <dt>Uptime</dt>
        <dd>
          ${report.uptimeSeconds === null ? html`<span class="unknown">unknown</span>` : formatDuration(report.uptimeSeconds * 1000)}
          <span class="muted">· agent ${formatDuration(report.agentUptimeSeconds * 1000)}</span>
        </dd>
        <dt>Rollout</dt>
        <dd>
          ${report.rollout.autoUpdate ? "auto-update" : "held from auto-update"} · priority ${report.rollout.priority}${report.rollout.canary
            ? " · canary"
            : ""}
        </dd>
      </dl>`;
  }

  /** Main's system as the host's last evaluation found it, and what getting it takes: downloaded from the cache, or built here. */
  private mainSystem(report: Report) {
    const latest = report.desired?.latest ?? null;
    if (latest === null || !("outPath" in latest)) return nothing;
    const running = latest.outPath === report.system.current.value;
    const note = running ? "running it" : latest.changes === null ? null : (describeDesiredChanges(latest.changes) ?? "built here, ready to activate");
    return html`<dt>Main's system</dt>
      <dd>
        <span class="mono" title=${latest.outPath}>${storePathName(latest.outPath)}</span>
        <span class="muted">at ${shortSha(latest.commit)}${note === null ? "" : ` · ${note}`}</span>
      </dd>`;
  }

  private known(value: Known) {
    return value.value ?? html`<span class="unknown">unknown${value.reason ? ` — ${value.reason}` : ""}</span>`;
  }

  private commit(report: Report) {
    const commit = report.repo.commit.value;
    if (commit === null) return this.known(report.repo.commit);
    const branch = report.repo.branch.value;
    return html`<span class="mono" title=${commit}>${shortSha(commit)}</span>${branch ? html` on <span class="mono">${branch}</span>` : nothing}${report
      .repo.dirty
      ? html` <span class="pill tone-warn">local changes</span>`
      : nothing}`;
  }

  private tests(report: Report) {
    if (!report.tests.configured) return html`<span class="unknown">none configured</span>`;
    const run: TestRun | null = report.tests.last;
    const auto = report.tests.autoRunAfterSwitch ? " · run after every switch" : "";
    if (run === null) return html`not run yet${auto}`;
    return html`<span class="muted">last run ${formatAge(run.finishedAt, this.now)}${auto}</span>
      <ul class="tests">
        ${run.results.map(
          (result) =>
            html`<li>
              <details>
                <summary>
                  <span class=${result.passed ? "pass" : "fail"} aria-hidden="true">${result.passed ? "✓" : "✕"}</span>
                  ${result.name} <span class="muted">· ${result.passed ? "passed" : `failed${result.exitCode !== null ? ` (exit ${result.exitCode})` : ""}`} ·
                  ${formatDuration(result.durationMs)}</span>
                </summary>
                ${result.output ? html`<pre tabindex="0">${result.output}</pre>` : html`<pre class="muted">no output</pre>`}
              </details>
            </li>`,
        )}
      </ul>`;
  }
}

customElements.define("nf-host-report", NfHostReport);

declare global {
  interface HTMLElementTagNameMap {
    "nf-host-report": NfHostReport;
  }
}
