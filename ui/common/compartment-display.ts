/**
 * How a compartment looks and reads. Colour is never the only signal: every
 * state has an icon and a word, and the reason travels as the description.
 */
import type { Compartment, CompartmentName, CompartmentState } from "../../common/protocol.ts";
import { COMPARTMENT_TITLES, STATE_DISPLAY, stateDisplay, type StateDisplay } from "../../common/compartments/display.ts";

export { COMPARTMENT_TITLES, stateDisplay, type StateDisplay };

/** The question each compartment answers (the headings of docs/compartments.md "Precedence per compartment"), for headers and the host page. */
export const COMPARTMENT_QUESTIONS: Record<CompartmentName, string> = {
  agent: "Is the nixfleet-agent current?",
  git: "Is the host's clone up to date with the branch?",
  lock: "Is flake.lock current?",
  system: "Is the running system what the clone builds?",
  tests: "Is the system actually working?",
};

/** Each state's icon: the fleet table draws it from the cell's state class (compartment-cell.ts). */
export const STATE_ICONS: Record<CompartmentState, string> = Object.fromEntries(
  Object.entries(STATE_DISPLAY).map(([state, display]) => [state, display.icon]),
) as Record<CompartmentState, string>;

/**
 * Why a compartment is in its state, for the tooltip and the accessible description: "behind main: …".
 * The compartment and its state are the cell's name already (its aria-label), so they are not said twice.
 */
export function describeCompartment(compartment: Compartment, extra?: string): string {
  const stale = compartment.stale ? "last known state: the host is offline. " : "";
  const more = extra ? ` ${extra}` : "";
  return `${stale}${compartment.reason}${more}`;
}
