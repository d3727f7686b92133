import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { DashboardApi } from "../../ui/data/api.ts";
import { applyEvent, applyFleet, applyRollout, currentRollouts, initialFleetState, withLiveRollouts } from "../../ui/data/fleet-state.ts";
import { FleetStore, type LiveHandlers } from "../../ui/data/store.ts";
import { FakeControlPlane } from "./fake-control-plane.ts";
import { hostView, rolloutView } from "./fixtures.ts";

const fleetOf = (...names: string[]) => ({ hosts: names.map((name) => hostView(name)), summary: {}, repo: null, updatePrs: [] });

describe("rollout events in the dashboard state", () => {
  it("keeps the rollout from its event and marks its hosts' rows, with no refetch", () => {
    const state = applyFleet(initialFleetState(), fleetOf("canary1", "web1", "web2", "db1"));
    const rollout = rolloutView("ro_1", [["canary1"], ["web1", "web2"]], { steps: { canary1: "verifying" } });
    const { state: next, effects } = applyEvent(state, { type: "rollout", rollout });
    expect(effects).toEqual([]);
    expect(next.rollouts.map((r) => r.id)).toEqual(["ro_1"]);
    expect(next.hosts.map((host) => [host.name, host.rollout])).toEqual([
      ["canary1", { id: "ro_1", state: "verifying", wave: 1 }],
      ["db1", null],
      ["web1", { id: "ro_1", state: "waiting", wave: 2 }],
      ["web2", { id: "ro_1", state: "waiting", wave: 2 }],
    ]);
    // A row whose part did not change stays the same object: the table does not redraw it.
    const moved = applyRollout(next, { ...rollout, done: 1, waves: rollout.waves.map((w, i) => (i === 0 ? { ...w, state: "passed", hosts: [{ name: "canary1", state: "done" }] } : w)) });
    expect(moved.hosts.find((h) => h.name === "web1")).toBe(next.hosts.find((h) => h.name === "web1"));
    expect(moved.hosts.find((h) => h.name === "canary1")?.rollout?.state).toBe("done");
    expect(moved.rollouts[0]?.done).toBe(1);
  });

  it("clears the marks when the rollout ends, and a superseded rollout's late event does not clear its successor's", () => {
    let state = applyFleet(initialFleetState(), fleetOf("web1", "web2"));
    state = applyRollout(state, rolloutView("ro_1", [["web1", "web2"]]));
    state = applyRollout(state, rolloutView("ro_2", [["web1", "web2"]], { startedAt: "2025-12-01T12:01:00.000Z" }));
    state = applyRollout(state, rolloutView("ro_1", [["web1", "web2"]], { state: "cancelled", stoppedBecause: "superseded by ro_2" }));
    expect(state.hosts.map((h) => h.rollout?.id)).toEqual(["ro_2", "ro_2"]);
    expect(state.rollouts.map((r) => r.id)).toEqual(["ro_2", "ro_1"]);
    state = applyRollout(state, rolloutView("ro_2", [["web1", "web2"]], { state: "succeeded", finishedAt: "2025-12-01T12:05:00.000Z" }));
    expect(state.hosts.map((h) => h.rollout)).toEqual([null, null]);
  });

  it("shows every rollout in progress on the fleet page, else the last one for an hour after it ended", () => {
    const ended = rolloutView("ro_1", [["web1"]], { state: "failed", finishedAt: "2025-12-01T12:10:00.000Z" });
    const at = (iso: string) => Date.parse(iso);
    expect(currentRollouts([ended], at("2025-12-01T12:30:00.000Z")).map((r) => r.id)).toEqual(["ro_1"]);
    expect(currentRollouts([ended], at("2025-12-01T13:30:00.000Z"))).toEqual([]);
    const running = rolloutView("ro_2", [["web1"]], { startedAt: "2025-12-01T12:20:00.000Z" });
    expect(currentRollouts([running, ended], at("2025-12-01T12:30:00.000Z")).map((r) => r.id)).toEqual(["ro_2"]);
  });

  it("puts live rollouts into the history's pages: newer ones on top, known ones replaced, older pages untouched", () => {
    const paged = [
      rolloutView("ro_2", [["web1"]], { startedAt: "2025-12-01T11:00:00.000Z" }),
      rolloutView("ro_1", [["web1"]], { startedAt: "2025-12-01T10:00:00.000Z", state: "succeeded" }),
    ];
    const live = [
      rolloutView("ro_3", [["web1"]], { startedAt: "2025-12-01T12:00:00.000Z" }),
      rolloutView("ro_2", [["web1"]], { startedAt: "2025-12-01T11:00:00.000Z", state: "failed" }),
      rolloutView("ro_0", [["web1"]], { startedAt: "2025-12-01T09:00:00.000Z" }),
    ];
    const merged = withLiveRollouts(paged, live);
    expect(merged.map((r) => [r.id, r.state])).toEqual([
      ["ro_3", "running"],
      ["ro_2", "failed"],
      ["ro_1", "succeeded"],
    ]);
    expect(withLiveRollouts([], live).map((r) => r.id)).toEqual(["ro_3", "ro_2", "ro_0"]);
  });
});

