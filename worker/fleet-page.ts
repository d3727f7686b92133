/**
 * The dashboard's page with the fleet table already in it: what `GET /` answers to a signed-in viewer
 * (worker/routes/fleet-page.ts). The page is plain markup inside <nf-app>, styled by the page's own
 * stylesheet (ui/index.html, allowed by its hash), so it paints before any module runs; when nf-app is
 * defined its shadow root hides it, and the components render from the answers the page carries (the
 * fleet, the same value `GET /api/hosts` answers, from the same loadFleet, the health and the identity)
 * in the same task, so no frame shows neither. It lays out as the components' fleet page does, block for block
 * (banner, bar, title, summary, bulk toolbar, filter, table), so the table does not move when they take
 * over (test/browser/large-fleet.test.ts measures it). Every host-controlled string goes through
 * hono/html's escaping.
 */
import { html, raw } from "hono/html";
import { BULK_KINDS, COMMAND_LABELS } from "../common/command-labels.ts";
import { COMMAND_ROLE, HOST_ADMIN_ROLE, roleDenial, roleNote } from "../common/permissions.ts";
import { summarizeFleet } from "../common/compartments.ts";
import { COMPARTMENT_NAMES, type CompartmentName, type CompartmentState, type HostView, type MeResponse, type RepoState } from "../common/protocol.ts";
import { COMPARTMENT_TITLES, stateDisplay } from "../common/compartments/display.ts";
import { FIRST_ROWS, PLATFORM_NAMES, WRITTEN_ROWS } from "../common/fleet-table.ts";
import { DEVELOPMENT_MODE_WARNING, formatAge, plural, pluralWord, shortSha } from "../common/text.ts";

/** The id of the page's data block holding the fleet answer (read by ui/nf-app.ts). */
export const FLEET_ANSWER_ID = "nf-fleet-answer";
/** The id of the page's data block holding the health answer (read by ui/nf-app.ts): it decides the banner. */
export const HEALTH_ANSWER_ID = "nf-health-answer";
/** The id of the page's data block holding the identity it was written for, `GET /api/me`'s answer (read by ui/nf-app.ts). */
export const ME_ANSWER_ID = "nf-me-answer";
/** What the static page shows until nf-app is defined; the fleet page puts the table there. */
export const PLACEHOLDER = "<nf-app>Loading NixFleet…</nf-app>";
/** The static page's preloads of the answers: the fleet page carries both, so it asks for neither. */
export const FLEET_PRELOAD = '<link rel="preload" href="/api/hosts" as="fetch" crossorigin />';
/** The element right after the written table; the fleet page's first frame waits for it (fleetPageHtml). */
export const TABLE_END_ID = "nf-table-end";
/**
 * Holds the page's first frame until the written table is parsed. Without it Chromium's parser yields after a
 * few hundred tokens and paints what it has (the bar and the summary); that frame's style, layout and raster,
 * cold, then sit before the table's own frame (bench:ui's trace). Not a fetch, so the CSP has nothing to allow.
 */
export const TABLE_RENDER_BLOCK = `<link rel="expect" href="#${TABLE_END_ID}" blocking="render" />`;
export const HEALTH_PRELOAD = '<link rel="preload" href="/api/health" as="fetch" crossorigin />';

type Fleet = { hosts: HostView[]; repo?: RepoState | null };
/**
 * What the page says besides the fleet: whether the control plane runs without Access (the banner), and who
 * it was written for, so what that role may not do is disabled from the first frame, as the components do it.
 */
export interface PageContext {
  development: boolean;
  me: MeResponse | null;
}

/** The components' summary lists a compartment's states in this order (ui/components/nf-fleet-header.ts). */
const STATE_ORDER: readonly CompartmentState[] = ["red", "yellow", "blue", "gray", "green"];

const presence = (host: HostView, now: number) =>
  host.online ? "online" : host.lastSeenAt === null ? "never connected" : `offline · ${formatAge(host.lastSeenAt, now)}`;

