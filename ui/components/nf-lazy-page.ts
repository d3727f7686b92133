import { LitElement, css, html, nothing, type PropertyValues } from "lit";
import { sharedStyles } from "../styles/shared.ts";

/** Loads a lazily loaded page's module: `() => import("./panels/nf-….ts")` (see LAZY_PAGES in nf-app.ts). */
export type PageLoader = () => Promise<unknown>;

/** Loaders whose module has arrived: a page visited (or preloaded) before is shown at once, without a "Loading…" frame. */
const loaded = new WeakSet<PageLoader>();

/**
 * Loads a page's module ahead of its first visit. A failure is left for the
 * visit to meet again and show (with its Reload), so it is not reported here.
 */
export async function preloadPage(load: PageLoader): Promise<void> {
  try {
    await load();
    loaded.add(load);
  } catch {
    // The visit retries and says why.
  }
}

/**
 * A page whose module is loaded the first time it is shown: "Loading…" until
 * the module has defined the page's element, then the page. A module that
 * cannot be loaded (offline, or a deploy has replaced the chunk this copy of
 * the dashboard names) is said so, with a reload: the reloaded page names the
 * chunks that exist, and a failed import may stay failed in the module map
 * until then.
 */
export class NfLazyPage extends LitElement {
  static override properties = {
    load: { attribute: false },
    content: { attribute: false },
    _ready: { state: true },
    _failure: { state: true },
  };
  declare load: PageLoader | null;
  /** The page, rendered once its module is loaded (nf-app's template for it, with its properties). */
  declare content: (() => unknown) | null;
  private declare _ready: boolean;
  private declare _failure: string | null;
  private _loading: Promise<void> = Promise.resolve();

  constructor() {
    super();
    this.load = null;
    this.content = null;
    this._ready = false;
    this._failure = null;
  }

  static override styles = [
    sharedStyles,
    css`
      :host {
        display: block;
      }
      .loading {
        margin: 0;
        padding: 1rem 0;
      }
      .failure {
        display: grid;
        justify-items: start;
        gap: 0.6rem;
        padding: 1.25rem;
      }
      .failure h1 {
        margin: 0;
        font-size: 1.5rem;
      }
      .failure h1:focus {
        outline: none;
      }
      .failure p {
        margin: 0;
      }
    `,
  ];

  /** The element shown: the page's own, or the loading or failure message. */
  get shown(): Element | null {
    return [...this.renderRoot.children].find((child) => child.localName !== "style") ?? null;
  }

  protected override willUpdate(changed: PropertyValues<this>): void {
    if (changed.has("load")) this.start(this.load);
  }

  /** Resolves once the page, or why it could not be loaded, is rendered: nf-app then focuses its heading. */
  protected override async getUpdateComplete(): Promise<boolean> {
    await super.getUpdateComplete();
    await this._loading;
    return super.getUpdateComplete();
  }

  override render() {
    if (this._failure !== null) {
      return html`<div class="card failure" role="alert">
        <h1 tabindex="-1">This page could not be loaded</h1>
        <p>${this._failure}</p>
        <p class="muted">The dashboard may have been updated since it was opened here; reloading fetches the current one.</p>
        <button class="btn primary" @click=${() => location.reload()}>Reload</button>
      </div>`;
    }
    if (!this._ready) return html`<p class="loading muted" role="status">Loading…</p>`;
    return this.content?.() ?? nothing;
  }

  private start(load: PageLoader | null): void {
    this._failure = null;
    this._ready = load !== null && loaded.has(load);
    if (load === null || this._ready) {
      this._loading = Promise.resolve();
      return;
    }
    this._loading = load().then(
      () => {
        loaded.add(load);
        if (this.load === load) this._ready = true;
      },
      (err: unknown) => {
        if (this.load === load) this._failure = err instanceof Error ? err.message : String(err);
      },
    );
  }
}

customElements.define("nf-lazy-page", NfLazyPage);

declare global {
  interface HTMLElementTagNameMap {
    "nf-lazy-page": NfLazyPage;
  }
}
