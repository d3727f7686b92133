import { describe, expect, it } from "vitest";
import {
  applyCommand,
  applyEvent,
  applyFleet,
  applyHost,
  applyOutput,
  initialFleetState,
  mergeChunks,
  pendingUpdatePr,
  summarize,
  type FleetState,
} from "../../ui/data/fleet-state.ts";
import { chunk, command, compartment, hostDetail, hostView, updatePr } from "./fixtures.ts";

function fleetOf(...names: string[]): FleetState {
  return applyFleet(initialFleetState(), { hosts: names.map((name) => hostView(name)), summary: {}, repo: null, updatePrs: [] });
}

describe("applyFleet", () => {
  it("sorts hosts by name, counts their colours and drops the details of hosts that are gone", () => {
    let state = fleetOf("beta", "alpha");
    state = applyHost(state, hostDetail("beta"), { keepDetail: true });
    expect(state.hosts.map((host) => host.name)).toEqual(["alpha", "beta"]);
    expect(state.summary.git.gray).toBe(2);
    expect(state.phase).toBe("ready");
    state = applyFleet(state, { hosts: [hostView("alpha")], summary: {}, repo: null, updatePrs: [] });
    expect(state.details).toEqual({});
  });
});

describe("applyEvent", () => {
  it("marks a host online at once and asks for its fresh state", () => {
    const { state, effects } = applyEvent(fleetOf("alpha"), { type: "host", host: "alpha", online: true });
    expect(state.hosts[0]?.online).toBe(true);
    expect(effects).toEqual([{ type: "refresh-host", host: "alpha" }]);
  });

  it("reads the whole fleet again for a host it does not know", () => {
    expect(applyEvent(fleetOf("alpha"), { type: "host", host: "zeta" }).effects).toEqual([{ type: "refresh-fleet" }]);
  });

  it("removes a removed host with its details", () => {
    const withDetail = applyHost(fleetOf("alpha", "beta"), hostDetail("alpha"), { keepDetail: true });
    const { state, effects } = applyEvent(withDetail, { type: "host", host: "alpha", removed: true });
    expect(state.hosts.map((host) => host.name)).toEqual(["beta"]);
    expect(state.details.alpha).toBeUndefined();
    expect(state.summary.agent.gray).toBe(1);
    expect(effects).toEqual([]);
  });

  it("reads the fleet again when the repository or its update PRs changed", () => {
    expect(applyEvent(fleetOf("alpha"), { type: "repo" }).effects).toEqual([{ type: "refresh-fleet" }]);
  });

  it("ignores hello and pong", () => {
    const state = fleetOf("alpha");
    expect(applyEvent(state, { type: "pong" })).toEqual({ state, effects: [] });
  });
});

describe("applyCommand", () => {
  it("makes a queued command the host's active one, adds it to the open history, and refetches the compartments", () => {
    const state = applyHost(fleetOf("alpha"), hostDetail("alpha", [command("alpha", { state: "succeeded" })]), { keepDetail: true });
    const queued = command("alpha", { kind: "pull-switch" });
    const next = applyCommand(state, queued);
    expect(next.state.hosts[0]?.activeCommand?.id).toBe(queued.id);
    expect(next.state.details.alpha?.commands[0]?.id).toBe(queued.id);
    expect(next.state.details.alpha?.commands).toHaveLength(2);
    expect(next.effects).toEqual([{ type: "refresh-host", host: "alpha" }]);
  });

  it("replaces a known command in the history and clears the active command when it ends", () => {
    const running = command("alpha", { state: "running" });
    let state = applyHost(fleetOf("alpha"), hostDetail("alpha", [running], { activeCommand: running }), { keepDetail: true });
    state = applyCommand(state, { ...running, state: "failed", exitCode: 1 }).state;
    expect(state.details.alpha?.commands).toHaveLength(1);
    expect(state.details.alpha?.commands[0]?.state).toBe("failed");
    expect(state.details.alpha?.activeCommand).toBeNull();
    expect(state.hosts[0]?.activeCommand).toBeNull();
  });

  it("leaves another command active when an unrelated one ends", () => {
    const running = command("alpha", { state: "running" });
    const state = applyHost(fleetOf("alpha"), hostDetail("alpha", [], { activeCommand: running }), { keepDetail: false });
    const next = applyCommand(state, command("alpha", { kind: "stop", state: "succeeded" })).state;
    expect(next.hosts[0]?.activeCommand?.id).toBe(running.id);
  });
});

describe("output", () => {
  const watched = (state: FleetState, id: string): FleetState => ({
    ...state,
    outputs: { [id]: { commandId: id, chunks: [], truncated: false, loaded: false, error: null } },
  });

  it("appends live chunks to a watched command, once each, in order", () => {
    let state = watched(fleetOf("alpha"), "cmd_watched0001");
    state = applyEvent(state, { type: "output", host: "alpha", commandId: "cmd_watched0001", chunks: [chunk(0, "a"), chunk(1, "b")] }).state;
    state = applyEvent(state, { type: "output", host: "alpha", commandId: "cmd_watched0001", chunks: [chunk(1, "b"), chunk(2, "c")] }).state;
    expect(state.outputs.cmd_watched0001?.chunks.map((c) => c.data)).toEqual(["a", "b", "c"]);
  });

  it("keeps nothing for commands nobody watches", () => {
    const state = fleetOf("alpha");
    expect(applyEvent(state, { type: "output", host: "alpha", commandId: "cmd_nobody00001", chunks: [chunk(0, "x")] }).state).toBe(state);
  });

  it("merges a stored page that arrives after live chunks, and notes truncation", () => {
    let state = watched(fleetOf("alpha"), "cmd_watched0002");
    state = applyOutput(state, "cmd_watched0002", [chunk(5, "live")]);
    state = applyOutput(state, "cmd_watched0002", [chunk(3, "old"), chunk(4, "older")], { truncated: true, loaded: true });
    const output = state.outputs.cmd_watched0002;
    expect(output?.chunks.map((c) => c.seq)).toEqual([3, 4, 5]);
    expect(output?.truncated).toBe(true);
    expect(output?.loaded).toBe(true);
  });

  it("mergeChunks keeps the linear path for in-order chunks and sorts otherwise", () => {
    expect(mergeChunks([chunk(0, "a")], [chunk(1, "b")]).map((c) => c.seq)).toEqual([0, 1]);
    expect(mergeChunks([chunk(2, "c")], [chunk(0, "a"), chunk(2, "dup")]).map((c) => c.data)).toEqual(["a", "c"]);
  });
});

describe("summary and update PRs", () => {
  it("counts every state of every compartment, zeros included", () => {
    const summary = summarize([
      hostView("a", { states: { git: compartment("yellow") } }),
      hostView("b", { states: { git: compartment("green") } }),
    ]);
    expect(summary.git).toEqual({ green: 1, yellow: 1, red: 0, blue: 0, gray: 0 });
  });

  it("offers the open update PR that is not superseded", () => {
    expect(pendingUpdatePr([updatePr({ number: 1, superseded: true }), updatePr({ number: 2 })])?.number).toBe(2);
    expect(pendingUpdatePr([updatePr({ state: "merged" })])).toBeNull();
  });
});
