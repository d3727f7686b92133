/**
 * The dashboard's page with the fleet table already in it: what `GET /` answers to a signed-in viewer
 * (worker/routes/fleet-page.ts). The table is plain markup inside <nf-app>, styled by the page's own
 * stylesheet (ui/index.html, allowed by its hash), so it paints before any module runs; when nf-app is
 * defined its shadow root hides it, and the components render from the fleet answer the page carries
 * (the same value `GET /api/hosts` answers, from the same loadFleet) in the same task, so no frame shows
 * neither. Every host-controlled string goes through hono/html's escaping.
 */
import { html } from "hono/html";
import { COMPARTMENT_NAMES, type HostView } from "../common/protocol.ts";
import { COMPARTMENT_TITLES, stateDisplay } from "../common/compartments/display.ts";
import { FIRST_ROWS, PLATFORM_NAMES } from "../common/fleet-table.ts";
import { formatAge } from "../common/text.ts";

/** The id of the page's data block holding the fleet answer (read by ui/nf-app.ts). */
export const FLEET_ANSWER_ID = "nf-fleet-answer";
/** What the static page shows until nf-app is defined; the fleet page puts the table there. */
export const PLACEHOLDER = "<nf-app>Loading NixFleet…</nf-app>";
/** The static page's preload of the fleet answer: the fleet page carries the answer, so it asks for none. */
export const FLEET_PRELOAD = '<link rel="preload" href="/api/hosts" as="fetch" crossorigin />';

type Fleet = { hosts: HostView[] };

const presence = (host: HostView, now: number) =>
  host.online ? "online" : host.lastSeenAt === null ? "never connected" : `offline · ${formatAge(host.lastSeenAt, now)}`;

function row(host: HostView, now: number) {
  const commit = host.report?.repo.commit.value ?? null;
  return html`<div class="tr row" role="row" data-host="${host.name}">
<div class="td select" role="cell"><input type="checkbox" disabled aria-label="Select ${host.name}"></div>
<div class="td name" role="rowheader"><a href="/hosts/${encodeURIComponent(host.name)}">${host.name}</a>${host.hold ? html`<span class="pill tone-warn">held</span>` : ""}${host.diskLow ? html`<span class="pill tone-warn">${host.diskLow}</span>` : ""}</div>
<div class="td" role="cell">${PLATFORM_NAMES[host.platform]}</div>
<div class="td" role="cell"><span class="presence${host.online ? " online" : ""}"><span class="dot"></span>${presence(host, now)}</span></div>
<div class="td" role="cell">${host.report?.agentVersion ?? "—"}</div>
<div class="td" role="cell">${commit ? commit.slice(0, 7) : "—"}</div>
${COMPARTMENT_NAMES.map((name) => {
  const { state, stale } = host.compartments[name];
  return html`<div class="td compartment" role="cell"><span class="cell state-${state}${stale ? " stale" : ""}">${stateDisplay(name, state).label}</span></div>`;
})}<div class="td" role="cell"></div>
</div>`;
}

/** The first FIRST_ROWS rows of the fleet table, as the fleet table's first frame holds them. */
export function fleetTableMarkup(fleet: Fleet, now: number): string {
  const rows = fleet.hosts.slice(0, FIRST_ROWS).map((host) => row(host, now));
  return html`<div class="first-table" aria-busy="true">
<header class="bar"><span class="brand">NixFleet</span></header>
<main><h1>Fleet</h1>
<div class="scroller"><div class="table" role="table" aria-label="Fleet" aria-rowcount="${fleet.hosts.length + 1}">
<div class="tr head" role="row"><div class="th"></div><div class="th">Host</div><div class="th">Platform</div><div class="th">Status</div><div class="th">Version</div><div class="th">Commit</div>${COMPARTMENT_NAMES.map((name) => html`<div class="th">${COMPARTMENT_TITLES[name]}</div>`)}<div class="th"></div></div>
${rows}
</div></div></main></div>`.toString();
}

/**
 * The answer as a data block: JSON is not run, so the CSP has nothing to allow, and "<" is written as
 * \u003c so that no host name can close the element; JSON.parse gives back the same value.
 */
export function fleetAnswerBlock(answerJson: string): string {
  return `<script type="application/json" id="${FLEET_ANSWER_ID}">${answerJson.replace(/</g, "\\u003c")}</script>`;
}

/** The fleet page from its template (dist/ui/fleet-page.html) and the fleet answer; null if the template lacks a marker. */
export function fleetPageHtml(template: string, fleet: Fleet, answerJson: string, now: number): string | null {
  if (!template.includes(PLACEHOLDER) || !template.includes("</body>")) return null;
  return template
    .replace(FLEET_PRELOAD, "")
    .replace(PLACEHOLDER, () => `<nf-app>${fleetTableMarkup(fleet, now)}</nf-app>`)
    .replace("</body>", () => `${fleetAnswerBlock(answerJson)}</body>`);
}
