/** An offline host keeps its last known colours, marked stale (docs/compartments.md "Offline hosts"). */
import type { Compartment, Compartments } from "../protocol.ts";
import { roughDuration } from "../text.ts";
import { type HostFacts, time } from "./host.ts";

export function markOffline(computed: Compartments, host: HostFacts): Compartments {
  const { inputs } = host;
  const seen = inputs.lastSeenAt ?? inputs.reportedAt;
  const prefix = seen === null ? "offline" : `offline for ${roughDuration(host.now - time(seen))}`;
  const stale = (compartment: Compartment): Compartment => ({
    ...compartment,
    stale: true,
    reason: `${prefix} — last known: ${compartment.reason}`,
  });
  const agent = computed.agent;
  return {
    // An agent that does not answer is unknown (gray), unless a command explains the silence (see docs/compartments.md "Offline hosts").
    agent:
      agent.state === "blue" || (agent.state === "red" && agent.commandId !== null)
        ? stale(agent)
        : { ...stale(agent), state: "gray", action: null, since: seen },
    git: stale(computed.git),
    lock: stale(computed.lock),
    system: stale(computed.system),
    tests: stale(computed.tests),
  };
}
