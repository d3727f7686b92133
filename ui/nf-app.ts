import { LitElement, css, html, nothing } from "lit";
import { parseRoute, navigate, type Route } from "./common/route.ts";
import type { NoticeDetail } from "./common/notify.ts";
import { DashboardApi } from "./data/api.ts";
import type { FleetState } from "./data/fleet-state.ts";
import { FleetStore, loadedOnStart } from "./data/store.ts";
import { sharedStyles } from "./styles/shared.ts";
import { DEVELOPMENT_MODE_WARNING } from "../common/text.ts";
import { NfLazyPage, preloadPage, type PageLoader } from "./components/nf-lazy-page.ts";
import "./panels/nf-fleet-panel.ts";

/**
 * Pages loaded the first time their route is shown, each from a chunk of its
 * own (scripts/build-ui.mjs), so the first paint does not carry them. To make
 * a page lazy, move its import from the static imports above to a line here,
 * e.g. `page: () => import("./panels/nf-page-panel.ts"),`; renderPage
 * stays as it is. Its module must be imported statically nowhere else (the
 * build refuses that). nf-lazy-page shows "Loading…" meanwhile, or the failure.
 */
const LAZY_PAGES: Partial<Record<Route["page"], PageLoader>> = {
  audit: () => import("./panels/nf-audit-panel.ts"),
  host: () => import("./panels/nf-host-panel.ts"),
  rollouts: () => import("./panels/nf-rollouts-panel.ts"),
  settings: () => import("./panels/nf-settings-panel.ts"),
};

interface Notice extends NoticeDetail {
  id: number;
}

const CONNECTION_LABELS = {
  connecting: "connecting…",
  live: "live",
  reconnecting: "reconnecting…",
  stopped: "not connected",
} as const;

/** The dashboard: routes, the store, the live connection, the notices. */
export class NfApp extends LitElement {
  static override properties = {
    _state: { state: true },
    _route: { state: true },
    _now: { state: true },
    _notices: { state: true },
  };
  private declare _state: FleetState | null;
  private declare _route: Route;
  private declare _now: number;
  private declare _notices: Notice[];
  private readonly _store = new FleetStore({
    // The answers GET / wrote into the page with the table (worker/fleet-page.ts's FLEET_ANSWER_ID, HEALTH_ANSWER_ID, ME_ANSWER_ID).
    api: new DashboardApi({
      pageFleet: document.getElementById("nf-fleet-answer")?.textContent ?? null,
      pageHealth: document.getElementById("nf-health-answer")?.textContent ?? null,
      pageMe: document.getElementById("nf-me-answer")?.textContent ?? null,
    }),
    connect: (handlers) =>
      loadedOnStart(() => import("./data/events.ts").then(({ EventStream, eventsUrl }) => new EventStream({ url: eventsUrl(location), ...handlers }))),
    // The task after the frame that first shows the fleet (the table renders in the microtasks after it is applied).
    afterFirstFleet: (run) => requestAnimationFrame(() => setTimeout(run)),
  });
  private _unsubscribe: (() => void) | null = null;
  private _ticker: ReturnType<typeof setInterval> | undefined;
  private _hostPagePrefetched = false;
  private _noticeId = 0;
  // Only focus moves after the await; a render error there is Lit's to report, so nothing waits on it.
  private readonly _onPopState = () => void this.routeChanged();
  private readonly _onClick = (event: MouseEvent) => this.interceptLink(event);
  private readonly _onNotice = (event: CustomEvent<NoticeDetail>) => this.addNotice(event.detail);

  constructor() {
    super();
    this._state = null;
    this._route = parseRoute(location.pathname, location.search);
    this._now = Date.now();
    this._notices = [];
  }

