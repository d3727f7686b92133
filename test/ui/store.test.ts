import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { DashboardApi, type ApiOptions } from "../../ui/data/api.ts";
import type { FleetState } from "../../ui/data/fleet-state.ts";
import { FleetStore, loadedOnStart, type LiveConnection, type LiveHandlers } from "../../ui/data/store.ts";
import { FakeControlPlane } from "./fake-control-plane.ts";
import { chunk, command, compartment, hostDetail, hostView } from "./fixtures.ts";

let server: FakeControlPlane;
let live: LiveHandlers;
let store: FleetStore;
let observed: ObservedApi;
let liveStopped = false;

/**
 * The store's API client, watched: which calls the store made (at once, before any request reaches the
 * server) and every answer still on its way. The health and "me" answers are applied outside the store's
 * refetches, so `store.idle()` alone does not wait for them.
 */
interface ObservedApi {
  api: DashboardApi;
  calls: string[];
  /** Resolves once every answer the store asked for has come and the store has applied it. */
  settled(store: FleetStore): Promise<void>;
}

function observedApi(baseUrl: string, carried: Pick<ApiOptions, "pageMe"> = {}): ObservedApi {
  const calls: string[] = [];
  const open = new Set<Promise<unknown>>();
  const api = new Proxy(new DashboardApi({ baseUrl, ...carried }), {
    get(target, key, receiver) {
      const value: unknown = Reflect.get(target, key, receiver);
      if (typeof value !== "function" || typeof key !== "string") return value;
      return (...args: unknown[]) => {
        calls.push(key);
        const answer: unknown = value.apply(target, args);
        if (answer instanceof Promise) open.add(answer);
        return answer;
      };
    },
  });
  return {
    api,
    calls,
    async settled(store) {
      // An applied answer may start another request (the fleet builds after the fleet): until none is left.
      for (;;) {
        await store.idle();
        const waiting = [...open];
        open.clear();
        if (waiting.length === 0) return;
        // The store chained its handlers onto these promises when it called: they run before this wait ends.
        await Promise.allSettled(waiting);
      }
    },
  };
}

const fleet = (...names: string[]) => ({ hosts: names.map((name) => hostView(name)), summary: {}, repo: null, updatePrs: [] });

beforeEach(async () => {
  server = await new FakeControlPlane().start();
  server.on("GET /api/health", { json: { ok: true, version: "0.1.0", protocol: 1, auth: "development" } });
  server.on("GET /api/hosts", { json: fleet("alpha", "beta") });
  liveStopped = false;
  observed = observedApi(server.url);
  store = new FleetStore({
    api: observed.api,
    connect: (handlers) => {
      live = handlers;
      return { start: () => undefined, stop: () => (liveStopped = true) };
    },
  });
});
afterEach(async () => {
  store.stop();
  await store.idle();
  await server.stop();
});

/** Every answer the store asked for so far has landed and been applied. */
const settle = () => observed.settled(store);

