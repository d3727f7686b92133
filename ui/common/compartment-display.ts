/**
 * How a compartment looks and reads. Colour is never the only signal: every
 * state has an icon and a word, and the reason travels as the description.
 */
import type { Compartment, CompartmentName, CompartmentState } from "../../common/protocol.ts";

export interface StateDisplay {
  icon: string;
  label: string;
}

const STATE_DISPLAY: Record<CompartmentState, StateDisplay> = {
  green: { icon: "✓", label: "current" },
  yellow: { icon: "!", label: "outdated" },
  red: { icon: "✕", label: "failed" },
  blue: { icon: "⟳", label: "working" },
  gray: { icon: "?", label: "unknown" },
};

// Tests pass or have not run; "current"/"outdated" would say the wrong thing.
const TESTS_LABELS: Partial<Record<CompartmentState, string>> = { green: "passed", yellow: "not run" };

export const COMPARTMENT_TITLES: Record<CompartmentName, string> = {
  agent: "Agent",
  git: "Git",
  lock: "Lock",
  system: "System",
  tests: "Tests",
};

/** The question each compartment answers (the headings of docs/compartments.md "Precedence per compartment"), for headers and the host page. */
export const COMPARTMENT_QUESTIONS: Record<CompartmentName, string> = {
  agent: "Is the nixfleet-agent current?",
  git: "Is the host's clone up to date with the branch?",
  lock: "Is flake.lock current?",
  system: "Is the running system what the clone builds?",
  tests: "Is the system actually working?",
};

export function stateDisplay(name: CompartmentName, state: CompartmentState): StateDisplay {
  const base = STATE_DISPLAY[state];
  const label = name === "tests" ? (TESTS_LABELS[state] ?? base.label) : base.label;
  return { icon: base.icon, label };
}

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
