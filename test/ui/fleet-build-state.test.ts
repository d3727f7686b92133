import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ApiError, DashboardApi } from "../../ui/data/api.ts";
import { applyEvent, applyFleet, applyFleetBuild, initialFleetState, pendingUpdatePr, type FleetState } from "../../ui/data/fleet-state.ts";
import { FleetStore, type LiveHandlers } from "../../ui/data/store.ts";
import { FakeControlPlane } from "./fake-control-plane.ts";
import { fleetBuild, hostView, updatePr } from "./fixtures.ts";

const withPr = (pr = updatePr()): FleetState => applyFleet(initialFleetState(), { hosts: [hostView("web1"), hostView("web2")], summary: {}, repo: null, updatePrs: [pr] });

describe("fleet build events in the dashboard's state", () => {
  it("fill in the banner's per-host lines as each host builds, without a refetch", () => {
    let state = withPr();
    const started = fleetBuild([{ name: "web1", state: "building" }, { name: "web2", state: "queued" }]);
    let transition = applyEvent(state, { type: "fleet-build", build: started });
    expect(transition.effects).toEqual([]);
    state = transition.state;
    expect(pendingUpdatePr(state.updatePrs)?.fleetBuild?.hosts.map((h) => h.state)).toEqual(["building", "queued"]);

    const done = fleetBuild([{ name: "web1", state: "built", durationMs: 41_000 }, { name: "web2", state: "built", durationMs: 39_000 }]);
    transition = applyEvent(state, { type: "fleet-build", build: done });
    state = transition.state;
    const shown = pendingUpdatePr(state.updatePrs)?.fleetBuild;
    expect(shown?.verdict).toBe("success");
    expect(shown?.hosts.map((h) => [h.name, h.state])).toEqual([
      ["web1", "built"],
      ["web2", "built"],
    ]);
  });

  it("ignores a build of another head or another PR (the state object stays the same)", () => {
    const state = withPr();
    expect(applyFleetBuild(state, fleetBuild([{ name: "web1" }], { headSha: "b".repeat(40) }))).toBe(state);
    expect(applyFleetBuild(state, fleetBuild([{ name: "web1" }], { pr: 7 }))).toBe(state);
  });

  it("keeps a re-run's build when the build it superseded sends its last event late", () => {
    let state = withPr();
    state = applyFleetBuild(state, fleetBuild([{ name: "web1", state: "building" }], { id: "fb_old" }));
    const rerun = fleetBuild([{ name: "web1", state: "queued" }], { id: "fb_new" });
    state = applyFleetBuild(state, rerun);
    const late = fleetBuild([{ name: "web1", state: "cancelled", reason: "a newer build" }], { id: "fb_old", superseded: true });
    expect(applyFleetBuild(state, late)).toBe(state);
    expect(pendingUpdatePr(state.updatePrs)?.fleetBuild?.id).toBe("fb_new");
    // The one build there is may still say it was superseded (a newer head the dashboard has not read yet).
    const alone = applyFleetBuild(withPr(), late);
    expect(pendingUpdatePr(alone.updatePrs)?.fleetBuild?.superseded).toBe(true);
  });
});

