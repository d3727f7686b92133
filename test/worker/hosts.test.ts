import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ErrorBody, HostView, type RebootStatus } from "../../common/protocol.ts";
import { agentFetch, api, createHost, poll, pollBody, sampleReport } from "./helpers.ts";

const countRows = async (table: string) =>
  (await env.DB.prepare(`select count(*) as n from ${table}`).first<{ n: number }>())?.n ?? 0;

async function expectError(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  const body = ErrorBody.parse(await res.json());
  expect(body.error.code).toBe(code);
  expect(body.error.message.length).toBeGreaterThan(0);
  return body.error.message;
}

// Storage is shared by the tests of a file: each test uses its own host names and counts relative to its start.
describe("host enrollment", () => {
  it("creates a host and shows its token once, storing only the token's hash", async () => {
    const res = await api("/api/hosts", { method: "POST", json: { name: "hsb0", platform: "nixos" } });
    expect(res.status).toBe(201);
    const body = await res.json<{ token: string; host: { name: string; flakeAttr: string; compartments: { agent: { state: string } } } }>();
    expect(body.token).toMatch(/^nfa_[A-Za-z0-9_-]{43}$/);
    expect(body.host.name).toBe("hsb0");
    expect(body.host.flakeAttr).toBe("hsb0");
    expect(body.host.compartments.agent.state).toBe("gray");
    const stored = await env.DB.prepare("select token_hash from agent_tokens join hosts on hosts.id = host_id where name = 'hsb0'").all<{ token_hash: string }>();
    expect(stored.results).toHaveLength(1);
    expect(stored.results[0]!.token_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(stored.results)).not.toContain(body.token);
    // Reading the host back never shows the token again.
    const again = await api("/api/hosts/hsb0");
    expect(await again.text()).not.toContain(body.token);
  });

  it("refuses a second host with the same name and changes nothing", async () => {
    await createHost("csb1");
    const [hosts, tokens] = [await countRows("hosts"), await countRows("agent_tokens")];
    await expectError(await api("/api/hosts", { method: "POST", json: { name: "csb1", platform: "darwin" } }), 409, "host_exists");
    expect(await countRows("hosts")).toBe(hosts);
    expect(await countRows("agent_tokens")).toBe(tokens);
  });

  it.each([
    ["uppercase", { name: "HSB0", platform: "nixos" }],
    ["spaces", { name: "my host", platform: "nixos" }],
    ["leading hyphen", { name: "-x", platform: "nixos" }],
    ["empty", { name: "", platform: "nixos" }],
    ["64 characters", { name: "a".repeat(64), platform: "nixos" }],
    ["unknown platform", { name: "ok", platform: "windows" }],
    ["unknown field", { name: "ok", platform: "nixos", admin: true }],
    ["flake attribute with a #", { name: "ok", platform: "nixos", flakeAttr: "x#y" }],
    ["not an object", ["ok"]],
  ])("refuses a bad host (%s) with 400 and writes nothing", async (_what, body) => {
    const [hosts, audit] = [await countRows("hosts"), await countRows("audit_log")];
    await expectError(await api("/api/hosts", { method: "POST", json: body }), 400, "invalid_request");
    expect(await countRows("hosts")).toBe(hosts);
    expect(await countRows("audit_log")).toBe(audit);
  });

  it("refuses malformed JSON with 400", async () => {
    const hosts = await countRows("hosts");
    const res = await api("/api/hosts", { method: "POST", body: "{name:", headers: { "content-type": "application/json" } });
    await expectError(res, 400, "malformed_json");
    expect(await countRows("hosts")).toBe(hosts);
  });

  it("reads a JSON body whatever Content-Type it is sent with (curl and agents often send none)", async () => {
    const body = JSON.stringify({ name: "plain-text-host", platform: "nixos" });
    const res = await api("/api/hosts", { method: "POST", body, headers: { "content-type": "text/plain" } });
    expect(res.status).toBe(201);
    await expectError(await api("/api/hosts", { method: "POST", body: "{name:" }), 400, "malformed_json");
    expect(await expectError(await api("/api/hosts", { method: "POST", body: "{}" }), 400, "invalid_request")).toMatch(/^invalid request body: name/);
  });

  it("refuses an oversized body sent without Content-Length with 413", async () => {
    const hosts = await countRows("hosts");
    const chunk = new TextEncoder().encode("x".repeat(64 * 1024));
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 5; i++) controller.enqueue(chunk);
        controller.close();
      },
    });
    const res = await api("/api/hosts", { method: "POST", body: stream, headers: { "content-type": "application/json" } });
    await expectError(res, 413, "payload_too_large");
    expect(await countRows("hosts")).toBe(hosts);
  });

  it("refuses an oversized body with 413", async () => {
    const hosts = await countRows("hosts");
    const res = await api("/api/hosts", { method: "POST", json: { name: "x", platform: "nixos", pad: "x".repeat(300 * 1024) } });
    await expectError(res, 413, "payload_too_large");
    expect(await countRows("hosts")).toBe(hosts);
  });

  it("refuses a state-changing request from another origin (CSRF)", async () => {
    const hosts = await countRows("hosts");
    const res = await api("/api/hosts", { method: "POST", json: { name: "evil", platform: "nixos" }, headers: { origin: "https://evil.example" } });
    await expectError(res, 403, "cross_origin");
    expect(await countRows("hosts")).toBe(hosts);
  });

  it("rotating the token revokes the old one at once", async () => {
    const { token: oldToken } = await createHost("gpc0");
    expect((await poll(oldToken, {}, 0)).status).toBe(200);
    const res = await api("/api/hosts/gpc0/token", { method: "POST" });
    expect(res.status).toBe(200);
    const { token: newToken } = await res.json<{ token: string }>();
    expect(newToken).not.toBe(oldToken);
    await expectError(await poll(oldToken, {}, 0), 401, "unauthorized");
    expect((await poll(newToken, {}, 0)).status).toBe(200);
  });

  it("a command running while the token is rotated still reports to the end with the new token", async () => {
    const { token: oldToken } = await createHost("midflight");
    const queued = await api("/api/hosts/midflight/commands", { method: "POST", json: { kind: "switch" } });
    const { command } = await queued.json<{ command: { id: string } }>();
    await poll(oldToken, {}, 0);
    const events = (token: string, body: unknown) => agentFetch(token, `/commands/${command.id}/events`, body);
    expect((await events(oldToken, { type: "started", at: new Date().toISOString() })).status).toBe(200);
    const { token: newToken } = await (await api("/api/hosts/midflight/token", { method: "POST" })).json<{ token: string }>();
    expect((await events(oldToken, { type: "output", chunks: [{ seq: 0, stream: "stdout", data: "x" }] })).status).toBe(401);
    const finished = await events(newToken, { type: "finished", at: new Date().toISOString(), outcome: "succeeded", exitCode: 0 });
    expect(finished.status).toBe(200);
    expect((await (await api(`/api/commands/${command.id}`)).json<{ command: { state: string } }>()).command.state).toBe("succeeded");
  });

  it("removing a host deletes its data and its token stops working", async () => {
    const { token, id } = await createHost("p620");
    const res = await api("/api/hosts/p620", { method: "DELETE" });
    expect(res.status).toBe(200);
    await expectError(await api("/api/hosts/p620"), 404, "host_not_found");
    await expectError(await poll(token, {}, 0), 401, "unauthorized");
    expect(await env.DB.prepare("select count(*) as n from agent_tokens where host_id = ?").bind(id).first("n")).toBe(0);
  });

  it("writes every admin action to the audit log with the acting identity", async () => {
    await createHost("razer");
    await api("/api/hosts/razer/token", { method: "POST" });
    const res = await api("/api/audit");
    const { entries: all } = await res.json<{ entries: { action: string; actor: string; target: string; result: string }[] }>();
    const entries = all.filter((e) => e.target === "razer");
    expect(entries.map((e) => e.action)).toEqual(["host.rotate-token", "host.create"]);
    expect(entries.every((e) => e.actor === "developer@localhost" && e.target === "razer" && e.result === "ok")).toBe(true);
  });

  it("lists hosts with their five compartments and a fleet summary", async () => {
    await createHost("a1");
    await createHost("b2", "darwin");
    const res = await api("/api/hosts");
    const body = await res.json<{ hosts: { name: string; compartments: Record<string, { state: string }> }[]; summary: Record<string, Record<string, number>> }>();
    const names = body.hosts.map((h) => h.name);
    expect(names).toEqual([...names].sort());
    expect(names).toEqual(expect.arrayContaining(["a1", "b2"]));
    expect(Object.keys(body.hosts[0]!.compartments)).toEqual(["agent", "git", "lock", "system", "tests"]);
    const states = body.hosts.map((h) => h.compartments.agent!.state);
    expect(body.summary.agent!.gray).toBe(states.filter((s) => s === "gray").length);
    expect(Object.values(body.summary.agent!).reduce((a, b) => a + b, 0)).toBe(body.hosts.length);
  });
});

