/**
 * The host page's garbage-collection and reboot entries and the confirmations of a rollback to a chosen
 * generation, of a gc (docs/hosts.md "Generations and garbage collection") and of a reboot (docs/hosts.md
 * "Activation modes and reboots"), loaded when first needed: the fleet's first paint does without them.
 */
import { html } from "lit";
import type { CommandKind, HostView } from "../../common/protocol.ts";
import type { MenuContent } from "../components/nf-action-menu.ts";
import type { CommandOptions } from "../data/api.ts";
import type { NfConfirmDialog } from "../dialogs/nf-confirm-dialog.ts";

export function askGenerationCommand(dialog: NfConfirmDialog, host: string, kind: CommandKind, options: CommandOptions): Promise<boolean> {
  if (kind === "rollback" && options.generation !== undefined) {
    return dialog.ask({
      title: `Roll ${host} back to generation ${options.generation}?`,
      body: html`<p>
        ${host} sets its profile to generation ${options.generation}'s system and activates it, as a new generation. The clone stays where it is, so
        System turns yellow until the next switch.
      </p>`,
      hosts: [host],
      confirmLabel: "Roll back",
      danger: true,
    });
  }
  if (kind === "reboot") {
    return dialog.ask({
      title: `Reboot ${host}?`,
      body: html`<p>
        ${host} reboots into its boot default. The agent that starts after the reboot ends the command: succeeded when the host came back
        with a new boot and the intended system booted, failed when it came back on another; a host not back within 10 minutes ends it lost.
      </p>
      <p>Outside the host's maintenance window the control plane refuses the reboot, and asks before sending it anyway.</p>`,
      hosts: [host],
      confirmLabel: "Reboot",
      danger: true,
    });
  }
  return dialog.ask({
    title: `Collect garbage on ${host}?`,
    body: html`<p>
        ${host} deletes its old generations. It keeps the newest and the recent ones (its own <code>gc</code> options, else the fleet's settings:
        5 generations and 14 days unless changed) and always the booted, the current and any the safety net may go back to.
      </p>
      <p>Then it rewrites the boot menu and deletes what nothing uses from the store. A deleted generation cannot be rolled back to.</p>`,
    hosts: [host],
    confirmLabel: "Collect garbage",
    danger: true,
  });
}

/** The control plane refused a reboot outside the host's maintenance window (its words name the next one): send it anyway? */
export function askRebootOutsideWindow(dialog: NfConfirmDialog, host: string, refusal: string): Promise<boolean> {
  return dialog.ask({
    title: `Reboot ${host} outside its maintenance window?`,
    body: html`<p>${refusal}</p>`,
    hosts: [host],
    confirmLabel: "Reboot now",
    danger: true,
  });
}

/**
 * The host page's ⋮ menu: the fleet's, plus garbage collection and reboot (after the rollback entry).
 * Kept to the host page so the fleet's first paint carries none of it.
 */
export function withGcEntries(menu: MenuContent, host: HostView, denied: string | null, run: (kind: CommandKind, options: CommandOptions) => void): MenuContent {
  const at = menu.entries.findIndex((entry) => entry.label === "Rollback system") + 1;
  const entries = [...menu.entries];
  entries.splice(at, 0,
    {
      label: "Collect garbage…",
      hint: denied ?? "delete old generations, then the store's garbage",
      disabled: denied !== null,
      run: () => run("gc", {}),
    },
    {
      label: "Preview garbage collection",
      hint: denied ?? `what a gc on ${host.name} would delete; deletes nothing`,
      disabled: denied !== null,
      run: () => run("gc", { dryRun: true }),
    },
    {
      label: "Reboot…",
      hint: denied ?? "reboot into the boot default, inside the maintenance window",
      disabled: denied !== null,
      danger: true,
      run: () => run("reboot", {}),
    },
  );
  return { ...menu, entries };
}

