import { LitElement, css, html, nothing } from "lit";
import {
  DEPLOY_STRATEGIES,
  MERGE_METHODS,
  ROLLBACK_STRATEGIES,
  type MaintenanceWindow,
  type MeResponse,
  type NotificationChannel,
  type Settings,
} from "../../common/protocol.ts";
import { roleDenial, SETTINGS_ROLE } from "../../common/permissions.ts";
import { buildersText, errorsUnder, fieldErrors, parseBuildersText, validateSettings, type FieldErrors } from "../common/settings-form.ts";
import { ApiError } from "../data/api.ts";
import { loadSettings, saveSettings } from "../data/settings.ts";
import type { FleetStore } from "../data/store.ts";
import { sharedStyles } from "../styles/shared.ts";
import { settingsFormStyles } from "../styles/settings-form.ts";
import "../components/nf-settings-channels.ts";
import "../components/nf-settings-windows.ts";
import "../components/nf-settings-ci-token.ts";
import "../components/nf-cache-usage.ts";

type Section = "flakeUpdates" | "automation" | "fleetBuild" | "rollout" | "rollback" | "gc" | "cache" | "alerts";

const DEPLOY_LABELS: Record<(typeof DEPLOY_STRATEGIES)[number], string> = {
  all: "every host (offline ones when they return)",
  "online-only": "online hosts only",
  none: "merge only, deploy nothing",
};
const ROLLBACK_LABELS: Record<(typeof ROLLBACK_STRATEGIES)[number], string> = {
  "revert-pr": "open a revert PR",
  "revert-commit": "push a revert commit",
  "alert-only": "only alert",
};

/**
 * The fleet's settings (GET/PUT /api/settings), edited as one object: admins edit and save, everyone
 * else reads. Every field is checked with the server's own schema before sending; what the server still
 * refuses is shown beside its field. A save over someone else's newer save is refused with a reload.
 */
export class NfSettingsPanel extends LitElement {
  static override properties = {
    store: { attribute: false },
    me: { attribute: false },
    settingsVersion: { attribute: false },
    _saved: { state: true },
    _draft: { state: true },
    _errors: { state: true },
    _loadError: { state: true },
    _saveError: { state: true },
    _conflict: { state: true },
    _busy: { state: true },
    _notice: { state: true },
  };
  declare store: FleetStore | null;
  declare me: MeResponse | null;
  /** The stored version the last live "settings" event announced; null when none came. */
  declare settingsVersion: number | null;
  /** The settings as last read or saved. */
  private declare _saved: Settings | null;
  private declare _draft: Settings | null;
  private declare _errors: FieldErrors;
  private declare _loadError: string | null;
  private declare _saveError: string | null;
  /** A save refused because someone saved first: the message, with a reload. */
  private declare _conflict: string | null;
  private declare _busy: boolean;
  private declare _notice: string | null;

  constructor() {
    super();
    this.store = null;
    this.me = null;
    this.settingsVersion = null;
    this._saved = null;
    this._draft = null;
    this._errors = {};
    this._loadError = null;
    this._saveError = null;
    this._conflict = null;
    this._busy = false;
    this._notice = null;
  }

  static override styles = [
    sharedStyles,
    settingsFormStyles,
    css`
      :host {
        display: grid;
        grid-template-columns: minmax(0, 1fr);
        gap: 1rem;
      }
      h1 {
        margin: 0;
        font-size: 1.5rem;
      }
      h1:focus {
        outline: none;
      }
      section {
        display: grid;
        gap: 0.85rem;
        padding: 1rem 1.1rem 1.15rem;
        border: 1px solid var(--nf-border);
        border-radius: var(--nf-radius);
        background: var(--nf-surface);
      }
      h2 {
        margin: 0;
        font-size: 1.05rem;
      }
      .bar {
        position: sticky;
        bottom: 0;
        display: flex;
        flex-wrap: wrap;
        align-items: center;
        gap: 0.75rem;
        padding: 0.75rem 0;
        background: var(--nf-bg);
      }
      .alert {
        padding: 0.7rem 0.9rem;
        border: 1px solid var(--nf-red);
        border-radius: var(--nf-radius-sm);
        background: var(--nf-red-bg);
      }
      .note {
        padding: 0.7rem 0.9rem;
        border: 1px solid var(--nf-border-strong);
        border-radius: var(--nf-radius-sm);
        background: var(--nf-yellow-bg);
      }
      .alert ul {
        margin: 0.35rem 0 0;
        padding-left: 1.2rem;
      }
    `,
  ];

