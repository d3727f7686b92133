/**
 * What a person can ask a host to do, in the order the menus offer it. The
 * command kinds themselves come from the protocol; this only names and orders.
 */
import { EXCLUSIVE_COMMAND_KINDS, type CommandKind, type CommandState, type CommandView, type Compartment } from "../../common/protocol.ts";
import { isActiveCommand } from "../../common/commands.ts";
import { BULK_KINDS, COMMAND_LABELS } from "../../common/command-labels.ts";

export { BULK_KINDS, COMMAND_LABELS };

/** What each action does, for the menu's second line. */
export const COMMAND_HINTS: Record<CommandKind, string> = {
  pull: "fetch the branch into the host's clone",
  switch: "build and activate what the clone holds",
  "pull-switch": "pull, then switch",
  test: "run the host's tests",
  rollback: "activate the previous generation",
  stop: "cancel the queued or running command",
  "restart-agent": "restart the nixfleet-agent service",
  refresh: "send a fresh report",
  build: "build a commit's configuration without switching to it",
  gc: "delete old generations, then collect the store's garbage",
  reboot: "reboot the host",
};

/** The kinds a compartment menu offers, before the suggested one is moved to the front. */
export const MENU_KINDS: readonly CommandKind[] = ["pull", "switch", "pull-switch", "test", "rollback", "stop", "restart-agent"];

/** Commands that take a host backwards ask first. */
export function needsConfirmation(kind: CommandKind): boolean {
  return kind === "rollback";
}

/** The worker's one-at-a-time rule, for disabling menu items. */
const EXCLUSIVE = EXCLUSIVE_COMMAND_KINDS;

export interface ActionChoice {
  kind: CommandKind;
  label: string;
  hint: string;
  suggested: boolean;
  disabled: boolean;
  /** Why it is disabled, said next to it. */
  disabledReason: string | null;
  confirm: boolean;
}

/**
 * The action menu of one compartment: its suggested action first ("Click Git → Pull"; see
 * docs/compartments.md "Precedence per compartment"), then the rest in their usual order. Items the worker
 * would refuse right now are disabled with the reason.
 */
export function compartmentActions(compartment: Pick<Compartment, "action"> | null, activeCommand: CommandView | null): ActionChoice[] {
  const suggested = compartment?.action ?? null;
  const kinds = suggested === null ? MENU_KINDS : [suggested, ...MENU_KINDS.filter((kind) => kind !== suggested)];
  const active = isActiveCommand(activeCommand) ? activeCommand : null;
  return kinds.map((kind) => {
    let disabledReason: string | null = null;
    if (kind === "stop" && active === null) disabledReason = "nothing queued or running";
    else if (EXCLUSIVE.has(kind) && active !== null && EXCLUSIVE.has(active.kind)) {
      disabledReason = `${COMMAND_LABELS[active.kind]} is ${active.state}`;
    }
    return {
      kind,
      label: COMMAND_LABELS[kind],
      hint: COMMAND_HINTS[kind],
      suggested: kind === suggested,
      disabled: disabledReason !== null,
      disabledReason,
      confirm: needsConfirmation(kind),
    };
  });
}

export interface CommandStateDisplay {
  icon: string;
  label: string;
  tone: "good" | "bad" | "busy" | "muted";
}

const COMMAND_STATE_DISPLAY: Record<CommandState, CommandStateDisplay> = {
  queued: { icon: "…", label: "queued", tone: "busy" },
  delivered: { icon: "↧", label: "delivered", tone: "busy" },
  running: { icon: "⟳", label: "running", tone: "busy" },
  succeeded: { icon: "✓", label: "succeeded", tone: "good" },
  failed: { icon: "✕", label: "failed", tone: "bad" },
  cancelled: { icon: "⊘", label: "cancelled", tone: "muted" },
  "timed-out": { icon: "⏱", label: "timed out", tone: "bad" },
  lost: { icon: "?", label: "lost", tone: "bad" },
};

export function commandStateDisplay(state: CommandState): CommandStateDisplay {
  return COMMAND_STATE_DISPLAY[state];
}
