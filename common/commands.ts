/**
 * What "active" means for a command, for every part of the system: not final
 * yet, so queued for its host, delivered to it or running there. The worker
 * admits, expires and counts commands by it, and the dashboard shows it as a
 * host's current command. The final states (FINAL_COMMAND_STATES) are the
 * rest; test/commands/rules.test.ts checks that the two split the states.
 */
import { isFinalCommandState, type CommandState } from "./protocol.ts";

export const ACTIVE_COMMAND_STATES = ["queued", "delivered", "running"] as const satisfies readonly CommandState[];
export type ActiveCommandState = (typeof ACTIVE_COMMAND_STATES)[number];

export function isActiveCommand<T extends { state: CommandState }>(command: T | null | undefined): command is T & { state: ActiveCommandState } {
  return command != null && !isFinalCommandState(command.state);
}