  override connectedCallback(): void {
    super.connectedCallback();
    if (this._saved === null) void this.load();
  }

  override willUpdate(changed: Map<PropertyKey, unknown>): void {
    // Someone saved newer settings: an untouched page shows them at once (unless a field is being typed
    // in); an edited one offers a reload.
    const newer = this.settingsVersion !== null && this._saved !== null && this.settingsVersion > this._saved.version;
    if (changed.has("settingsVersion") && newer && !this.dirty && !this._busy && !this.matches(":focus-within")) {
      void this.load();
    }
  }

  private get dirty(): boolean {
    return this._draft !== null && this._saved !== null && JSON.stringify(this._draft) !== JSON.stringify(this._saved);
  }

  private async load(): Promise<void> {
    if (!this.store) return;
    this._busy = true;
    try {
      const settings = await loadSettings(this.store.api);
      this._saved = settings;
      this._draft = structuredClone(settings);
      this._errors = {};
      this._loadError = null;
      this._saveError = null;
      this._conflict = null;
    } catch (error) {
      this._loadError = error instanceof Error ? error.message : String(error);
    } finally {
      this._busy = false;
    }
  }

  private async save(event: Event): Promise<void> {
    event.preventDefault();
    const draft = this._draft;
    if (!this.store || !draft) return;
    this._notice = null;
    this._saveError = null;
    // Not disabled while clean: a field commits its edit on leaving it, which pressing Save does first.
    if (!this.dirty) {
      this._notice = "Nothing changed.";
      return;
    }
    this._errors = validateSettings(draft);
    if (Object.keys(this._errors).length > 0) {
      this._saveError = "Some settings are not valid: see the marked fields.";
      return;
    }
    this._busy = true;
    try {
      const saved = await saveSettings(this.store.api, draft);
      this._saved = saved;
      this._draft = structuredClone(saved);
      this._conflict = null;
      this._notice = `Saved (version ${saved.version}).`;
    } catch (error) {
      if (error instanceof ApiError && error.code === "settings_conflict") {
        this._conflict = error.message;
      } else if (error instanceof ApiError && error.issues.length > 0) {
        this._errors = fieldErrors(error.issues);
        this._saveError = error.message;
      } else {
        this._saveError = error instanceof Error ? error.message : String(error);
      }
    } finally {
      this._busy = false;
    }
  }

  private set<S extends Section, K extends keyof Settings[S]>(section: S, key: K, value: Settings[S][K]): void {
    if (!this._draft) return;
    this._draft = { ...this._draft, [section]: { ...this._draft[section], [key]: value } };
    this.revalidate();
  }

  /** After a refused save, the marks follow the edits. */
  private revalidate(): void {
    if (this._draft && Object.keys(this._errors).length > 0) this._errors = validateSettings(this._draft);
  }

  override render() {
    const denied = roleDenial(this.me, SETTINGS_ROLE);
    const draft = this._draft;
    return html`
      <h1 tabindex="-1">Settings</h1>
      ${denied ? html`<p class="note" role="note">Read only: changing the settings ${denied}.</p>` : nothing}
      ${this._loadError ? html`<p class="alert" role="alert">Could not load the settings: ${this._loadError} <button class="btn small" @click=${() => void this.load()}>Retry</button></p>` : nothing}
      ${draft ? this.renderForm(draft, denied !== null) : this._loadError ? nothing : html`<p class="muted">Loading…</p>`}
      <section aria-labelledby="s-ci-token">
        <h2 id="s-ci-token">CI token for desired systems</h2>
        <nf-settings-ci-token .api=${this.store?.api ?? null} .readOnly=${denied !== null}></nf-settings-ci-token>
      </section>
      <section aria-labelledby="s-cache-token">
        <h2 id="s-cache-token">Binary cache upload token</h2>
        <nf-settings-ci-token .kind=${"cache"} .api=${this.store?.api ?? null} .readOnly=${denied !== null}></nf-settings-ci-token>
      </section>
    `;
  }

