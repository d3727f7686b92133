import type { CacheUsage } from "../../common/protocol.ts";
import { COMMAND_KINDS, COMMAND_STATES, COMPARTMENT_NAMES, CompartmentState, ROLLOUT_STATES, isFinalCommandState, type HostView } from "../../common/protocol.ts";
import { ACTIVE_COMMAND_STATES } from "../../common/commands.ts";
import { COMMAND_DURATION_BOUNDS } from "../db/coordinator-storage.ts";
import type { CoordinatorMetrics } from "../objects/coordinator.ts";
import type { MetricFamily, Sample } from "./exposition.ts";

export interface MetricsInputs {
  hosts: Pick<HostView, "online" | "compartments" | "rebootNeeded">[];
  coordinator: CoordinatorMetrics;
  lastWebhookAt: string | null;
  /** The binary cache as its last clean-up counted it; null before the first. */
  cache: CacheUsage | null;
  now: number;
}

const FINAL_STATES = COMMAND_STATES.filter(isFinalCommandState);

/**
 * What GET /metrics exposes. Every known label combination is present, at 0
 * when nothing counted it yet, so `rate()` and alerts see a series from the start.
 */
export function metricFamilies({ hosts, coordinator, lastWebhookAt, cache, now }: MetricsInputs): MetricFamily[] {
  const compartments: Sample[] = [];
  for (const compartment of COMPARTMENT_NAMES) {
    for (const state of CompartmentState.options) {
      const value = hosts.filter((host) => host.compartments[compartment].state === state).length;
      compartments.push({ labels: { compartment, state }, value });
    }
  }

  const totals = new Map(coordinator.commandTotals.map((row) => [`${row.kind} ${row.outcome}`, row.count]));
  const durations = new Map(coordinator.commandDurations.map((row) => [row.kind, row]));
  const active = new Map<string, number>();
  for (const command of coordinator.activeCommands) active.set(`${command.kind} ${command.state}`, (active.get(`${command.kind} ${command.state}`) ?? 0) + 1);

  const families: MetricFamily[] = [
    { name: "nixfleet_hosts", help: "Hosts in the fleet.", type: "gauge", samples: [{ value: hosts.length }] },
    { name: "nixfleet_hosts_online", help: "Hosts whose agent is connected.", type: "gauge", samples: [{ value: hosts.filter((host) => host.online).length }] },
    {
      name: "nixfleet_hosts_reboot_needed",
      help: "NixOS hosts whose system profile boots another kernel, initrd or kernel modules than the ones they booted.",
      type: "gauge",
      samples: [{ value: hosts.filter((host) => host.rebootNeeded === true).length }],
    },
    { name: "nixfleet_host_compartments", help: "Hosts by compartment and its state (green, yellow, red, blue, gray).", type: "gauge", samples: compartments },
    {
      name: "nixfleet_commands_total",
      help: "Commands that reached a final state, by kind and outcome, since the coordinator kept the count.",
      type: "counter",
      samples: COMMAND_KINDS.flatMap((kind) => FINAL_STATES.map((outcome) => ({ labels: { kind, outcome }, value: totals.get(`${kind} ${outcome}`) ?? 0 }))),
    },
    {
      name: "nixfleet_commands_active",
      help: "Commands not yet final, by kind and state.",
      type: "gauge",
      samples: COMMAND_KINDS.flatMap((kind) => ACTIVE_COMMAND_STATES.map((state) => ({ labels: { kind, state }, value: active.get(`${kind} ${state}`) ?? 0 }))),
    },
    {
      name: "nixfleet_command_duration_seconds",
      help: "How long finished commands ran, from started to finished, by kind.",
      type: "histogram",
      samples: COMMAND_KINDS.map((kind) => {
        const row = durations.get(kind);
        return {
          labels: { kind },
          bounds: COMMAND_DURATION_BOUNDS,
          counts: row?.buckets ?? new Array<number>(COMMAND_DURATION_BOUNDS.length + 1).fill(0),
          sum: row?.sumSeconds ?? 0,
        };
      }),
    },
    {
      name: "nixfleet_rollouts",
      help: "Rollouts by state.",
      type: "gauge",
      samples: ROLLOUT_STATES.map((state) => ({ labels: { state }, value: coordinator.rolloutStates[state] ?? 0 })),
    },
    { name: "nixfleet_agent_polls_per_minute", help: "Agent polls in the last 60 seconds.", type: "gauge", samples: [{ value: coordinator.pollsPerMinute }] },
    {
      name: "nixfleet_agent_reports_per_minute",
      help: "Agent reports (polls carrying a report) in the last 60 seconds.",
      type: "gauge",
      samples: [{ value: coordinator.reportsPerMinute }],
    },
    {
      name: "nixfleet_github_webhook_last_age_seconds",
      help: "Seconds since the newest GitHub webhook delivery arrived; absent when none is kept.",
      type: "gauge",
      samples: lastWebhookAt === null ? [] : [{ value: Math.max(0, (now - Date.parse(lastWebhookAt)) / 1000) }],
    },
    {
      name: "nixfleet_github_rate_limit_remaining",
      help: "Requests left in GitHub's rate-limit window, from the latest GitHub answer that carried x-ratelimit-remaining; absent before the first.",
      type: "gauge",
      samples: coordinator.githubRateLimit === null ? [] : [{ value: coordinator.githubRateLimit.remaining }],
    },
    {
      name: "nixfleet_cache_bytes",
      help: "Bytes in the binary cache's bucket as its last clean-up counted them, after its deletions (daily; uploads since are not counted); absent before the first.",
      type: "gauge",
      samples: cache === null ? [] : [{ value: cache.bytes }],
    },
    {
      name: "nixfleet_cache_objects",
      help: "Objects (narinfos, NARs, manifests) in the binary cache's bucket as its last clean-up counted them; absent before the first.",
      type: "gauge",
      samples: cache === null ? [] : [{ value: cache.objects }],
    },
    {
      name: "nixfleet_cache_counted_age_seconds",
      help: "Seconds since the binary cache's last clean-up counted nixfleet_cache_bytes and nixfleet_cache_objects; absent before the first.",
      type: "gauge",
      samples: cache === null ? [] : [{ value: Math.max(0, (now - Date.parse(cache.countedAt)) / 1000) }],
    },
  ];
  return families;
}