describe("the store and rollouts", () => {
  let server: FakeControlPlane;
  let live: LiveHandlers;
  let store: FleetStore;

  beforeEach(async () => {
    server = await new FakeControlPlane().start();
    server.on("GET /api/health", { json: { ok: true, version: "0.1.0", protocol: 1 } });
    server.on("GET /api/hosts", { json: fleetOf("web1", "web2") });
    server.on("GET /api/rollouts", { json: { rollouts: [rolloutView("ro_1", [["web1"], ["web2"]], { steps: { web1: "verifying" } })] } });
    store = new FleetStore({
      api: new DashboardApi({ baseUrl: server.url }),
      connect: (handlers) => {
        live = handlers;
        return { start: () => undefined, stop: () => undefined };
      },
    });
  });
  afterEach(async () => {
    store.stop();
    await store.idle();
    await server.stop();
  });

  it("loads the running rollout at start, then follows its events without fetching the fleet again", async () => {
    let release!: () => void;
    // The rollouts answer lands after the fleet's, and must not undo it.
    server.on("GET /api/rollouts", {
      json: { rollouts: [rolloutView("ro_1", [["web1"], ["web2"]], { steps: { web1: "verifying" } })] },
      delay: new Promise<void>((resolve) => (release = resolve)),
    });
    store.start();
    await vi.waitFor(() => expect(store.state.hosts.map((h) => h.name)).toEqual(["web1", "web2"]), { timeout: 10_000 });
    release();
    await store.idle();
    expect(store.state.hosts.map((h) => h.name)).toEqual(["web1", "web2"]);
    expect(store.state.rollouts[0]?.waves[0]?.hosts[0]?.state).toBe("verifying");
    expect(server.requests.find((r) => r.path.startsWith("/api/rollouts"))?.path).toBe("/api/rollouts?limit=5");
    const fleetLoads = server.count("GET /api/hosts");
    live.onEvent({ type: "rollout", rollout: rolloutView("ro_1", [["web1"], ["web2"]], { currentWave: 2, steps: { web1: "done", web2: "pulling" } }) });
    await store.idle();
    expect(store.state.rollouts[0]?.done).toBe(1);
    expect(store.state.hosts.map((h) => h.rollout?.state)).toEqual(["done", "pulling"]);
    expect(server.count("GET /api/hosts")).toBe(fleetLoads);
  });

  it("shows a started or cancelled rollout at once from the answer, before any event", async () => {
    server.on("POST /api/rollouts", { status: 201, json: { rollout: rolloutView("ro_2", [["web2"]], { startedAt: "2025-12-01T13:00:00.000Z" }) } });
    server.on("POST /api/rollouts/ro_2/cancel", {
      json: { rollout: rolloutView("ro_2", [["web2"]], { state: "cancelled", stoppedBecause: "cancelled by alice", startedAt: "2025-12-01T13:00:00.000Z" }) },
    });
    store.start();
    await store.idle();
    await store.startRollout({ hosts: ["web2"] });
    expect(store.state.rollouts[0]?.id).toBe("ro_2");
    expect(store.state.hosts.find((h) => h.name === "web2")?.rollout).toEqual({ id: "ro_2", state: "waiting", wave: 1 });
    await store.cancelRollout("ro_2");
    expect(store.state.rollouts[0]?.state).toBe("cancelled");
    expect(store.state.hosts.find((h) => h.name === "web2")?.rollout).toBeNull();
  });

  it("marks a host held and released on its row as soon as the server agrees", async () => {
    const hold = { reason: "kernel bisect", until: null, by: "alice@example.com", at: "2025-12-01T12:00:00.000Z" };
    server.on("PUT /api/hosts/web1/hold", { json: { hold } });
    server.on("DELETE /api/hosts/web1/hold", { json: { ok: true } });
    store.start();
    await store.idle();
    await store.setHold("web1", { reason: "kernel bisect" });
    expect(store.state.hosts.find((h) => h.name === "web1")?.hold).toEqual(hold);
    await store.releaseHold("web1");
    expect(store.state.hosts.find((h) => h.name === "web1")?.hold).toBeNull();
  });

  it("keeps the fleet working when the rollouts cannot be read", async () => {
    server.on("GET /api/rollouts", { status: 500, json: { error: { code: "internal", message: "boom" } } });
    store.start();
    await store.idle();
    expect(store.state.phase).toBe("ready");
    expect(store.state.rollouts).toEqual([]);
  });
});