describe("FleetStore", () => {
  it("loads the fleet and the health answer, and a slow fleet answer does not undo what came meanwhile", async () => {
    let release!: () => void;
    server.on("GET /api/hosts", { json: fleet("alpha"), delay: new Promise<void>((resolve) => (release = resolve)) });
    const seen: FleetState[] = [];
    store.subscribe((state) => seen.push(state));
    store.start();
    live.onStatus("live");
    // The health answer lands while the fleet answer is held back (waited for: a loaded machine is slow).
    await vi.waitFor(() => expect(store.state.health?.auth).toBe("development"), { timeout: 10_000 });
    expect(store.state.phase).toBe("loading");
    release();
    await settle();
    expect(store.state.phase).toBe("ready");
    expect(store.state.hosts.map((host) => host.name)).toEqual(["alpha"]);
    expect(store.state.health?.auth).toBe("development");
    expect(store.state.connection).toBe("live");
    expect(seen[0]?.phase).toBe("loading");
  });

  it("loads who it acts as and the role, and leaves it unknown when the server does not say", async () => {
    server.on("GET /api/me", { json: { actor: "viewer@example.com", role: "viewer" } });
    store.start();
    await settle();
    expect(store.state.me).toEqual({ actor: "viewer@example.com", role: "viewer" });

    const otherApi = observedApi(server.url);
    const other = new FleetStore({ api: otherApi.api });
    server.on("GET /api/me", { status: 404, json: { error: { code: "not_found", message: "no route" } } });
    other.start();
    await otherApi.settled(other);
    expect(otherApi.calls).toContain("me");
    expect(other.state.me).toBeNull();
    expect(other.state.phase).toBe("ready");
  });

  it("says why the fleet could not be loaded", async () => {
    server.on("GET /api/hosts", { status: 403, json: { error: { code: "access_not_configured", message: "Cloudflare Access is not configured" } } });
    store.start();
    await settle();
    expect(store.state.phase).toBe("error");
    expect(store.state.error).toBe("Cloudflare Access is not configured");
  });

  it("refetches a host when an event says it changed, and the fleet on every (re)connect", async () => {
    server.on("GET /api/hosts/alpha", { json: hostDetail("alpha", [], { online: true, states: { git: compartment("yellow") } } as never) });
    store.start();
    await settle();
    live.onEvent({ type: "host", host: "alpha", online: true });
    await settle();
    expect(server.count("GET /api/hosts/alpha")).toBe(1);
    expect(store.state.hosts[0]?.online).toBe(true);
    const before = server.count("GET /api/hosts");
    live.onOpen({ reconnected: true });
    await settle();
    expect(server.count("GET /api/hosts")).toBe(before + 1);
  });

  it("runs one refetch per host at a time, and one more after a burst of events", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    server.on("GET /api/hosts/alpha", () => ({ json: hostDetail("alpha"), delay: gate }));
    store.start();
    await settle();
    for (let i = 0; i < 5; i++) live.onEvent({ type: "host", host: "alpha" });
    // The store asks at once, not after a timer: what it asked for is known now.
    expect(observed.calls.filter((call) => call === "host")).toHaveLength(1);
    await vi.waitFor(() => expect(server.count("GET /api/hosts/alpha")).toBe(1), { timeout: 10_000 });
    release();
    await settle();
    expect(server.count("GET /api/hosts/alpha")).toBe(2);
  });

  it("keeps a watched host's details and drops them when released", async () => {
    const done = command("alpha", { state: "succeeded" });
    server.on("GET /api/hosts/alpha", { json: hostDetail("alpha", [done]) });
    store.start();
    const release = store.watchHost("alpha");
    await settle();
    expect(store.state.details.alpha?.commands.map((c) => c.id)).toEqual([done.id]);
    const queued = command("alpha", { kind: "switch" });
    live.onEvent({ type: "command", command: queued });
    expect(store.state.details.alpha?.commands[0]?.id).toBe(queued.id);
    release();
    expect(store.state.details.alpha).toBeUndefined();
  });

  it("reports a host that no longer exists instead of loading forever", async () => {
    server.on("GET /api/hosts/ghost", { status: 404, json: { error: { code: "host_not_found", message: "no host named ghost" } } });
    store.start();
    store.watchHost("ghost");
    await settle();
    expect(store.state.detailErrors.ghost).toBe("no host named ghost");
  });

  it("backfills a watched command's stored output page by page and merges the live chunks", async () => {
    const running = command("alpha", { state: "running" });
    const path = `GET /api/commands/${running.id}/output`;
    server.on(path, (request) => {
      const after = Number(new URL(request.path, "http://x").searchParams.get("after"));
      return after < 1
        ? { json: { command: running, chunks: [chunk(0, "a\n"), chunk(1, "b\n")], truncated: false, more: true } }
        : { json: { command: running, chunks: [chunk(2, "c\n")], truncated: false, more: false } };
    });
    store.start();
    const release = store.watchOutput(running.id);
    live.onEvent({ type: "output", host: "alpha", commandId: running.id, chunks: [chunk(3, "d\n")] });
    await settle();
    expect(store.state.outputs[running.id]?.chunks.map((c) => c.data)).toEqual(["a\n", "b\n", "c\n", "d\n"]);
    expect(store.state.outputs[running.id]?.loaded).toBe(true);
    const asked = server.requests.filter((r) => r.path.startsWith(`/api/commands/${running.id}/output`)).map((r) => r.path.split("?")[1]);
    expect(asked).toEqual(["after=-1", "after=1"]);
    release();
    expect(store.state.outputs[running.id]).toBeUndefined();
  });

  it("shows a queued command at once and passes a refusal on with the worker's message", async () => {
    const queued = command("alpha", { kind: "pull" });
    server.on("POST /api/hosts/alpha/commands", { status: 202, json: { command: queued } });
    server.on("POST /api/hosts/beta/commands", { status: 409, json: { error: { code: "host_busy", message: "beta already has switch running" } } });
    server.on("GET /api/hosts/alpha", { json: hostDetail("alpha", [queued], { activeCommand: queued }) });
    store.start();
    await settle();
    await store.sendCommand("alpha", "pull");
    expect(store.state.hosts.find((h) => h.name === "alpha")?.activeCommand?.id).toBe(queued.id);
    await expect(store.sendCommand("beta", "switch")).rejects.toThrow("beta already has switch running");
  });

  it("adds a created host to the table and removes a removed one", async () => {
    server.on("POST /api/hosts", { status: 201, json: { host: hostDetail("gamma"), token: "nfa_secret_token_value" } });
    server.on("DELETE /api/hosts/alpha", { json: { ok: true, removed: "alpha" } });
    store.start();
    await settle();
    const created = await store.createHost({ name: "gamma", platform: "nixos" });
    expect(created.token).toBe("nfa_secret_token_value");
    await store.removeHost("alpha");
    expect(store.state.hosts.map((h) => h.name)).toEqual(["beta", "gamma"]);
    expect(JSON.parse(server.requests.find((r) => r.method === "POST")!.body)).toEqual({ name: "gamma", platform: "nixos" });
  });

  /** A store whose start-up step after the first fleet is held for the test to run, counting the live connections it opens. */
  function storeWithStartUpStep() {
    const afterFirstFleet: (() => void)[] = [];
    let connected = 0;
    const deferring = new FleetStore({
      api: observed.api,
      connect: () => ({ start: () => void connected++, stop: () => undefined }),
      afterFirstFleet: (run) => afterFirstFleet.push(run),
    });
    return { deferring, afterFirstFleet, connections: () => connected };
  }

  it("with a start-up step after the first fleet, asks for nothing but the fleet and health until the fleet answer is applied", async () => {
    let release!: () => void;
    server.on("GET /api/hosts", { json: fleet("alpha"), delay: new Promise<void>((resolve) => (release = resolve)) });
    const { deferring, afterFirstFleet, connections } = storeWithStartUpStep();
    deferring.start();
    expect(observed.calls).toEqual(["health", "fleet"]);
    release();
    await vi.waitFor(() => expect(afterFirstFleet).toHaveLength(1), { timeout: 10_000 });
    // Handed the rest only once the table's data is there.
    expect(deferring.state.hosts.map((host) => host.name)).toEqual(["alpha"]);
    expect(observed.calls).toEqual(["health", "fleet"]);
    expect(connections()).toBe(0);
    afterFirstFleet[0]!();
    expect(observed.calls.slice(2).sort()).toEqual(["me", "rollouts"]);
    expect(connections()).toBe(1);
    await observed.settled(deferring);
    deferring.stop();
  });

  it("with the identity carried by the page, applies it with the first fleet and never asks the server for it", async () => {
    server.on("GET /api/me", { json: { actor: "someone-else@example.com", role: "admin" } });
    const carried = observedApi(server.url, { pageMe: JSON.stringify({ actor: "viewer@example.com", role: "viewer" }) });
    const afterFirstFleet: (() => void)[] = [];
    const deferring = new FleetStore({
      api: carried.api,
      connect: () => ({ start: () => undefined, stop: () => undefined }),
      afterFirstFleet: (run) => afterFirstFleet.push(run),
    });
    deferring.start();
    expect(carried.calls).toEqual(["health", "me", "fleet"]);
    await vi.waitFor(() => expect(afterFirstFleet).toHaveLength(1), { timeout: 10_000 });
    // By the time the table's data is applied, the role is too: the first frame disables what it may not do.
    expect(deferring.state.me).toEqual({ actor: "viewer@example.com", role: "viewer" });
    afterFirstFleet[0]!();
    expect(carried.calls.slice(3)).toEqual(["rollouts"]);
    await carried.settled(deferring);
    expect(server.count("GET /api/me")).toBe(0);
    deferring.stop();
  });

  it("a start-up step that runs after the store was stopped opens no connection", async () => {
    const { deferring, afterFirstFleet, connections } = storeWithStartUpStep();
    deferring.start();
    await vi.waitFor(() => expect(afterFirstFleet).toHaveLength(1), { timeout: 10_000 });
    deferring.stop();
    afterFirstFleet[0]!();
    expect(connections()).toBe(0);
    expect(observed.calls).not.toContain("me");
    await observed.settled(deferring);
  });

  it("closes the live connection when stopped", async () => {
    store.start();
    store.stop();
    expect(liveStopped).toBe(true);
  });
});

