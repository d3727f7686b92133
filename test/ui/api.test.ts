import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ApiError, DashboardApi } from "../../ui/data/api.ts";
import { FakeControlPlane } from "./fake-control-plane.ts";
import { command, hostDetail, hostView } from "./fixtures.ts";

let server: FakeControlPlane;
let api: DashboardApi;

beforeEach(async () => {
  server = await new FakeControlPlane().start();
  api = new DashboardApi({ baseUrl: server.url });
});
afterEach(() => server.stop());

async function failure(promise: Promise<unknown>): Promise<ApiError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error("expected the request to fail");
}

describe("DashboardApi", () => {
  it("parses the fleet with the protocol's schemas, defaults included", async () => {
    const { compartments, ...host } = hostView("alpha");
    const { commandId: _drop, stale: _stale, ...git } = compartments.git;
    server.on("GET /api/hosts", { json: { hosts: [{ ...host, compartments: { ...compartments, git } }], summary: {}, repo: null, updatePrs: [] } });
    const fleet = await api.fleet();
    expect(fleet.hosts[0]?.name).toBe("alpha");
    expect(fleet.hosts[0]?.compartments.git.commandId).toBeNull();
    expect(fleet.hosts[0]?.compartments.git.stale).toBe(false);
  });

  it("takes the health answer the page came with for its first health() without asking, and asks for the next", async () => {
    const carried = { ok: true, version: "0.1.0", protocol: 1, auth: "development" };
    server.on("GET /api/health", { json: { ...carried, auth: "access" } });
    const fromPage = new DashboardApi({ baseUrl: server.url, pageHealth: JSON.stringify(carried) });
    expect((await fromPage.health()).auth).toBe("development");
    expect(server.count("GET /api/health")).toBe(0);
    expect((await fromPage.health()).auth).toBe("access");
    expect(server.count("GET /api/health")).toBe(1);
  });

  it("takes the identity the page came with for its first me() without asking, and asks for the next", async () => {
    server.on("GET /api/me", { json: { actor: "admin@example.com", role: "admin" } });
    const fromPage = new DashboardApi({ baseUrl: server.url, pageMe: JSON.stringify({ actor: "viewer@example.com", role: "viewer" }) });
    expect(fromPage.carriesMe).toBe(true);
    expect(await fromPage.me()).toEqual({ actor: "viewer@example.com", role: "viewer" });
    expect(fromPage.carriesMe).toBe(false);
    expect(server.count("GET /api/me")).toBe(0);
    expect(await fromPage.me()).toEqual({ actor: "admin@example.com", role: "admin" });
    expect(server.count("GET /api/me")).toBe(1);
    // A carried identity that is not one is zod's to refuse, as an answer from the server would be.
    const garbled = new DashboardApi({ baseUrl: server.url, pageMe: JSON.stringify({ actor: "x", role: "root" }) });
    expect((await failure(garbled.me())).code).toBe("bad_response");
  });

  it("turns the worker's error body into an ApiError with its status, code and message", async () => {
    server.on("POST /api/hosts/alpha/commands", {
      status: 409,
      json: { error: { code: "host_busy", message: "alpha already has pull (cmd_x) running; wait for it or stop it first" } },
    });
    const err = await failure(api.sendCommand("alpha", "switch"));
    expect(err.status).toBe(409);
    expect(err.code).toBe("host_busy");
    expect(err.message).toBe("alpha already has pull (cmd_x) running; wait for it or stop it first");
  });

  it("says which field of an unexpected answer was wrong instead of passing it on", async () => {
    server.on("GET /api/hosts/alpha", { json: { ...hostDetail("alpha"), platform: "windows" } });
    const err = await failure(api.host("alpha"));
    expect(err.code).toBe("bad_response");
    expect(err.message).toContain("platform");
  });

  it("reads how many older commands of a host were pruned, and none for a host whose history is whole", async () => {
    const pruned = { count: 6, newestCreatedAt: "2026-12-01T10:00:00.000Z" };
    server.on("GET /api/hosts/alpha", { json: { ...hostDetail("alpha"), prunedCommands: pruned } });
    server.on("GET /api/hosts/beta", { json: { ...hostDetail("beta"), prunedCommands: null } });
    server.on("GET /api/hosts/gamma", { json: { ...hostDetail("gamma"), prunedCommands: { count: 0, newestCreatedAt: "2026-12-01T10:00:00.000Z" } } });
    expect((await api.host("alpha")).prunedCommands).toEqual(pruned);
    expect((await api.host("beta")).prunedCommands).toBeNull();
    // Nothing pruned is said with null, never with a count of 0.
    expect((await failure(api.host("gamma"))).message).toContain("prunedCommands");
  });

  it("reports an error page that is not JSON by its status", async () => {
    server.on("GET /api/audit", { status: 502, raw: "<html>Bad gateway</html>" });
    const err = await failure(api.audit());
    expect(err).toMatchObject({ status: 502, code: "http_error" });
  });

  it("reports an unreachable control plane as a network error", async () => {
    const gone = new DashboardApi({ baseUrl: "http://127.0.0.1:1" });
    expect((await failure(gone.health())).code).toBe("network");
  });

  it("sends state changes as JSON with a content type", async () => {
    const queued = command("alpha", { kind: "pull-switch" });
    server.on("POST /api/hosts/alpha/commands", { status: 202, json: { command: queued } });
    expect((await api.sendCommand("alpha", "pull-switch")).id).toBe(queued.id);
    const request = server.requests.at(-1)!;
    expect(request.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(request.body)).toEqual({ kind: "pull-switch" });
  });

  it("asks for output after a sequence number and audit entries before an id", async () => {
    server.on("GET /api/commands/cmd_0123456789/output", { json: { command: command("alpha"), chunks: [], truncated: false, more: false } });
    server.on("GET /api/audit", { json: { entries: [{ id: 7, at: "2025-12-01T00:00:00Z", actor: "a@b", action: "host.create", target: "alpha", details: null, result: "ok", role: "admin" }] } });
    await api.commandOutput("cmd_0123456789", 41);
    expect((await api.audit({ limit: 20, before: 8 }))[0]?.id).toBe(7);
    expect(server.requests.map((r) => r.path)).toEqual(["/api/commands/cmd_0123456789/output?after=41", "/api/audit?limit=20&before=8"]);
  });

  it("reads the health answer with or without its auth mode", async () => {
    server.on("GET /api/health", { json: { ok: true, version: "0.1.0", protocol: 1 } });
    expect((await api.health()).auth).toBeUndefined();
    server.on("GET /api/health", { json: { ok: true, version: "0.1.0", protocol: 1, auth: "development" } });
    expect((await api.health()).auth).toBe("development");
  });
});
