import { LitElement, html } from "lit";
import type { CommandKind, CompartmentName, HostView } from "../../common/protocol.ts";
import { COMMAND_LABELS, compartmentActions } from "../common/actions.ts";
import { COMPARTMENT_TITLES, stateDisplay } from "../common/compartment-display.ts";
import { notify } from "../common/notify.ts";
import { COMMAND_ROLE, HOST_ADMIN_ROLE, roleDenial } from "../../common/permissions.ts";
import { hostPath, navigate } from "../common/route.ts";
import { ApiError, type CommandOptions } from "../data/api.ts";
import type { FleetStore } from "../data/store.ts";
import type { MenuContent, MenuEntry } from "./nf-action-menu.ts";
import type { UpdatePr } from "../../common/protocol.ts";
import { holdTitle } from "../common/rollouts.ts";
import type { NfConfirmDialog } from "../dialogs/nf-confirm-dialog.ts";
import { confirmDialogIn } from "../common/confirm-dialog.ts";
import type { NfHoldDialog } from "../dialogs/nf-hold-dialog.ts";
import type { NfTokenDialog } from "../dialogs/nf-token-dialog.ts";

/**
 * What a person can do to one host, shared by the fleet table and the host
 * page: the menus' contents, and running their choices with the
 * confirmations and the one-time token they need.
 */
export class NfHostActions extends LitElement {
  static override properties = {
    store: { attribute: false },
    repository: {},
  };
  declare store: FleetStore | null;
  declare repository: string;
  // Holding a host, rotating its token and confirming are rare: their dialogs load on the first opening, not in the first paint.
  private _confirm(): Promise<NfConfirmDialog> {
    return confirmDialogIn(this.renderRoot);
  }
  private async _hold(): Promise<NfHoldDialog> {
    await import("../dialogs/nf-hold-dialog.ts");
    return this.renderRoot.querySelector("nf-hold-dialog")!;
  }
  private async _token(): Promise<NfTokenDialog> {
    await import("../dialogs/nf-token-dialog.ts");
    return this.renderRoot.querySelector("nf-token-dialog")!;
  }

  constructor() {
    super();
    this.store = null;
    this.repository = "";
  }

  override render() {
    return html`<nf-confirm-dialog></nf-confirm-dialog><nf-hold-dialog .store=${this.store}></nf-hold-dialog><nf-token-dialog .repository=${this.repository}></nf-token-dialog>`;
  }

  /** The menu of one compartment: its suggested action first ("Click Git → Pull"; see docs/compartments.md "Precedence per compartment"). */
  compartmentMenu(
    host: HostView,
    name: CompartmentName,
    options: { updatePr?: UpdatePr | null; updatePrActions?: MenuEntry[]; onHostPage?: boolean } = {},
  ): MenuContent {
    const compartment = host.compartments[name];
    const entries: MenuEntry[] = [];
    if (compartment.commandId !== null) {
      entries.push({ label: "View log", hint: "the output that explains this state", href: hostPath(host.name, compartment.commandId) });
    }
    if (name === "lock" && options.updatePr) {
      const pr = options.updatePr;
      entries.push(...(options.updatePrActions ?? []));
      entries.push({ label: `Open update PR #${pr.number}`, hint: pr.title, href: pr.url, external: true });
    }
    const roleDenied = roleDenial(this.store?.state.me ?? null, COMMAND_ROLE);
    for (const choice of compartmentActions(compartment, host.activeCommand)) {
      entries.push({
        label: choice.label,
        hint: roleDenied ?? choice.disabledReason ?? choice.hint,
        suggested: choice.suggested,
        disabled: roleDenied !== null || choice.disabled,
        danger: choice.kind === "rollback",
        run: () => void this.runCommand(host, choice.kind),
      });
    }
    if (!options.onHostPage) entries.push({ label: "Open host page", href: hostPath(host.name) });
    const { label } = stateDisplay(name, compartment.state);
    return {
      heading: `${host.name} · ${COMPARTMENT_TITLES[name]}: ${label}`,
      note: host.online ? compartment.reason : `${compartment.reason} — offline: commands wait until it is back (up to a day).`,
      entries,
    };
  }