describe("Build on all hosts", () => {
  let server: FakeControlPlane;
  let store: FleetStore;
  let live: LiveHandlers;

  beforeEach(async () => {
    server = await new FakeControlPlane().start();
    server.on("GET /api/health", { json: { ok: true, version: "0.1.0", protocol: 1 } });
    server.on("GET /api/hosts", { json: { hosts: [hostView("web1")], summary: {}, repo: null, updatePrs: [updatePr()] } });
    store = new FleetStore({
      api: new DashboardApi({ baseUrl: server.url }),
      connect: (handlers) => {
        live = handlers;
        return { start: () => undefined, stop: () => undefined };
      },
    });
    store.start();
    await store.idle();
  });
  afterEach(async () => {
    store.stop();
    await store.idle();
    await server.stop();
  });

  it("posts to the PR's build route and shows the new build at once; the events then move it", async () => {
    const build = fleetBuild([{ name: "web1", state: "queued" }], { id: "fb_rerun" });
    server.on("POST /api/update-prs/42/build", { status: 201, json: { fleetBuild: build } });
    const answer = await store.buildUpdatePr(42);
    expect(answer.id).toBe("fb_rerun");
    const request = server.requests.find((r) => r.method === "POST" && r.path === "/api/update-prs/42/build");
    expect(JSON.parse(request!.body)).toEqual({});
    expect(pendingUpdatePr(store.state.updatePrs)?.fleetBuild?.hosts[0]?.state).toBe("queued");
    live.onEvent({ type: "fleet-build", build: fleetBuild([{ name: "web1", state: "built" }], { id: "fb_rerun" }) });
    expect(pendingUpdatePr(store.state.updatePrs)?.fleetBuild?.verdict).toBe("success");
  });

  it("hands the server's refusal on as it is, and refuses an answer that breaks the protocol", async () => {
    // What worker/routes/repo.ts answers for a PR that is no longer open (test/worker/fleet-build.test.ts checks the worker's side).
    const notOpen = { code: "update_pr_not_open", message: "update PR #42 is closed: only an open PR's head is built" };
    server.on("POST /api/update-prs/42/build", { status: 409, json: { error: notOpen } });
    const refused = await store.buildUpdatePr(42).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(ApiError);
    expect(refused).toMatchObject({ status: 409, ...notOpen });

    server.on("POST /api/update-prs/42/build", { json: { fleetBuild: { ...fleetBuild([{ name: "web1" }]), verdict: "maybe" } } });
    const bad = await store.buildUpdatePr(42).catch((err: unknown) => err);
    expect(bad).toMatchObject({ code: "bad_response" });
    expect(pendingUpdatePr(store.state.updatePrs)?.fleetBuild).toBeNull();
  });
});

describe("the banner's build on a page load", () => {
  let server: FakeControlPlane;
  let store: FleetStore;
  let live: LiveHandlers;
  const build = fleetBuild([{ name: "web1", state: "built", durationMs: 41_000 }], { id: "fb_loaded" });

  beforeEach(async () => {
    server = await new FakeControlPlane().start();
    server.on("GET /api/health", { json: { ok: true, version: "0.1.0", protocol: 1 } });
    server.on("GET /api/hosts", { json: { hosts: [hostView("web1")], summary: {}, repo: null, updatePrs: [updatePr()] } });
    server.on("GET /api/update-prs", { json: { updatePrs: [updatePr({ fleetBuild: build })] } });
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

  it("reads the pending PR's build from the update PRs when the fleet answer has none, and keeps it through the next fleet answer", async () => {
    store.start();
    await store.idle();
    expect(server.count("GET /api/update-prs")).toBe(1);
    expect(pendingUpdatePr(store.state.updatePrs)?.fleetBuild?.id).toBe("fb_loaded");
    // A changed fleet answer (the PR without its build, as /api/hosts sends it) does not blank the banner.
    server.on("GET /api/hosts", { json: { hosts: [hostView("web1"), hostView("web2")], summary: {}, repo: null, updatePrs: [updatePr()] } });
    live.onOpen({ reconnected: true });
    await store.idle();
    expect(store.state.hosts).toHaveLength(2);
    expect(pendingUpdatePr(store.state.updatePrs)?.fleetBuild?.id).toBe("fb_loaded");
    expect(server.count("GET /api/update-prs")).toBe(1);
  });

  it("asks nothing more without a pending update PR", async () => {
    server.on("GET /api/hosts", { json: { hosts: [hostView("web1")], summary: {}, repo: null, updatePrs: [] } });
    store.start();
    await store.idle();
    expect(server.count("GET /api/update-prs")).toBe(0);
  });
});