  static override styles = [
    sharedStyles,
    css`
      :host {
        display: block;
        min-height: 100vh;
      }
      .dev {
        padding: 0.4rem 1rem;
        background: var(--nf-yellow-bg);
        border-bottom: 1px solid color-mix(in srgb, var(--nf-yellow) 45%, transparent);
        color: var(--nf-text);
        font-size: 0.8125rem;
        text-align: center;
      }
      .dev strong {
        color: var(--nf-yellow);
      }
      header {
        position: sticky;
        top: 0;
        z-index: 5;
        border-bottom: 1px solid var(--nf-border);
        background: color-mix(in srgb, var(--nf-surface) 88%, transparent);
        backdrop-filter: blur(8px);
      }
      .bar {
        display: flex;
        align-items: center;
        gap: 1.25rem;
        max-width: 96rem;
        margin: 0 auto;
        padding: 0.55rem 1.25rem;
      }
      .brand {
        display: inline-flex;
        align-items: center;
        gap: 0.5rem;
        color: var(--nf-text);
        font-weight: 700;
        font-size: 1.05rem;
        text-decoration: none;
      }
      .logo {
        display: inline-grid;
        place-items: center;
        width: 1.75rem;
        height: 1.75rem;
        border-radius: 7px;
        background: linear-gradient(135deg, var(--nf-accent), #7ebae4);
        color: #fff;
        font-size: 0.95rem;
      }
      nav {
        display: flex;
        gap: 0.25rem;
      }
      nav a {
        padding: 0.35rem 0.7rem;
        border-radius: var(--nf-radius-sm);
        color: var(--nf-text-muted);
        font-weight: 500;
        text-decoration: none;
        white-space: nowrap;
      }
      nav a:hover {
        color: var(--nf-text);
        background: var(--nf-surface-2);
      }
      nav a[aria-current="page"] {
        color: var(--nf-text);
        background: var(--nf-surface-2);
      }
      .spacer {
        flex: 1;
      }
      .connection {
        display: inline-flex;
        align-items: center;
        gap: 0.4rem;
        font-size: 0.8125rem;
        color: var(--nf-text-muted);
      }
      .connection .dot {
        width: 0.5rem;
        height: 0.5rem;
        border-radius: 50%;
        background: var(--nf-yellow);
      }
      .connection.live .dot {
        background: var(--nf-green);
      }
      main {
        max-width: 96rem;
        margin: 0 auto;
        padding: 1.25rem 1.25rem 3rem;
      }
      .notices {
        position: fixed;
        right: 1rem;
        bottom: 1rem;
        z-index: 20;
        display: grid;
        gap: 0.5rem;
        width: min(26rem, calc(100vw - 2rem));
        margin: 0;
        padding: 0;
        list-style: none;
      }
      .notice {
        display: flex;
        align-items: flex-start;
        gap: 0.5rem;
        padding: 0.65rem 0.6rem 0.65rem 0.9rem;
        border: 1px solid var(--nf-border-strong);
        border-left: 4px solid var(--nf-accent);
        border-radius: var(--nf-radius-sm);
        background: var(--nf-surface);
        box-shadow: var(--nf-shadow-lg);
        font-size: 0.875rem;
      }
      .notice.error {
        border-left-color: var(--nf-red);
      }
      .notice span {
        flex: 1;
        padding-top: 0.3rem;
      }
      .not-found {
        padding: 2rem;
      }
      @media (max-width: 600px) {
        /* Brand and connection on the first line, the navigation on a line of its own. */
        .bar {
          flex-wrap: wrap;
          gap: 0.25rem 0.4rem;
          padding: 0.4rem 0.75rem;
        }
        nav {
          order: 1;
          flex-wrap: wrap;
          width: 100%;
        }
        nav a {
          padding: 0.35rem 0.5rem;
        }
        main {
          padding: 0.9rem 0.75rem 3rem;
        }
      }
    `,
  ];

  override connectedCallback(): void {
    super.connectedCallback();
    this._unsubscribe = this._store.subscribe((state) => (this._state = state));
    this._store.start();
    window.addEventListener("popstate", this._onPopState);
    this.addEventListener("click", this._onClick);
    this.addEventListener("nf-notify", this._onNotice);
    // Ages ("3 min ago") move on without a render being asked for.
    this._ticker = setInterval(() => (this._now = Date.now()), 15_000);
    this.updateTitle();
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this._unsubscribe?.();
    this._unsubscribe = null;
    this._store.stop();
    window.removeEventListener("popstate", this._onPopState);
    this.removeEventListener("click", this._onClick);
    this.removeEventListener("nf-notify", this._onNotice);
    clearInterval(this._ticker);
  }

  protected override updated(): void {
    // The host page is a chunk of its own, off the path to the fleet table; fetched once the table has had
    // its frame, so that a click on a host finds it loaded.
    const host = LAZY_PAGES.host;
    if (this._hostPagePrefetched || this._state?.phase !== "ready" || !host) return;
    this._hostPagePrefetched = true;
    requestAnimationFrame(() => setTimeout(() => void preloadPage(host)));
  }

  override render() {
    const state = this._state;
    const route = this._route;
    const connection = state?.connection ?? "connecting";
    return html`
      ${state?.health?.auth === "development"
        ? html`<section class="dev" aria-label="Development mode"><strong>${DEVELOPMENT_MODE_WARNING.headline}</strong> ${DEVELOPMENT_MODE_WARNING.detail}</section>`
        : nothing}
      <header>
        <div class="bar">
          <a class="brand" href="/"><span class="logo" aria-hidden="true">❄</span><span class="brand-name">NixFleet</span></a>
          <nav aria-label="Main">
            <a href="/" aria-current=${route.page === "fleet" || route.page === "host" ? "page" : "false"}>Fleet</a>
            <a href="/rollouts" aria-current=${route.page === "rollouts" ? "page" : "false"}>Updates</a>
            <a href="/audit" aria-current=${route.page === "audit" ? "page" : "false"}>Audit log</a>
            <a href="/settings" aria-current=${route.page === "settings" ? "page" : "false"}>Settings</a>
          </nav>
          <span class="spacer"></span>
          <span class="connection ${connection}" role="status" title="Live updates from the control plane"
            ><span class="dot" aria-hidden="true"></span>${CONNECTION_LABELS[connection]}</span
          >
        </div>
      </header>
      <main>
        ${this.renderLazily(route, () => this.renderPage(route, state))}
        <ul class="notices" aria-live="polite">
          ${this._notices.map(
            (notice) =>
              html`<li class="notice ${notice.kind}" role=${notice.kind === "error" ? "alert" : "status"}>
                <span>${notice.text}</span>
                <button class="icon-btn" aria-label="Dismiss" @click=${() => this.dismiss(notice.id)}>×</button>
              </li>`,
          )}
        </ul>
      </main>
    `;
  }