describe("reboot needed in the host API", () => {
  const kernelChanged: RebootStatus = { needed: true, changed: ["kernel"], kernel: { booted: "6.6.1", next: "6.6.8" } };
  const report = (name: string, reboot: { value: RebootStatus } | { value: null; reason: string } | undefined) => {
    const base = sampleReport({ hostname: name });
    return { ...base, system: { ...base.system, ...(reboot === undefined ? {} : { reboot }) } };
  };
  const send = async (token: string, name: string, reboot: Parameters<typeof report>[1]) => {
    const res = await agentFetch(token, "/poll?wait=0", pollBody({ agentSession: `s-${name}`, report: report(name, reboot) }));
    expect(res.status).toBe(200);
  };
  const listed = async () => {
    const body = z.object({ hosts: z.array(HostView) }).parse(await (await api("/api/hosts")).json());
    return new Map(body.hosts.map((host) => [host.name, host.rebootNeeded]));
  };

  it("says rebootNeeded from the latest report: true, false, and null when unknown, not applicable, not reported or before any report", async () => {
    const hosts = ["rb-due", "rb-none", "rb-darwin", "rb-older", "rb-silent"] as const;
    const tokens = new Map<string, string>();
    for (const name of hosts) tokens.set(name, (await createHost(name, name === "rb-darwin" ? "darwin" : "nixos")).token);
    await send(tokens.get("rb-due")!, "rb-due", { value: kernelChanged });
    await send(tokens.get("rb-none")!, "rb-none", { value: { needed: false, changed: [], kernel: null } });
    await send(tokens.get("rb-darwin")!, "rb-darwin", { value: null, reason: "not applicable: nix-darwin activates a new system without a reboot" });
    await send(tokens.get("rb-older")!, "rb-older", undefined);

    const byName = await listed();
    expect(hosts.map((name) => byName.get(name))).toEqual([true, false, null, null, null]);
    const own = HostView.parse(await (await api("/api/hosts/rb-due")).json());
    expect(own.rebootNeeded).toBe(true);
    expect(own.report?.system.reboot).toEqual({ value: kernelChanged });

    // After the reboot the agent reports the booted system equal to the profile's.
    await send(tokens.get("rb-due")!, "rb-due", { value: { needed: false, changed: [], kernel: null } });
    expect((await listed()).get("rb-due")).toBe(false);
  });

  it("refuses a report whose reboot status does not parse and keeps the last one", async () => {
    const { token } = await createHost("rb-bad");
    await send(token, "rb-bad", { value: kernelChanged });
    const damaged = { value: { needed: "yes", changed: ["bootloader"], kernel: null } };
    const sent = report("rb-bad", undefined);
    const res = await agentFetch(token, "/poll?wait=0", { ...pollBody({ agentSession: "s-rb-bad" }), report: { ...sent, system: { ...sent.system, reboot: damaged } } });
    await expectError(res, 400, "invalid_request");
    expect((await listed()).get("rb-bad")).toBe(true);
  });
});