function row(host: HostView, now: number) {
  const commit = host.report?.repo.commit.value ?? null;
  return html`<div class="tr row" role="row" data-host="${host.name}">
<div class="td select" role="cell"><input type="checkbox" disabled aria-label="Select ${host.name}"></div>
<div class="td name" role="rowheader"><a href="/hosts/${encodeURIComponent(host.name)}">${host.name}</a>${host.hold ? html` <span class="pill tone-warn">held</span>` : ""}${host.diskLow ? html` <span class="pill tone-warn">${host.diskLow}</span>` : ""}</div>
<div class="td" role="cell">${PLATFORM_NAMES[host.platform]}</div>
<div class="td" role="cell"><span class="presence ${host.online ? "online" : "offline"}"><span class="dot"></span>${presence(host, now)}</span></div>
<div class="td mono" role="cell">${host.report?.agentVersion ?? "—"}</div>
<div class="td mono" role="cell">${commit ? shortSha(commit) : "—"}</div>
${COMPARTMENT_NAMES.map((name) => {
  const { state, stale } = host.compartments[name];
  const { icon, label } = stateDisplay(name, state);
  return html`<div class="td compartment" role="cell"><span class="cell state-${state}${stale ? " stale" : ""}"><span class="icon" aria-hidden="true">${icon}</span> ${label}${stale ? html`<span class="stale-tag">last known</span>` : ""}</span></div>`;
})}<div class="td menu" role="cell"><span class="icon-btn" aria-hidden="true">⋮</span></div>
</div>`;
}

/** The target commit, as the components' summary shows it before its Refresh button has loaded. */
function target(repo: RepoState | null, now: number) {
  const head = repo?.head ?? null;
  if (repo === null || head === null) {
    return html`<h2>Target commit</h2><div class="muted">unknown — ${repo === null ? "the control plane has not read the repository yet" : `${repo.branch} not read yet`}</div>`;
  }
  return html`<h2>Target commit</h2><div class="target-line"><span class="mono">${repo.branch} @</span> <a class="sha" href="https://github.com/${repo.repository}/commit/${head.sha}" target="_blank" rel="noopener noreferrer">${shortSha(head.sha)}</a></div>
<span class="message">${head.message.split("\n", 1)[0]!.trim()}</span>
<div class="meta">${head.author} · ${formatAge(head.committedAt, now)} · ${repo.repository}</div>
<button class="btn small primary deploy">Deploy ${repo.branch}…</button>`;
}

function counts(name: CompartmentName, counts: Record<CompartmentState, number>) {
  const states = STATE_ORDER.filter((state) => counts[state] > 0);
  return html`<div class="count"><h3>${COMPARTMENT_TITLES[name]}</h3>${
    states.length === 0
      ? html`<span class="none">—</span>`
      : html`<ul class="chips">${states.map((state) => html`<li class="chip state-${state}"><span aria-hidden="true">${stateDisplay(name, state).icon}</span>${counts[state]}</li>`)}</ul>`
  }</div>`;
}

/**
 * The fleet page's blocks and its table as the components' first frame holds them, with the first WRITTEN_ROWS rows
 * written and an empty row of the same height (ui/index.html) for each of the others up to FIRST_ROWS, so the page
 * is as tall as the components' and nothing below the screen moves when their rows take those places.
 */
