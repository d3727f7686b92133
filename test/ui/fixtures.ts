/** Valid protocol objects for the dashboard's tests, parsed so they stay valid as the protocol moves. */
import {
  CommandView,
  FleetBuildView,
  HostView,
  RolloutPlanView,
  RolloutView,
  UpdatePr,
  type Compartment,
  type CompartmentName,
  type CompartmentState,
  type FleetBuildHostView,
  type StoredOutputChunk,
} from "../../common/protocol.ts";
import { HostDetail } from "../../ui/data/schemas.ts";

let counter = 0;

export function compartment(state: CompartmentState = "gray", overrides: Partial<Compartment> = {}): Compartment {
  return { state, reason: `${state} for a reason`, action: null, since: null, stale: false, commandId: null, ...overrides };
}

export function hostView(name: string, overrides: Partial<HostView> & { states?: Partial<Record<CompartmentName, Compartment>> } = {}): HostView {
  const { states, ...rest } = overrides;
  return HostView.parse({
    id: `host_${name}`,
    name,
    platform: "nixos",
    flakeAttr: name,
    createdAt: "2025-12-01T10:00:00.000Z",
    online: false,
    lastSeenAt: null,
    report: null,
    reportedAt: null,
    activeCommand: null,
    compartments: {
      agent: compartment(),
      git: compartment(),
      lock: compartment(),
      system: compartment(),
      tests: compartment(),
      ...states,
    },
    ...rest,
  });
}

export function hostDetail(name: string, commands: CommandView[] = [], overrides: Partial<HostView> = {}): HostDetail {
  return HostDetail.parse({ ...hostView(name, overrides), commands });
}

export function command(host: string, overrides: Partial<CommandView> = {}): CommandView {
  counter += 1;
  return CommandView.parse({
    id: `cmd_test${String(counter).padStart(8, "0")}`,
    host,
    kind: "pull",
    state: "queued",
    target: null,
    actor: "developer@localhost",
    createdAt: new Date(Date.UTC(2025, 11, 1, 10, 0, counter)).toISOString(),
    deliveredAt: null,
    startedAt: null,
    finishedAt: null,
    deadlineAt: "2025-12-02T10:00:00.000Z",
    expiresAt: "2025-12-02T10:00:00.000Z",
    exitCode: null,
    error: null,
    result: null,
    ...overrides,
  });
}

export function chunk(seq: number, data: string, stream: StoredOutputChunk["stream"] = "stdout"): StoredOutputChunk {
  return { seq, stream, data, at: "2025-12-01T10:00:00.000Z" };
}

export function updatePr(overrides: Partial<UpdatePr> = {}): UpdatePr {
  return UpdatePr.parse({
    number: 42,
    title: "flake.lock: Update",
    url: "https://github.com/example/fleet/pull/42",
    state: "open",
    headSha: "a".repeat(40),
    headRef: "update-flake-lock",
    baseRef: "main",
    labels: ["automated"],
    ciState: "success",
    mergeable: true,
    createdAt: "2025-12-01T10:00:00.000Z",
    updatedAt: "2025-12-01T10:00:00.000Z",
    mergedAt: null,
    mergeCommitSha: null,
    superseded: false,
    lockChanges: [],
    ...overrides,
  });
}

/** A rollout of `commit` over waves of host names (the first the canary), every host `waiting` unless `steps` says. */
export function rolloutView(
  id: string,
  waves: string[][],
  overrides: Partial<RolloutView> & { steps?: Record<string, RolloutView["waves"][number]["hosts"][number]["state"]> } = {},
): RolloutView {
  const { steps = {}, ...rest } = overrides;
  const total = waves.flat().length;
  return RolloutView.parse({
    id,
    state: "running",
    commit: "c".repeat(40),
    startedBy: "alice@example.com",
    automatic: false,
    startedAt: "2025-12-01T12:00:00.000Z",
    done: Object.values(steps).filter((step) => step === "done").length,
    total,
    pending: 0,
    currentWave: 1,
    waves: waves.map((hosts, i) => ({
      index: i + 1,
      canary: i === 0 && waves.length > 1,
      state: i === 0 ? "running" : "waiting",
      hosts: hosts.map((name) => ({ name, state: steps[name] ?? "waiting" })),
    })),
    leftOut: [],
    ...rest,
  });
}

export function rolloutPlan(waves: string[][], leftOut: { name: string; reason: string }[] = [], pr: number | null = null): RolloutPlanView {
  return RolloutPlanView.parse({
    commit: "c".repeat(40),
    pr,
    waves: waves.map((hosts, i) => ({ index: i + 1, canary: i === 0 && waves.length > 1, hosts })),
    leftOut,
  });
}

/**
 * A fleet build of PR 42's head (`a…a`, as `updatePr()`), one host per entry;
 * the verdict and counts follow from the hosts as the control plane's rules would.
 */
export function fleetBuild(hosts: (Partial<FleetBuildHostView> & { name: string })[], overrides: Partial<FleetBuildView> = {}): FleetBuildView {
  const views = hosts.map((host) => ({ state: "queued" as const, counted: true, ...host }));
  const counted = views.filter((host) => host.counted);
  const built = counted.filter((host) => host.state === "built").length;
  const failed = counted.filter((host) => host.state === "failed");
  const verdict = failed.length > 0 ? "failure" : built === counted.length ? "success" : "pending";
  return FleetBuildView.parse({
    id: "fb_test",
    pr: 42,
    headSha: "a".repeat(40),
    verdict,
    built,
    counted: counted.length,
    description: `${built}/${counted.length} hosts built${failed.length > 0 ? `, ${failed.map((h) => h.name).join(", ")} failed: ${failed[0]!.reason ?? "no error message"}` : ""}`,
    startedBy: "developer@localhost",
    startedAt: "2025-12-01T10:00:00.000Z",
    hosts: views,
    ...overrides,
  });
}