  private renderForm(draft: Settings, readOnly: boolean) {
    const disabled = readOnly || this._busy;
    const newer = this.settingsVersion !== null && this._saved !== null && this.settingsVersion > this._saved.version;
    return html`<form @submit=${this.save} novalidate>
      <fieldset ?disabled=${disabled} style="display:grid;gap:1rem">
        <section aria-labelledby="s-updates">
          <h2 id="s-updates">Flake updates</h2>
          ${this.checkbox("flakeUpdates", "enabled", draft.flakeUpdates.enabled, "Handle flake.lock update PRs", "Off: no fleet builds, no automation and no update-PR notifications.")}
        </section>
        <section aria-labelledby="s-automation">
          <h2 id="s-automation">Automation</h2>
          ${this.checkbox("automation", "enabled", draft.automation.enabled, "Merge and deploy update PRs automatically")}
          <div class="fields">
            ${this.number("automation", "mergeDelayMinutes", draft.automation.mergeDelayMinutes, "Merge delay (minutes)", "any", "after CI turns green; fractions allowed")}
            ${this.select("automation", "mergeMethod", draft.automation.mergeMethod, "Merge method", MERGE_METHODS.map((m) => [m, m]))}
            ${this.select("automation", "deployStrategy", draft.automation.deployStrategy, "Deploy after merging", DEPLOY_STRATEGIES.map((d) => [d, DEPLOY_LABELS[d]]))}
          </div>
          ${this.checkbox("automation", "requireCi", draft.automation.requireCi, "Require green CI", "Off: a repository without CI is merged on the fleet build alone; red CI still stops it.")}
          <div class="fields">
            ${this.number("automation", "ciMissingAfterMinutes", draft.automation.ciMissingAfterMinutes, "Say “no CI seen” after (minutes)", "any", "with CI required: no check or status on a PR head for this long")}
          </div>
          ${this.checkbox("automation", "requireFleetBuild", draft.automation.requireFleetBuild, "Require a passing fleet build")}
        </section>
        <section aria-labelledby="s-build">
          <h2 id="s-build">Fleet build</h2>
          ${this.checkbox("fleetBuild", "buildOnUpdatePr", draft.fleetBuild.buildOnUpdatePr, "Build an update PR's head on every host")}
          ${this.checkbox("fleetBuild", "offlineHostsBlock", draft.fleetBuild.offlineHostsBlock, "Offline hosts keep the verdict pending", "Off: they are listed as not built.")}
          ${this.checkbox("fleetBuild", "countExcludedHosts", draft.fleetBuild.countExcludedHosts, "Count held and autoUpdate = false hosts in the verdict")}
          <div class="fields">${this.builders(draft.fleetBuild.builders)}</div>
        </section>
        <section aria-labelledby="s-rollout">
          <h2 id="s-rollout">Rollout</h2>
          <div class="fields">
            ${this.number("rollout", "canary", draft.rollout.canary, "Canary hosts", "1", "picked by priority when no host is a canary; 0 = no canary wave")}
            ${this.waveSize(draft.rollout.waveSize)}
            ${this.number("rollout", "canarySoakSeconds", draft.rollout.canarySoakSeconds, "Canary soak (seconds)", "1")}
            ${this.number("rollout", "soakSeconds", draft.rollout.soakSeconds, "Soak after each wave (seconds)", "1")}
          </div>
        </section>
        <section aria-labelledby="s-rollback">
          <h2 id="s-rollback">Rollback</h2>
          <div class="fields">${this.select("rollback", "strategy", draft.rollback.strategy, "When a rollout fails", ROLLBACK_STRATEGIES.map((r) => [r, ROLLBACK_LABELS[r]]))}</div>
          ${this.checkbox("rollback", "rollbackHosts", draft.rollback.rollbackHosts, "Also roll back the hosts that already switched")}
        </section>
        <section aria-labelledby="s-gc">
          <h2 id="s-gc">Garbage collection</h2>
          <p class="hint" style="margin:0">What a <code>gc</code> keeps besides the current, the booted and the safety net's generations. A host's own module options <code>gc.keepGenerations</code> and <code>gc.keepDays</code> win.</p>
          <div class="fields">
            ${this.number("gc", "keepGenerations", draft.gc.keepGenerations, "Keep the newest generations", "1", "1–200")}
            ${this.number("gc", "keepDays", draft.gc.keepDays, "Keep generations younger than (days)", "any", "0 = by count only; fractions allowed")}
          </div>
        </section>
        <section aria-labelledby="s-cache">
          <h2 id="s-cache">Binary cache</h2>
          ${this.checkbox("cache", "public", draft.cache.public, "Anyone may read the binary cache", "Off: each host reads it with its own token. Uploads always need the cache token (docs/cache.md).")}
          <div class="fields">
            ${this.number("cache", "keepCommits", draft.cache.keepCommits, "Clean-up keeps main's last commits", "1", "their signed manifests and systems; 1–1000")}
            ${this.number("cache", "graceHours", draft.cache.graceHours, "Clean-up grace period (hours)", "any", "nothing younger is deleted; 1–720")}
          </div>
          <nf-cache-usage .api=${this.store?.api ?? null}></nf-cache-usage>
        </section>
        <section aria-labelledby="s-windows">
          <h2 id="s-windows">Maintenance windows</h2>
          <nf-settings-windows
            .windows=${draft.windows}
            .errors=${errorsUnder(this._errors, "windows")}
            ?disabled=${disabled}
            @windows-change=${(e: CustomEvent<MaintenanceWindow[]>) => this.replace({ windows: e.detail })}
          ></nf-settings-windows>
        </section>
        <section aria-labelledby="s-notifications">
          <h2 id="s-notifications">Notifications</h2>
          <div class="fields">
            ${this.number("alerts", "alertAfterSeconds", draft.alerts.alertAfterSeconds, "Red for (seconds) before a host alert", "1", "host-red and tests-failed; 0 = at the first red")}
            ${this.number("alerts", "recoverAfterSeconds", draft.alerts.recoverAfterSeconds, "Clear for (seconds) before its recovery", "1", "a host flapping red/green meanwhile stays one incident")}
            ${this.number("alerts", "rolloutLinkHours", draft.alerts.rolloutLinkHours, "Link a red host to its rollout within (hours)", "any", "shown in the Update history")}
            ${this.number("alerts", "diskLowBelowBytes", draft.alerts.diskLowBelowBytes, "Disk low below (bytes free)", "1", "store or /boot; warned on the dashboard and sent as disk-low; 1073741824 = 1 GiB")}
          </div>
          <nf-settings-channels
            .channels=${draft.notifications}
            .errors=${errorsUnder(this._errors, "notifications")}
            ?disabled=${disabled}
            @channels-change=${(e: CustomEvent<NotificationChannel[]>) => this.replace({ notifications: e.detail })}
          ></nf-settings-channels>
          <nf-notification-deliveries .channels=${this._saved?.notifications ?? []}></nf-notification-deliveries>
        </section>
      </fieldset>
      ${this._conflict
        ? html`<div class="alert" role="alert">
            <strong>Not saved: someone else changed the settings.</strong> ${this._conflict}
            <div style="margin-top:0.5rem"><button type="button" class="btn small" @click=${() => void this.load()}>Reload the current settings</button></div>
          </div>`
        : nothing}
      ${newer && !this._conflict
        ? html`<p class="note" role="status">Someone saved newer settings (version ${this.settingsVersion}). <button type="button" class="btn small" @click=${() => void this.load()}>Reload</button> (your changes here are dropped)</p>`
        : nothing}
      ${this._saveError ? html`<div class="alert" role="alert">${this._saveError}${this.unplacedErrors()}</div>` : nothing}
      ${readOnly
        ? nothing
        : html`<div class="bar">
            <button class="btn primary" type="submit" ?disabled=${this._busy}>${this._busy ? "Saving…" : "Save settings"}</button>
            <button type="button" class="btn" ?disabled=${this._busy || !this.dirty} @click=${this.discard}>Discard changes</button>
            <span class="muted" role="status">${this._notice ?? (this._saved ? `version ${this._saved.version}` : "")}</span>
          </div>`}
    </form>`;
  }