export function fleetTableMarkup(fleet: Fleet, now: number, context: PageContext = { development: false, me: null }): string {
  const hosts = fleet.hosts;
  const rows = hosts.slice(0, WRITTEN_ROWS).map((host) => row(host, now));
  const reserved = '<div class="tr reserved" aria-hidden="true"></div>'.repeat(Math.max(0, Math.min(hosts.length, FIRST_ROWS) - WRITTEN_ROWS));
  const online = hosts.filter((host) => host.online).length;
  const summary = summarizeFleet(hosts.map((host) => host.compartments));
  const reboot = hosts.filter((host) => host.rebootNeeded === true).length;
  const scope = online > 0 ? `All ${online} online ${pluralWord(online, "host")}:` : "No host online — select hosts to queue commands for them:";
  const note = roleNote(context.me);
  const addDenied = roleDenial(context.me, HOST_ADMIN_ROLE);
  const commandDenied = roleDenial(context.me, COMMAND_ROLE);
  const bulkDisabled = online === 0 || commandDenied !== null;
  return html`<div class="first-table" aria-busy="true">
${context.development ? html`<section class="dev" aria-label="Development mode"><strong>${DEVELOPMENT_MODE_WARNING.headline}</strong> ${DEVELOPMENT_MODE_WARNING.detail}</section>` : ""}
<header><div class="bar"><a class="brand" href="/"><span class="logo" aria-hidden="true">❄</span>NixFleet</a><nav aria-label="Main"><a href="/" aria-current="page">Fleet</a><a href="/rollouts">Updates</a><a href="/audit">Audit log</a><a href="/settings">Settings</a></nav><span class="spacer"></span><span class="connection"><span class="dot"></span>connecting…</span></div></header>
<main><div class="panel">
<div class="title-row"><h1>Fleet</h1><span class="spacer"></span>${note !== null ? html`<span class="role-note">${note}</span>` : ""}<button class="btn primary"${addDenied !== null ? html` disabled title="${addDenied}"` : ""}><span aria-hidden="true">+</span> Add host</button></div>
${hosts.length === 0 ? "" : html`<div class="summary card"><section>${target(fleet.repo ?? null, now)}</section><section><h2>${plural(hosts.length, "host")} · ${online} online</h2><div class="counts">${COMPARTMENT_NAMES.map((name) => counts(name, summary[name]))}</div></section></div>
<div class="bulk card"><span class="scope">${scope}</span>${BULK_KINDS.map((kind) => html`<button class="btn small"${bulkDisabled ? html` disabled` : ""}${commandDenied !== null ? html` title="${commandDenied}"` : ""}>${COMMAND_LABELS[kind]}</button>`)}</div>
<div class="filters"><label><input type="checkbox" disabled> Reboot needed (${reboot})</label></div>
<div class="scroller"><div class="table" role="table" aria-label="Fleet" aria-rowcount="${hosts.length + 1}">
<div class="tr head" role="row"><div class="th select"><input type="checkbox" disabled aria-label="Select all hosts"></div><div class="th">Host</div><div class="th">Platform</div><div class="th">Status</div><div class="th">Version</div><div class="th">Commit</div>${COMPARTMENT_NAMES.map((name) => html`<div class="th">${COMPARTMENT_TITLES[name]}</div>`)}<div class="th"></div></div>
${rows}${raw(reserved)}
</div></div><div id="${TABLE_END_ID}" hidden></div>`}
</div></main></div>`.toString();
}

/**
 * An answer as a data block: JSON is not run, so the CSP has nothing to allow, and "<" is written as
 * \u003c so that no host name can close the element; JSON.parse gives back the same value.
 */
export function answerBlock(id: string, answerJson: string): string {
  return `<script type="application/json" id="${id}">${answerJson.replace(/</g, "\\u003c")}</script>`;
}

/** The fleet answer's data block. */
export const fleetAnswerBlock = (answerJson: string): string => answerBlock(FLEET_ANSWER_ID, answerJson);

/**
 * The fleet page from its template (dist/ui/fleet-page.html), the fleet answer and, when given, the health
 * answer with the context it says (and the identity's answer, when the context names one); null if the
 * template lacks a marker. The data blocks follow the markup, so the table is parsed before them.
 */
export function fleetPageHtml(template: string, fleet: Fleet, answerJson: string, now: number, health?: { json: string; context: PageContext }): string | null {
  if (!template.includes(PLACEHOLDER) || !template.includes("</body>")) return null;
  const me = health?.context.me ?? null;
  const blocks =
    fleetAnswerBlock(answerJson) +
    (health ? answerBlock(HEALTH_ANSWER_ID, health.json) : "") +
    (me !== null ? answerBlock(ME_ANSWER_ID, JSON.stringify(me)) : "");
  return template
    .replace(FLEET_PRELOAD, fleet.hosts.length > 0 ? TABLE_RENDER_BLOCK : "")
    .replace(health ? HEALTH_PRELOAD : FLEET_PRELOAD, "")
    .replace(PLACEHOLDER, () => `<nf-app>${fleetTableMarkup(fleet, now, health?.context)}</nf-app>`)
    .replace("</body>", () => `${blocks}</body>`);
}
