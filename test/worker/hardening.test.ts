// The smaller holes an attacker or a chaos tester found: each pinned here.
import { env, runInDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ErrorBody, MIN_AGENT_PROTOCOL_VERSION, PROTOCOL_VERSION, PollResponse } from "../../common/protocol.ts";
import { MAX_DELIVERY_ATTEMPTS } from "../../worker/db/github.ts";
import { deliver, storedDelivery } from "./github-helpers.ts";
import { agentFetch, api, createHost, pollBody, sampleReport } from "./helpers.ts";

const errorOf = async (res: Response) => ErrorBody.parse(await res.json()).error;

describe("query strings", () => {
  it.each(["/api/audit?limit=1.5", "/api/audit?limit=abc", "/api/audit?before=2.5", "/api/hosts/q-host/commands?limit=1.5", "/api/commands/cmd_AAAAAAAAAAAAAAAA/output?after=0.5"])(
    "%s is a 400 with the error shape, not a 500",
    async (path) => {
      await createHost("q-host").catch(() => undefined);
      const res = await api(path);
      expect(res.status).toBe(400);
      expect((await errorOf(res)).code).toBe("invalid_request");
    },
  );
});

describe("dashboard WebSockets", () => {
  it("an abruptly dropped socket (1006) is closed without an error", async () => {
    const res = await exports.default.fetch(new Request("http://localhost/api/events", { headers: { upgrade: "websocket" } }));
    expect(res.status).toBe(101);
    res.webSocket!.accept();
    await runInDurableObject(env.COORDINATOR.getByName("fleet"), async (instance, state) => {
      const sockets = state.getWebSockets();
      expect(sockets).toHaveLength(1);
      for (const ws of sockets) await expect(instance.webSocketClose(ws, 1006)).resolves.toBeUndefined();
    });
  });
});

describe("stored data is read leniently", () => {
  it("one corrupt or older stored report makes that host unknown, not the fleet a 500", async () => {
    const good = await createHost("good-report");
    const bad = await createHost("bad-report");
    for (const host of [good, bad]) {
      expect((await agentFetch(host.token, "/poll?wait=0", pollBody({ report: sampleReport() }))).status).toBe(200);
    }
    await env.DB.prepare("update reports set report = ? where host_id = ?").bind('{"protocol":0,"shape":"from an older version"}', bad.id).run();
    const res = await api("/api/hosts");
    expect(res.status).toBe(200);
    const { hosts } = await res.json<{ hosts: { name: string; report: unknown; compartments: { system: { state: string } } }[] }>();
    expect(hosts.find((h) => h.name === "bad-report")?.report).toBeNull();
    expect(hosts.find((h) => h.name === "good-report")?.report).not.toBeNull();
    await env.DB.prepare("update reports set report = 'not json at all' where host_id = ?").bind(bad.id).run();
    expect((await api("/api/hosts/bad-report")).status).toBe(200);
  });
});

describe("webhook replays", () => {
  it(`a failing delivery replayed 50 times is processed ${MAX_DELIVERY_ATTEMPTS} times, then refused`, async () => {
    const id = "00000000-0000-4000-8000-replayed00050";
    const statuses: number[] = [];
    for (let i = 0; i < 50; i++) statuses.push((await deliver("push", { not: "a push" }, { id })).response.status);
    expect(statuses.slice(0, MAX_DELIVERY_ATTEMPTS)).toEqual(Array(MAX_DELIVERY_ATTEMPTS).fill(400));
    expect(new Set(statuses.slice(MAX_DELIVERY_ATTEMPTS))).toEqual(new Set([409]));
    expect((await storedDelivery(id))?.attempts).toBe(MAX_DELIVERY_ATTEMPTS);
    const last = await deliver("push", { not: "a push" }, { id });
    expect((await errorOf(last.response)).code).toBe("delivery_exhausted");
  });
});

describe("agent protocol versions", () => {
  it("serves every protocol from the oldest supported to the current one, answering in the agent's own", async () => {
    const { token } = await createHost("versions");
    for (let version = MIN_AGENT_PROTOCOL_VERSION; version <= PROTOCOL_VERSION; version++) {
      const res = await agentFetch(token, "/poll?wait=0", pollBody({ protocol: version }));
      expect(res.status).toBe(200);
      expect(PollResponse.parse(await res.json()).protocol).toBe(version);
    }
  });

  it.each([
    [MIN_AGENT_PROTOCOL_VERSION - 1, "older than the oldest"],
    [PROTOCOL_VERSION + 1, "newer than this control plane"],
  ])("refuses protocol %i clearly (%s)", async (version, words) => {
    const { token } = await createHost(`version-${version + 10}`);
    const res = await agentFetch(token, "/poll?wait=0", pollBody({ protocol: version }));
    expect(res.status).toBe(400);
    expect((await errorOf(res)).message).toContain(words);
  });
});

describe("local development identity", () => {
  it("refuses the admin API when the Host header names another site, whatever the URL says", async () => {
    const res = await exports.default.fetch(new Request("http://localhost/api/hosts", { headers: { host: "rebinding.example" } }));
    expect(res.status).toBe(403);
    expect((await errorOf(res)).code).toBe("access_not_configured");
    expect((await exports.default.fetch(new Request("http://localhost/api/hosts", { headers: { host: "localhost:8787" } }))).status).toBe(200);
  });

  it("refuses two Host values, whichever comes first, with a 403 rather than a 500", async () => {
    for (const hosts of [["rebinding.example", "localhost:8787"], ["localhost:8787", "rebinding.example"], ["localhost", "127.0.0.1"]]) {
      const headers = new Headers();
      for (const host of hosts) headers.append("host", host);
      const res = await exports.default.fetch(new Request("http://localhost/api/hosts", { headers }));
      expect(res.status, hosts.join(", ")).toBe(403);
      expect((await errorOf(res)).code).toBe("access_not_configured");
    }
  });
});