  private renderLazily(route: Route, page: () => unknown) {
    const load = LAZY_PAGES[route.page];
    return load ? html`<nf-lazy-page .load=${load} .content=${page}></nf-lazy-page>` : page();
  }

  private renderPage(route: Route, state: FleetState | null) {
    switch (route.page) {
      case "fleet":
        return html`<nf-fleet-panel .store=${this._store} .state=${state} .now=${this._now}></nf-fleet-panel>`;
      case "host":
        return html`<nf-host-panel
          .store=${this._store}
          .state=${state}
          .name=${route.name}
          .commandId=${route.commandId ?? ""}
          .now=${this._now}
        ></nf-host-panel>`;
      case "audit":
        return html`<nf-audit-panel .store=${this._store} .hostNames=${new Set(state?.hosts.map((h) => h.name) ?? [])} .now=${this._now}></nf-audit-panel>`;
      case "rollouts":
        return html`<nf-rollouts-panel
          .store=${this._store}
          .live=${state?.rollouts ?? []}
          .repository=${state?.repo?.repository ?? ""}
          .now=${this._now}
        ></nf-rollouts-panel>`;
      case "settings":
        return html`<nf-settings-panel .store=${this._store} .me=${state?.me ?? null} .settingsVersion=${state?.settingsVersion ?? null}></nf-settings-panel>`;
      case "not-found":
        return html`<div class="card not-found"><h1 tabindex="-1">Not found</h1><p>Nothing lives at <code>${route.path}</code>. <a href="/">Back to the fleet</a></p></div>`;
    }
  }

  private async routeChanged(): Promise<void> {
    const before = this._route;
    this._route = parseRoute(location.pathname, location.search);
    this.updateTitle();
    const samePage = before.page === this._route.page && (before.page !== "host" || (this._route.page === "host" && before.name === this._route.name));
    if (samePage) return;
    window.scrollTo(0, 0);
    // Move focus to the new page's heading, so keyboard and screen reader users land on it.
    await this.updateComplete;
    let panel = this.renderRoot.querySelector("main > *");
    if (panel instanceof NfLazyPage) {
      await panel.updateComplete;
      panel = panel.shown;
    }
    if (panel instanceof LitElement) await panel.updateComplete;
    (panel?.shadowRoot ?? panel)?.querySelector<HTMLElement>("h1")?.focus();
  }

  private updateTitle(): void {
    const route = this._route;
    document.title =
      route.page === "host"
        ? `${route.name} · NixFleet`
        : route.page === "audit"
          ? "Audit log · NixFleet"
          : route.page === "rollouts"
            ? "Update history · NixFleet"
            : route.page === "settings"
              ? "Settings · NixFleet"
              : "NixFleet";
  }

  private interceptLink(event: MouseEvent): void {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const anchor = event.composedPath().find((node): node is HTMLAnchorElement => node instanceof HTMLAnchorElement);
    if (!anchor || !anchor.href || (anchor.target && anchor.target !== "_self") || anchor.hasAttribute("download")) return;
    const url = new URL(anchor.href);
    if (url.origin !== location.origin || url.pathname.startsWith("/api/")) return;
    event.preventDefault();
    if (url.pathname + url.search !== location.pathname + location.search) navigate(url.pathname + url.search);
  }

  private addNotice(detail: NoticeDetail): void {
    const id = ++this._noticeId;
    this._notices = [...this._notices, { id, ...detail }].slice(-5);
    setTimeout(() => this.dismiss(id), detail.kind === "error" ? 15_000 : 6_000);
  }

  private dismiss(id: number): void {
    this._notices = this._notices.filter((notice) => notice.id !== id);
  }
}

// A page that came with the fleet table in its markup (worker/fleet-page.ts): nf-app's shadow root hides it from the
// moment nf-app is defined, so that waits for the frame that shows it, even when this module was ready before it.
if (document.querySelector("nf-app > .first-table")) requestAnimationFrame(() => setTimeout(() => customElements.define("nf-app", NfApp)));
else customElements.define("nf-app", NfApp);

declare global {
  interface HTMLElementTagNameMap {
    "nf-app": NfApp;
  }
}
