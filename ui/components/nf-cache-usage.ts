import { LitElement, html, nothing } from "lit";
import type { CacheUsage } from "../../common/protocol.ts";
import { formatBytes, localTimestamp, plural } from "../../common/text.ts";
import type { DashboardApi } from "../data/api.ts";
import { loadCacheUsage } from "../data/settings.ts";
import { sharedStyles } from "../styles/shared.ts";

/**
 * The binary cache's size as its last clean-up counted it (GET /api/cache-usage): a figure up to a day old,
 * which the line says, read once when the Settings page opens.
 */
export class NfCacheUsage extends LitElement {
  static override properties = {
    api: { attribute: false },
    _usage: { state: true },
    _error: { state: true },
  };
  declare api: DashboardApi | null;
  /** undefined while loading, null before the first clean-up finished. */
  private declare _usage: CacheUsage | null | undefined;
  private declare _error: string | null;

  constructor() {
    super();
    this.api = null;
    this._usage = undefined;
    this._error = null;
  }

  static override styles = [sharedStyles];

  override updated(changed: Map<PropertyKey, unknown>): void {
    if (changed.has("api") && this.api !== null) void this.load(this.api);
  }

  private async load(api: DashboardApi): Promise<void> {
    try {
      this._usage = await loadCacheUsage(api);
      this._error = null;
    } catch (error) {
      this._error = error instanceof Error ? error.message : String(error);
    }
  }

  override render() {
    if (this._error !== null) return html`<p class="muted" role="status">The cache's size could not be read: ${this._error}</p>`;
    const usage = this._usage;
    if (usage === undefined) return nothing;
    if (usage === null) return html`<p class="muted" role="status">The cache's size is counted by its daily clean-up, which has not finished a pass yet.</p>`;
    const deleted = usage.deletedObjects === 0 ? "it deleted nothing" : `it deleted ${plural(usage.deletedObjects, "object")} (${formatBytes(usage.deletedBytes)})`;
    return html`<p class="muted" role="status">
      The cache holds ${plural(usage.objects, "object")}, ${formatBytes(usage.bytes)}, as its daily clean-up counted them at
      ${localTimestamp(usage.countedAt)}; ${deleted}. Uploads since then are not counted.
    </p>`;
  }
}

customElements.define("nf-cache-usage", NfCacheUsage);

declare global {
  interface HTMLElementTagNameMap {
    "nf-cache-usage": NfCacheUsage;
  }
}
