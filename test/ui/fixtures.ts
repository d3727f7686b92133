/** Valid protocol objects for the dashboard's tests, parsed so they stay valid as the protocol moves. */
import {
  CommandView,
  HostView,
  UpdatePr,
  type Compartment,
  type CompartmentName,
  type CompartmentState,
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
