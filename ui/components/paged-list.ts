/**
 * A list the API answers a page at a time, newest first (the audit log, the
 * update history): the first page when the element connects, "Load older"
 * for the next (`before` the last entry's id), a refresh from the start.
 */
import { html, nothing, type ReactiveController, type ReactiveControllerHost } from "lit";

export interface PagedListOptions<T extends { id: string | number }> {
  /** Entries per page; a shorter page is the last. */
  pageSize: number;
  /** One page, newest first; null when there is nothing to ask yet (no store). */
  fetchPage(page: { limit: number; before?: T["id"] }): Promise<T[]> | null;
  /** What could not be loaded, for the message: "the audit log". */
  what: string;
}

export class PagedList<T extends { id: string | number }> implements ReactiveController {
  items: T[] = [];
  loading = false;
  error: string | null = null;
  /** The last page has arrived. */
  end = false;

  private readonly host: ReactiveControllerHost;
  private readonly options: PagedListOptions<T>;

  constructor(host: ReactiveControllerHost, options: PagedListOptions<T>) {
    this.host = host;
    this.options = options;
    host.addController(this);
  }

  hostConnected(): void {
    void this.load(true);
  }

  /** The first page again (`fromStart`), or the page after the entries shown. */
  async load(fromStart: boolean): Promise<void> {
    const before = fromStart ? undefined : this.items.at(-1)?.id;
    const request = this.options.fetchPage({ limit: this.options.pageSize, ...(before === undefined ? {} : { before }) });
    if (!request) return;
    this.loading = true;
    this.error = null;
    this.host.requestUpdate();
    try {
      const page = await request;
      this.items = fromStart ? page : [...this.items, ...page];
      this.end = page.length < this.options.pageSize;
    } catch (err) {
      this.error = `Could not load ${this.options.what}: ${err instanceof Error ? err.message : String(err)}`;
    } finally {
      this.loading = false;
      this.host.requestUpdate();
    }
  }

  /** Under the list: "Loading…", or the button for the next page until the last has arrived. */
  footer(label: string) {
    if (this.loading) return html`<span class="muted" role="status">Loading…</span>`;
    if (this.end || this.items.length === 0) return nothing;
    return html`<button class="btn small" @click=${() => this.load(false)}>${label}</button>`;
  }
}
