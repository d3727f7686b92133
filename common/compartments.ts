/**
 * The five compartments — Agent, Git, Lock, System, Tests — computed from what the control plane
 * knows about one host (docs/compartments.md). Pure and synchronous: the worker and the dashboard
 * run this same function on the same inputs and get the same colours and the same words.
 *
 * One file a compartment in common/compartments/; the rules, their precedence and the reasons
 * behind the choices are in docs/compartments.md; keep the two in step.
 */
import { COMPARTMENT_NAMES } from "./protocol.ts";
import type { CompartmentName, CompartmentState, Compartments } from "./protocol.ts";
import { agentCompartment } from "./compartments/agent.ts";
import { gitCompartment } from "./compartments/git.ts";
import { HostFacts, type CompartmentInputs } from "./compartments/host.ts";
import { lockCompartment } from "./compartments/lock.ts";
import { markOffline } from "./compartments/offline.ts";
import { systemCompartment } from "./compartments/system.ts";
import { testsCompartment } from "./compartments/tests.ts";

export { compartmentsOfCommand, type CompartmentInputs } from "./compartments/host.ts";
export { LOCK_AGE_DAYS, lockAge } from "./compartments/lock.ts";
export { firstErrorLine } from "./text.ts";

/** One colour per compartment for one host. */
export function computeCompartments(inputs: CompartmentInputs): Compartments {
  const host = new HostFacts(inputs);
  const computed: Compartments = {
    agent: agentCompartment(host),
    git: gitCompartment(host),
    lock: lockCompartment(host),
    system: systemCompartment(host),
    tests: testsCompartment(host),
  };
  return inputs.report !== null && !inputs.online ? markOffline(computed, host) : computed;
}

/** How many hosts show each colour in each compartment; every count present, zeros included. */
export function summarizeFleet(all: Compartments[]): Record<CompartmentName, Record<CompartmentState, number>> {
  const zero = (): Record<CompartmentState, number> => ({ green: 0, yellow: 0, red: 0, blue: 0, gray: 0 });
  const summary = {
    agent: zero(),
    git: zero(),
    lock: zero(),
    system: zero(),
    tests: zero(),
  } satisfies Record<CompartmentName, Record<CompartmentState, number>>;
  for (const compartments of all) {
    for (const name of COMPARTMENT_NAMES) summary[name][compartments[name].state] += 1;
  }
  return summary;
}