  /** The host's ⋮ menu. */
  hostMenu(host: HostView, options: { onHostPage?: boolean } = {}): MenuContent {
    const entries: MenuEntry[] = [];
    if (!options.onHostPage) entries.push({ label: "Open host page", href: hostPath(host.name) });
    const me = this.store?.state.me ?? null;
    const commandDenied = roleDenial(me, COMMAND_ROLE);
    const adminDenied = roleDenial(me, HOST_ADMIN_ROLE);
    entries.push(
      host.hold
        ? { label: "Release hold", hint: commandDenied ?? holdTitle(host.hold), disabled: commandDenied !== null, run: () => void this.releaseHold(host.name) }
        : {
            label: "Hold…",
            hint: commandDenied ?? "leave it out of rollouts and automatic actions",
            disabled: commandDenied !== null,
            run: () => void this._hold().then((dialog) => dialog.show(host.name)),
          },
      {
        label: "Rollback system",
        hint: commandDenied ?? "activate the previous generation",
        disabled: commandDenied !== null,
        danger: true,
        run: () => void this.runCommand(host, "rollback"),
      },
      {
        label: "Rotate token",
        hint: adminDenied ?? "issue a new agent token; the old one stops working",
        disabled: adminDenied !== null,
        run: () => void this.rotateToken(host),
      },
      {
        label: "Remove host",
        hint: adminDenied ?? "forget the host and its history",
        disabled: adminDenied !== null,
        danger: true,
        run: () => void this.removeHost(host, options),
      },
    );
    return { heading: host.name, entries };
  }

  /** Sends a command (asking first for a rollback or a gc); says what happened either way. */
  async runCommand(host: HostView, kind: CommandKind, options: CommandOptions = {}): Promise<boolean> {
    if (!this.store) return false;
    if ((kind === "rollback" && options.generation !== undefined) || (kind === "gc" && options.dryRun !== true) || (kind === "reboot" && options.force !== true)) {
      // Rare questions: their words load with the first one asked, not in the first paint.
      const { askGenerationCommand } = await import("../common/generation-confirm.ts");
      if (!(await askGenerationCommand(await this._confirm(), host.name, kind, options))) return false;
    } else if (kind === "rollback") {
      const confirmed = await (await this._confirm()).ask({
        title: `Roll back ${host.name}?`,
        body: html`<p>
          ${host.name} activates its previous system generation (<code>--rollback switch</code>). The clone stays where it is, so System turns
          yellow until the next switch, and Tests need a new run.
        </p>`,
        hosts: [host.name],
        confirmLabel: "Rollback system",
        danger: true,
      });
      if (!confirmed) return false;
    }
    try {
      await this.store.sendCommand(host.name, kind, options);
      notify(this, `${COMMAND_LABELS[kind]} queued for ${host.name}${host.online ? "" : " (offline: it runs when the host is back)"}`);
      return true;
    } catch (err) {
      if (err instanceof ApiError && err.code === "outside_maintenance_window") {
        const { askRebootOutsideWindow } = await import("../common/generation-confirm.ts");
        if (await askRebootOutsideWindow(await this._confirm(), host.name, err.message)) return this.runCommand(host, kind, { ...options, force: true });
      }
      notify(this, `${COMMAND_LABELS[kind]} on ${host.name}: ${err instanceof Error ? err.message : String(err)}`, "error");
      return false;
    }
  }

  async releaseHold(name: string): Promise<void> {
    try {
      await this.store?.releaseHold(name);
      notify(this, `${name} released: rollouts include it again`);
    } catch (err) {
      notify(this, `Releasing ${name} failed: ${err instanceof Error ? err.message : String(err)}`, "error");
    }
  }

  async rotateToken(host: HostView): Promise<void> {
    if (!this.store) return;
    const confirmed = await (await this._confirm()).ask({
      title: `Rotate the token of ${host.name}?`,
      body: "A new token is issued and shown once. The current token stops working at once: the agent is locked out until the new token is on the host.",
      hosts: [host.name],
      confirmLabel: "Rotate token",
      danger: true,
    });
    if (!confirmed) return;
    try {
      // The dialog is loaded before the rotation: a token that could not be shown would be lost.
      const tokenDialog = await this._token();
      const rotated = await this.store.rotateToken(host.name);
      await tokenDialog.show({ host: host.name, platform: host.platform, flakeAttr: host.flakeAttr, token: rotated.token });
    } catch (err) {
      notify(this, `Rotating the token of ${host.name} failed: ${err instanceof Error ? err.message : String(err)}`, "error");
    }
  }

  async removeHost(host: HostView, options: { onHostPage?: boolean } = {}): Promise<void> {
    if (!this.store) return;
    const confirmed = await (await this._confirm()).ask({
      title: `Remove ${host.name}?`,
      body: "The host disappears from the dashboard, its token stops working, and its reports and command history are deleted. The machine itself is not touched.",
      hosts: [host.name],
      confirmLabel: "Remove host",
      danger: true,
    });
    if (!confirmed) return;
    try {
      await this.store.removeHost(host.name);
      notify(this, `${host.name} removed`);
      if (options.onHostPage) navigate("/");
    } catch (err) {
      notify(this, `Removing ${host.name} failed: ${err instanceof Error ? err.message : String(err)}`, "error");
    }
  }
}

customElements.define("nf-host-actions", NfHostActions);

declare global {
  interface HTMLElementTagNameMap {
    "nf-host-actions": NfHostActions;
  }
}
