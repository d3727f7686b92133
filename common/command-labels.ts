/**
 * What each command is called, in the dashboard's menus and buttons and in the fleet page the Worker writes
 * (worker/fleet-page.ts, whose bulk toolbar must say what the components' says).
 */
import type { CommandKind } from "./protocol.ts";

export const COMMAND_LABELS: Record<CommandKind, string> = {
  pull: "Pull",
  switch: "Switch",
  "pull-switch": "Pull + Switch",
  test: "Run tests",
  rollback: "Rollback system",
  stop: "Stop",
  "restart-agent": "Restart agent",
  refresh: "Refresh report",
  build: "Build a commit",
  gc: "Collect garbage",
  reboot: "Reboot",
};

/** The kinds offered for many hosts at once. */
export const BULK_KINDS: readonly CommandKind[] = ["pull", "switch", "pull-switch", "test"];
