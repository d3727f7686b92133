import { LitElement, css, html, nothing } from "lit";
import type { RolloutIncident } from "../../common/protocol.ts";
import { localTimestamp, roughDuration } from "../../common/text.ts";
import { sharedStyles } from "../styles/shared.ts";

/** "h3's tests failed 2 h after this update", "db1 turned red 25 min after this update". */
export function incidentLine(incident: RolloutIncident): string {
  const after = roughDuration(Date.parse(incident.at) - Date.parse(incident.switchedAt));
  if (incident.event === "tests-failed") return `${incident.host}'s tests failed ${after} after this update`;
  if (incident.event === "disk-low") return `${incident.host} ran low on disk space ${after} after this update`;
  return `${incident.host} turned red ${after} after this update`;
}

/** An Update history entry's hosts that turned red within the link window after the rollout switched them. */
export class NfRolloutIncidents extends LitElement {
  static override properties = { incidents: { attribute: false } };
  declare incidents: readonly RolloutIncident[];

  constructor() {
    super();
    this.incidents = [];
  }

  static override styles = [
    sharedStyles,
    css`
      ul {
        display: grid;
        gap: 0.2rem;
        margin: 0;
        padding: 0 0.9rem 0.7rem;
        list-style: none;
        font-size: 0.875rem;
      }
      li {
        color: var(--nf-red);
      }
    `,
  ];

  override render() {
    if (this.incidents.length === 0) return nothing;
    return html`<ul aria-label="Hosts that turned red after this update">
      ${this.incidents.map((incident) => html`<li data-host=${incident.host} title=${`${localTimestamp(incident.at)}: ${incident.reason}`}>${incidentLine(incident)}</li>`)}
    </ul>`;
  }
}

customElements.define("nf-rollout-incidents", NfRolloutIncidents);

declare global {
  interface HTMLElementTagNameMap {
    "nf-rollout-incidents": NfRolloutIncidents;
  }
}
