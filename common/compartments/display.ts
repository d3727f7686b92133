/**
 * The word each compartment state is shown by, in the dashboard's components and in the fleet table the
 * Worker writes into the page (worker/fleet-page.ts): one source, so the two cannot say different things.
 */
import type { CompartmentName, CompartmentState } from "../protocol.ts";

export interface StateDisplay {
  icon: string;
  label: string;
}

export const STATE_DISPLAY: Record<CompartmentState, StateDisplay> = {
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

export function stateDisplay(name: CompartmentName, state: CompartmentState): StateDisplay {
  const base = STATE_DISPLAY[state];
  const label = name === "tests" ? (TESTS_LABELS[state] ?? base.label) : base.label;
  return { icon: base.icon, label };
}
