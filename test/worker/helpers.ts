import { exports } from "cloudflare:workers";
import { z } from "zod";
import { PROTOCOL_VERSION, type PollRequest, type Report } from "../../common/protocol.ts";
import { NIXFLEET_VERSION } from "../../common/version.ts";

const CreatedHost = z.object({ token: z.string(), host: z.object({ id: z.string() }) });

export const ORIGIN = "http://localhost";

/** A request to the real worker, as the dashboard on localhost sends it. */
export function api(path: string, init: RequestInit & { json?: unknown } = {}): Promise<Response> {
  const { json, ...rest } = init;
  const headers = new Headers(rest.headers);
  if (json !== undefined) headers.set("content-type", "application/json");
  if (rest.method && rest.method !== "GET" && !headers.has("origin")) headers.set("origin", ORIGIN);
  return exports.default.fetch(
    new Request(`${ORIGIN}${path}`, { ...rest, headers, body: json === undefined ? rest.body : JSON.stringify(json) }),
  );
}

export async function createHost(name: string, platform = "nixos"): Promise<{ token: string; id: string }> {
  const res = await api("/api/hosts", { method: "POST", json: { name, platform } });
  if (res.status !== 201) throw new Error(`create host ${name}: ${res.status} ${await res.text()}`);
  const body = CreatedHost.parse(await res.json());
  return { token: body.token, id: body.host.id };
}

export function agentFetch(token: string, path: string, body: unknown): Promise<Response> {
  return exports.default.fetch(
    new Request(`${ORIGIN}/api/agent${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    }),
  );
}

export function pollBody(overrides: Partial<PollRequest> = {}): PollRequest {
  return { protocol: PROTOCOL_VERSION, agentSession: "session-one", activeCommands: [], acks: [], ...overrides };
}

export function poll(token: string, overrides: Partial<PollRequest> = {}, wait = 2): Promise<Response> {
  return agentFetch(token, `/poll?wait=${wait}`, pollBody(overrides));
}

export function queueCommand(host: string, kind: string): Promise<Response> {
  return api(`/api/hosts/${host}/commands`, { method: "POST", json: { kind } });
}

export function sampleReport(overrides: Partial<Report> = {}): Report {
  return {
    protocol: PROTOCOL_VERSION,
    agentVersion: NIXFLEET_VERSION,
    platform: "nixos",
    hostname: "hsb0",
    os: { value: "NixOS 25.05 (Warbler)" },
    nixpkgsVersion: { value: "25.05.20250101.abcdef0" },
    nixVersion: { value: "2.28.3" },
    repo: { commit: { value: "a".repeat(40) }, branch: { value: "main" }, dirty: false },
    lock: { hash: { value: "b".repeat(64) }, lastModified: { nixpkgs: 1_702_234_567 } },
    system: { current: { value: "/nix/store/abc-nixos-system-hsb0" }, builtFromCommit: "a".repeat(40) },
    tests: { configured: true, autoRunAfterSwitch: false, last: null },
    uptimeSeconds: 1000,
    agentUptimeSeconds: 10,
    rollout: { autoUpdate: true, priority: 100, canary: false },
    ...overrides,
  };
}
