import type { ReactiveController, ReactiveControllerHost } from "lit";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { PagedList } from "../../ui/components/paged-list.ts";
import { DashboardApi } from "../../ui/data/api.ts";
import type { AuditEntry } from "../../ui/data/schemas.ts";
import { FakeControlPlane } from "./fake-control-plane.ts";

/** The element the list lives in, reduced to what a controller sees: how many updates it was asked for. */
class Host implements ReactiveControllerHost {
  controllers: ReactiveController[] = [];
  updates = 0;
  readonly updateComplete = Promise.resolve(true);
  addController(controller: ReactiveController): void {
    this.controllers.push(controller);
  }
  removeController(controller: ReactiveController): void {
    this.controllers = this.controllers.filter((c) => c !== controller);
  }
  requestUpdate(): void {
    this.updates += 1;
  }
  connect(): void {
    for (const controller of this.controllers) controller.hostConnected?.();
  }
}

const entry = (id: number): AuditEntry => ({ id, at: "2025-12-01T00:00:00.000Z", actor: "a@example.com", role: "admin", action: "host.create", target: "web1", details: null, result: "ok" });
/** The audit log as the server has it, newest first. */
const log = Array.from({ length: 5 }, (_, i) => entry(5 - i));

let server: FakeControlPlane;
let api: DashboardApi;

beforeEach(async () => {
  server = await new FakeControlPlane().start();
  server.on("GET /api/audit", (request) => {
    const query = new URL(request.path, server.url).searchParams;
    const before = Number(query.get("before") ?? Infinity);
    return { json: { entries: log.filter((e) => e.id < before).slice(0, Number(query.get("limit"))) } };
  });
  api = new DashboardApi({ baseUrl: server.url });
});
afterEach(async () => {
  await server.stop();
});

const idle = async (list: PagedList<AuditEntry>) => {
  await expect.poll(() => list.loading).toBe(false);
};

describe("a list paged from the API, newest first", () => {
  it("loads the first page when its element connects, and the next ones before the last entry shown, until a short page", async () => {
    const host = new Host();
    const list = new PagedList<AuditEntry>(host, { pageSize: 2, fetchPage: (page) => api.audit(page), what: "the audit log" });
    expect(host.controllers).toEqual([list]);
    host.connect();
    expect(list.loading).toBe(true);
    await idle(list);
    expect(list.items.map((e) => e.id)).toEqual([5, 4]);
    expect(list.end).toBe(false);

    await list.load(false);
    expect(list.items.map((e) => e.id)).toEqual([5, 4, 3, 2]);
    await list.load(false);
    expect(list.items.map((e) => e.id)).toEqual([5, 4, 3, 2, 1]);
    expect(list.end).toBe(true);
    expect(server.requests.map((r) => r.path)).toEqual(["/api/audit?limit=2", "/api/audit?limit=2&before=4", "/api/audit?limit=2&before=2"]);
    // Each load asks for a render when it starts and when it ends.
    expect(host.updates).toBe(6);
  });

  it("refreshes from the start, replacing what it showed", async () => {
    const host = new Host();
    const list = new PagedList<AuditEntry>(host, { pageSize: 4, fetchPage: (page) => api.audit(page), what: "the audit log" });
    host.connect();
    await idle(list);
    await list.load(false);
    expect(list.items).toHaveLength(5);
    await list.load(true);
    expect(list.items.map((e) => e.id)).toEqual([5, 4, 3, 2]);
    expect(list.end).toBe(false);
  });

  it("says what could not be loaded and why, keeps what it showed, and clears the message on the next success", async () => {
    const host = new Host();
    const list = new PagedList<AuditEntry>(host, { pageSize: 2, fetchPage: (page) => api.audit(page), what: "the audit log" });
    host.connect();
    await idle(list);
    server.on("GET /api/audit", { status: 502, raw: "<html>Bad gateway</html>" });
    await list.load(false);
    expect(list.error).toMatch(/^Could not load the audit log: .*502/);
    expect(list.items.map((e) => e.id)).toEqual([5, 4]);
    expect(list.loading).toBe(false);
    server.on("GET /api/audit", { json: { entries: [entry(3)] } });
    await list.load(false);
    expect(list.error).toBeNull();
    expect(list.items.map((e) => e.id)).toEqual([5, 4, 3]);
  });

  it("asks nothing while there is nothing to ask with (no store yet)", async () => {
    const host = new Host();
    const list = new PagedList<AuditEntry>(host, { pageSize: 2, fetchPage: () => null, what: "the audit log" });
    host.connect();
    await list.load(false);
    expect([list.loading, list.items, host.updates, server.requests]).toEqual([false, [], 0, []]);
  });
});