  /** Messages whose path has no field of its own on the page (an unknown key, the whole object). */
  private unplacedErrors() {
    const placed = /^(flakeUpdates|automation|fleetBuild|rollout|rollback|gc|cache|alerts)\.[A-Za-z]+$|^(windows|notifications)\.\d+\.|^fleetBuild\.builders\./;
    const rest = Object.entries(this._errors).filter(([key]) => !placed.test(key));
    if (rest.length === 0) return nothing;
    return html`<ul>${rest.map(([key, message]) => html`<li>${key ? html`<code>${key}</code>: ` : nothing}${message}</li>`)}</ul>`;
  }

  private readonly discard = () => {
    if (this._saved) this._draft = structuredClone(this._saved);
    this._errors = {};
    this._saveError = null;
  };

  private replace(change: Partial<Settings>): void {
    if (!this._draft) return;
    this._draft = { ...this._draft, ...change };
    this.revalidate();
  }

  private error(path: string) {
    const message = this._errors[path];
    return message ? html`<span class="field-error" role="alert">${message}</span>` : nothing;
  }

  private checkbox<S extends Section>(section: S, key: keyof Settings[S] & string, value: boolean, label: string, hint?: string) {
    return html`<label class="check"
      ><input type="checkbox" name="${section}.${key}" .checked=${value} @change=${(e: Event) => this.set(section, key, (e.target as HTMLInputElement).checked as Settings[S][typeof key])} /><span
        >${label}${hint ? html`<br /><span class="hint">${hint}</span>` : nothing}${this.error(`${section}.${key}`)}</span
      ></label
    >`;
  }