describe("a live connection loaded when it starts", () => {
  function loader() {
    const calls: string[] = [];
    const loads: { resolve: (connection: LiveConnection) => void; reject: (error: Error) => void }[] = [];
    const connection: LiveConnection = { start: () => calls.push("start"), stop: () => calls.push("stop") };
    const load = () => new Promise<LiveConnection>((resolve, reject) => loads.push({ resolve, reject }));
    return { calls, loads, connection, live: loadedOnStart(load) };
  }

  it("loads its code once, on the first start, and starts once it is loaded", async () => {
    const { calls, loads, connection, live } = loader();
    expect(loads).toHaveLength(0);
    live.start();
    live.start();
    expect(loads).toHaveLength(1);
    loads[0]!.resolve(connection);
    await vi.waitFor(() => expect(calls).toEqual(["start"]));
    live.stop();
    live.start();
    expect(calls).toEqual(["start", "stop", "start"]);
    expect(loads).toHaveLength(1);
  });

  it("does not start when stopped before its code arrived, and loads again after a failed load", async () => {
    const { calls, loads, connection, live } = loader();
    live.start();
    live.stop();
    loads[0]!.resolve(connection);
    await Promise.resolve();
    await Promise.resolve();
    expect(calls).toEqual([]);
    live.start();
    expect(calls).toEqual(["start"]);

    const failing = loader();
    failing.live.start();
    failing.loads[0]!.reject(new Error("chunk gone"));
    await vi.waitFor(() => {
      failing.live.start();
      expect(failing.loads).toHaveLength(2);
    });
    failing.loads[1]!.resolve(failing.connection);
    await vi.waitFor(() => expect(failing.calls).toEqual(["start"]));
  });
});
