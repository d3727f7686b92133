/** What the benchmarks' parent and their client processes (bench/swarm-process.ts) tell each other, and the report a simulated agent sends. */
import { z } from "zod";
import { PROTOCOL_VERSION, type Report } from "../common/protocol.ts";
import { NIXFLEET_VERSION } from "../common/version.ts";

export const FromParent = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("start"),
    url: z.string(),
    pollSeconds: z.number(),
    agents: z.array(z.object({ name: z.string(), token: z.string(), session: z.string() })),
    /**
     * What an agent sends for a command it received. "finished": its end alone, at once (the dispatch
     * bench's quickest loop). "as-agent": what the agent sends for a command with output (agent/command-events.ts):
     * `started`, an `output` event, `finished`; then, as after a `refresh`, its report with the next poll.
     */
    commandEvents: z.enum(["finished", "as-agent"]).default("finished"),
  }),
  /** One bare round trip (`url`, a GET) from the probe process, timed as its agents' polls are. */
  z.object({ type: z.literal("bare"), url: z.string() }),
  /** The admin's POST /api/hosts/:host/commands, sent from the probe process so one clock times it and the agent's receipt. */
  z.object({ type: z.literal("enqueue"), url: z.string(), host: z.string(), kind: z.string() }),
  z.object({ type: z.literal("counters") }),
  /** A CPU profile of the client process (bench/cpu-profile.ts): started, then stopped and sent back. */
  z.object({ type: z.literal("profile"), action: z.enum(["start", "stop"]) }),
  z.object({ type: z.literal("stop") }),
]);
export type FromParent = z.infer<typeof FromParent>;

export const FromSwarm = z.discriminatedUnion("type", [
  z.object({ type: z.literal("ready") }),
  /** `at`: when the agent had the poll's answer; `answeredMark`: when the Worker had it from the coordinator (Server-Timing). */
  z.object({ type: z.literal("received"), host: z.string(), command: z.string(), at: z.number(), answeredMark: z.number().nullable() }),
  z.object({ type: z.literal("error"), host: z.string(), message: z.string() }),
  z.object({ type: z.literal("bare"), ms: z.number().nullable(), error: z.string().optional() }),
  z.object({ type: z.literal("enqueued"), sent: z.number(), answered: z.number(), status: z.number(), json: z.unknown(), serverTiming: z.string().nullable() }),
  z.object({ type: z.literal("counters"), requests: z.number(), errors: z.number() }),
  /** The profile asked for: started (null), or stopped (the DevTools Protocol's Profiler.Profile). */
  z.object({ type: z.literal("profile"), profile: z.unknown() }),
]);
export type FromSwarm = z.infer<typeof FromSwarm>;

/** A Server-Timing mark's wall-clock time (worker/server-timing.ts), or null when the answer has none. */
export function serverMark(header: string | null, name: string): number | null {
  const match = header === null ? null : new RegExp(`(?:^|,\\s*)${name};desc="(\\d+)"`).exec(header);
  return match ? Number(match[1]) : null;
}

export function benchReport(hostname: string, commit = "a".repeat(40)): Report {
  return {
    protocol: PROTOCOL_VERSION,
    agentVersion: NIXFLEET_VERSION,
    platform: "nixos",
    hostname,
    os: { value: "NixOS 25.05 (Warbler)" },
    nixpkgsVersion: { value: "25.05.20250101.abcdef0" },
    nixVersion: { value: "2.28.3" },
    repo: { commit: { value: commit }, branch: { value: "main" }, dirty: false },
    lock: { hash: { value: "b".repeat(64) }, lastModified: { nixpkgs: 1_702_234_567 } },
    system: { current: { value: `/nix/store/${"c".repeat(32)}-nixos-system-${hostname}` }, builtFromCommit: commit },
    tests: { configured: false, autoRunAfterSwitch: false, last: null },
    uptimeSeconds: 1000,
    agentUptimeSeconds: 10,
    rollout: { autoUpdate: true, priority: 100, canary: false },
  };
}