  private number<S extends Section>(section: S, key: keyof Settings[S] & string, value: number, label: string, step: string, hint?: string) {
    const path = `${section}.${key}`;
    return html`<label class="field"
      ><span>${label}</span
      ><input
        type="number"
        name=${path}
        step=${step}
        .value=${Number.isNaN(value) ? "" : String(value)}
        aria-invalid=${this._errors[path] ? "true" : "false"}
        @change=${(e: Event) => this.set(section, key, (e.target as HTMLInputElement).valueAsNumber as Settings[S][typeof key])}
      />${hint ? html`<span class="hint">${hint}</span>` : nothing}${this.error(path)}</label
    >`;
  }

  private select<S extends Section>(section: S, key: keyof Settings[S] & string, value: string, label: string, options: [string, string][]) {
    const path = `${section}.${key}`;
    return html`<label class="field"
      ><span>${label}</span
      ><select name=${path} @change=${(e: Event) => this.set(section, key, (e.target as HTMLSelectElement).value as Settings[S][typeof key])}>
        ${options.map(([v, text]) => html`<option value=${v} ?selected=${v === value}>${text}</option>`)}
      </select>${this.error(path)}</label
    >`;
  }

  /** Empty = each host builds its own configuration. */
  private builders(value: Settings["fleetBuild"]["builders"]) {
    const path = "fleetBuild.builders";
    const messages = Object.entries(errorsUnder(this._errors, path)).map(([, message]) => message);
    return html`<label class="field"
      ><span>Builder hosts</span
      ><textarea
        name=${path}
        rows="2"
        placeholder="x86_64-linux=hsb0"
        .value=${buildersText(value)}
        aria-invalid=${messages.length > 0 ? "true" : "false"}
        @change=${(e: Event) => this.set("fleetBuild", "builders", parseBuildersText((e.target as HTMLTextAreaElement).value))}
      ></textarea
      ><span class="hint">one SYSTEM=HOST a line: that host builds every host of the system type and uploads them to the binary cache; empty = each host builds its own</span
      >${messages.length > 0 ? html`<span class="field-error" role="alert">${messages[0]}</span>` : nothing}</label
    >`;
  }

  /** Empty = automatic (a quarter of the rollout's hosts). */
  private waveSize(value: number | null) {
    const path = "rollout.waveSize";
    return html`<label class="field"
      ><span>Wave size</span
      ><input
        type="number"
        name=${path}
        step="1"
        placeholder="auto"
        .value=${value === null || Number.isNaN(value) ? "" : String(value)}
        aria-invalid=${this._errors[path] ? "true" : "false"}
        @change=${(e: Event) => {
          const input = e.target as HTMLInputElement;
          this.set("rollout", "waveSize", input.value.trim() === "" ? null : input.valueAsNumber);
        }}
      /><span class="hint">hosts per wave after the canary; empty = a quarter of the hosts</span>${this.error(path)}</label
    >`;
  }
}

customElements.define("nf-settings-panel", NfSettingsPanel);

declare global {
  interface HTMLElementTagNameMap {
    "nf-settings-panel": NfSettingsPanel;
  }
}
