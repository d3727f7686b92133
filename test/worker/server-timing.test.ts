// The Server-Timing marks bench/dispatch.ts reads (worker/server-timing.ts): sent only when a local
// deployment asks for them, never by a Worker behind Cloudflare Access, never by default.
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { PollResponse } from "../../common/protocol.ts";
import type { WorkerEnv } from "../../worker/env.ts";
import { app } from "../../worker/index.ts";
import { api, createHost, ORIGIN, pollBody } from "./helpers.ts";

async function send(path: string, init: RequestInit, workerEnv: WorkerEnv): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await app.fetch(new Request(`${ORIGIN}${path}`, init), workerEnv, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

const marks = (res: Response) => [...(res.headers.get("server-timing") ?? "").matchAll(/(\w+);desc="(\d+)"/g)].map((match) => match[1]);
const deployed: WorkerEnv = env;
const timed: WorkerEnv = { ...env, SERVER_TIMING: "true" };
const adminJson = { origin: ORIGIN, "content-type": "application/json" };

describe("Server-Timing marks", () => {
  it("are absent by default: wrangler.toml sets no SERVER_TIMING", async () => {
    expect(deployed.SERVER_TIMING).toBeUndefined();
    await createHost("timing-default");
    const res = await api("/api/hosts/timing-default/commands", { method: "POST", json: { kind: "refresh" } });
    expect(res.status).toBe(202);
    expect(res.headers.has("server-timing")).toBe(false);
    expect((await api("/api/health")).headers.has("server-timing")).toBe(false);
  });

  it("are absent behind Cloudflare Access even with SERVER_TIMING set", async () => {
    const withAccess: WorkerEnv = { ...timed, ACCESS_AUD: "aud-tag", ACCESS_TEAM_DOMAIN: "https://team.cloudflareaccess.test" };
    const health = await send("/api/health", {}, withAccess);
    expect(health.status).toBe(200);
    expect(health.headers.has("server-timing")).toBe(false);
    // A refusal is an answer too: it tells no clock either.
    const refused = await send("/api/hosts", {}, withAccess);
    expect(refused.status).toBe(401);
    expect(refused.headers.has("server-timing")).toBe(false);
  });

  it("mark, on a local deployment that asks, an enqueue's arrival, route and coordinator answer (its audit entry stored with the command), a poll's answer, and a command event's route and answer", async () => {
    const { token } = await createHost("timing-local");
    const held = send(
      "/api/agent/poll?wait=5",
      { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify(pollBody({ agentSession: "timing-session" })) },
      timed,
    );
    // The first poll of a session asks for its report and answers at once; the command then waits for the next poll.
    const first = await held;
    expect(first.status, await first.clone().text()).toBe(200);
    expect(PollResponse.parse(await first.json()).wantReport).toBe(true);
    const enqueued = await send("/api/hosts/timing-local/commands", { method: "POST", headers: adminJson, body: JSON.stringify({ kind: "refresh" }) }, timed);
    expect(enqueued.status).toBe(202);
    expect(marks(enqueued)).toEqual(["arrived", "routed", "enqueued"]);
    const poll = await send(
      "/api/agent/poll?wait=0",
      { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify(pollBody({ agentSession: "timing-session" })) },
      timed,
    );
    const [delivered] = PollResponse.parse(await poll.json()).commands;
    expect(delivered?.kind).toBe("refresh");
    expect(marks(poll)).toEqual(["arrived", "answered"]);
    // bench:rollout splits a finished event's way with these (the agent logs them).
    const event = await send(
      `/api/agent/commands/${delivered!.id}/events`,
      { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify({ type: "started", at: new Date().toISOString() }) },
      timed,
    );
    expect(event.status, await event.clone().text()).toBe(200);
    expect(marks(event)).toEqual(["arrived", "routed", "answered"]);
  });
});
