import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { CommandView, ErrorBody, PollResponse } from "../../common/protocol.ts";
import { eventually } from "../support/wait.ts";
import { agentFetch, api, createHost, poll, queueCommand, sampleReport } from "./helpers.ts";

const commandState = async (id: string) => {
  const res = await api(`/api/commands/${id}`);
  return res.status === 404 ? undefined : CommandView.parse((await res.json<{ command: unknown }>()).command).state;
};

async function queued(host: string, kind: string): Promise<CommandView> {
  const res = await queueCommand(host, kind);
  expect(res.status).toBe(202);
  return CommandView.parse((await res.json<{ command: unknown }>()).command);
}

/** How many agent polls the coordinator is holding now. */
const waitingPolls = async () => z.object({ waitingPolls: z.number() }).parse(await (await api("/api/stats")).json()).waitingPolls;

const parsePoll = async (res: Response) => {
  expect(res.status).toBe(200);
  return PollResponse.parse(await res.json());
};

describe("agent authentication", () => {
  it("refuses a poll without a token, with a malformed one, or with an unknown one", async () => {
    for (const authorization of [undefined, "Basic abc", "Bearer short", `Bearer nfa_${"x".repeat(43)}`]) {
      const res = await exports.default.fetch(
        new Request("http://localhost/api/agent/poll", {
          method: "POST",
          headers: authorization ? { authorization } : {},
          body: JSON.stringify({ protocol: 1, agentSession: "session-one" }),
        }),
      );
      expect(res.status).toBe(401);
      expect(ErrorBody.parse(await res.json()).error.code).toBe("unauthorized");
    }
  });

  it("a host's token can never act on another host's command", async () => {
    const a = await createHost("host-a");
    const b = await createHost("host-b");
    const command = await queued("host-a", "pull");
    const res = await agentFetch(b.token, `/commands/${command.id}/events`, { type: "started", at: new Date().toISOString() });
    expect(res.status).toBe(404);
    expect(await commandState(command.id)).toBe("queued");
    // and host-b's poll never sees host-a's command
    expect((await parsePoll(await poll(b.token, {}, 0))).commands).toEqual([]);
    expect((await parsePoll(await poll(a.token, {}, 0))).commands.map((c) => c.id)).toEqual([command.id]);
  });
});

describe("long-poll delivery", () => {
  it("holds the poll and answers it at once when a command is queued", async () => {
    const { token } = await createHost("hsb0");
    await parsePoll(await poll(token, { report: sampleReport() }, 0));
    const holding = await waitingPolls();
    const pending = poll(token, {}, 2);
    await eventually("the poll to be held", async () => (await waitingPolls()) > holding);
    const queuedAt = Date.now();
    const command = await queued("hsb0", "pull");
    const response = await parsePoll(await pending);
    // At once, not when the 2 s hold runs out (which would answer with no commands).
    expect(Date.now() - queuedAt).toBeLessThan(1500);
    expect(response.commands).toHaveLength(1);
    expect(response.commands[0]).toMatchObject({ id: command.id, kind: "pull", target: null });
    expect(await commandState(command.id)).toBe("delivered");
  });

  it("the held poll's answer leaves the Worker before the 202 of the command that woke it", async () => {
    const { token } = await createHost("answer-first");
    await parsePoll(await poll(token, { report: sampleReport() }, 0));
    let previous: string | null = null;
    for (let trial = 0; trial < 5; trial++) {
      const holding = await waitingPolls();
      const order: string[] = [];
      const pending = poll(token, { acks: previous ? [previous] : [] }, 2).then((res) => (order.push("poll"), res));
      await eventually("the poll to be held", async () => (await waitingPolls()) > holding, { intervalMs: 5 });
      const accepted = queueCommand("answer-first", "refresh").then((res) => (order.push("202"), res));
      const [response, queuedAnswer] = await Promise.all([pending.then(parsePoll), accepted]);
      expect(queuedAnswer.status).toBe(202);
      const command = CommandView.parse((await queuedAnswer.json<{ command: unknown }>()).command);
      expect(response.commands.map((c) => c.id)).toEqual([command.id]);
      expect(order).toEqual(["poll", "202"]);
      previous = command.id;
      await agentFetch(token, `/commands/${command.id}/events`, { type: "finished", at: new Date().toISOString(), outcome: "succeeded", exitCode: 0 });
    }
  });

  it("answers an idle poll with no commands when the hold time runs out", async () => {
    const { token } = await createHost("idle");
    await parsePoll(await poll(token, { report: sampleReport() }, 0));
    const started = Date.now();
    const response = await parsePoll(await poll(token, {}, 1));
    expect(response.commands).toEqual([]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it("forgets a poll whose hold time ran out: a command queued afterwards waits as queued", async () => {
    const { token } = await createHost("gone-quiet");
    await parsePoll(await poll(token, { report: sampleReport() }, 0));
    expect((await parsePoll(await poll(token, {}, 1))).commands).toEqual([]);
    const command = await queued("gone-quiet", "pull");
    expect(command.state).toBe("queued");
    expect(await commandState(command.id)).toBe("queued");
  });

  it("asks a new agent session for its report instead of holding the poll", async () => {
    const { token } = await createHost("fresh");
    const response = await parsePoll(await poll(token, { agentSession: "brand-new-session" }, 2));
    expect(response.wantReport).toBe(true);
  });

  it("delivers again until acknowledged, and stops after the ack", async () => {
    const { token } = await createHost("redeliver");
    const command = await queued("redeliver", "test");
    const first = await parsePoll(await poll(token, {}, 0));
    expect(first.commands.map((c) => c.id)).toEqual([command.id]);
    // The answer was lost on the way: no ack, so it comes again.
    const second = await parsePoll(await poll(token, {}, 0));
    expect(second.commands.map((c) => c.id)).toEqual([command.id]);
    const third = await parsePoll(await poll(token, { acks: [command.id], activeCommands: [command.id] }, 0));
    expect(third.commands).toEqual([]);
  });
});

describe("reports", () => {
  it("stores a report only when it changed, ignoring uptime", async () => {
    const { token, id } = await createHost("reporter");
    await parsePoll(await poll(token, { report: sampleReport() }, 0));
    const first = await env.DB.prepare("select received_at from reports where host_id = ?").bind(id).first<{ received_at: string }>();
    // A report stored again now would carry a later received_at.
    await eventually("the clock to move past the first report", () => Date.now() > Date.parse(first!.received_at));
    await parsePoll(await poll(token, { report: sampleReport({ uptimeSeconds: 2000, agentUptimeSeconds: 99 }) }, 0));
    const same = await env.DB.prepare("select received_at from reports where host_id = ?").bind(id).first<{ received_at: string }>();
    expect(same!.received_at).toBe(first!.received_at);
    await parsePoll(await poll(token, { report: sampleReport({ agentVersion: "0.2.0" }) }, 0));
    const changed = await env.DB.prepare("select report from reports where host_id = ?").bind(id).first<{ report: string }>();
    expect(JSON.parse(changed!.report).agentVersion).toBe("0.2.0");
  });

  it("refuses a report that fails the schema and stores nothing", async () => {
    const { token, id } = await createHost("badreport");
    const res = await agentFetch(token, "/poll?wait=0", { protocol: 1, agentSession: "session-one", report: { protocol: 1, agentVersion: 5 } });
    expect(res.status).toBe(400);
    expect(ErrorBody.parse(await res.json()).error.code).toBe("invalid_request");
    expect(await env.DB.prepare("select count(*) as n from reports where host_id = ?").bind(id).first("n")).toBe(0);
  });

  it("refuses a poll body that is not JSON", async () => {
    const { token } = await createHost("garbage");
    const res = await exports.default.fetch(
      new Request("http://localhost/api/agent/poll", { method: "POST", headers: { authorization: `Bearer ${token}` }, body: "not json" }),
    );
    expect(res.status).toBe(400);
    expect(ErrorBody.parse(await res.json()).error.code).toBe("malformed_json");
  });
});

describe("command lifecycle", () => {
  it("goes queued → delivered → running → succeeded, with streamed output stored in order", async () => {
    const { token } = await createHost("life");
    const command = await queued("life", "pull");
    await parsePoll(await poll(token, {}, 0));
    const at = new Date().toISOString();
    expect((await agentFetch(token, `/commands/${command.id}/events`, { type: "started", at })).status).toBe(200);
    expect(await commandState(command.id)).toBe("running");
    await agentFetch(token, `/commands/${command.id}/events`, { type: "output", chunks: [{ seq: 0, stream: "stdout", data: "fetching\n" }, { seq: 1, stream: "stderr", data: "warning\n" }] });
    // A retried chunk is not stored twice.
    await agentFetch(token, `/commands/${command.id}/events`, { type: "output", chunks: [{ seq: 1, stream: "stderr", data: "warning\n" }, { seq: 2, stream: "stdout", data: "done\n" }] });
    const finished = await agentFetch(token, `/commands/${command.id}/events`, {
      type: "finished", at, outcome: "succeeded", exitCode: 0, result: { commitBefore: "a".repeat(40), commitAfter: "c".repeat(40) },
    });
    expect(finished.status).toBe(200);
    const view = await api(`/api/commands/${command.id}`);
    const { command: done } = await view.json<{ command: CommandView }>();
    expect(done).toMatchObject({ state: "succeeded", exitCode: 0, result: { commitAfter: "c".repeat(40) } });
    const output = await (await api(`/api/commands/${command.id}/output`)).json<{ chunks: { seq: number; stream: string; data: string }[]; truncated: boolean }>();
    expect(output.chunks.map((c) => [c.seq, c.stream, c.data])).toEqual([[0, "stdout", "fetching\n"], [1, "stderr", "warning\n"], [2, "stdout", "done\n"]]);
    expect(output.truncated).toBe(false);
    // A finished command accepts nothing more.
    const late = await agentFetch(token, `/commands/${command.id}/events`, { type: "started", at });
    expect(late.status).toBe(409);
  });

  it("refuses a second command while one is active, with a clear reason; stop always goes through", async () => {
    await createHost("busy");
    const first = await queued("busy", "switch");
    const res = await queueCommand("busy", "pull");
    expect(res.status).toBe(409);
    const error = ErrorBody.parse(await res.json()).error;
    expect(error.code).toBe("host_busy");
    expect(error.message).toContain(first.id);
    const stop = await queued("busy", "stop");
    // Never delivered, so the worker cancels it itself.
    expect(stop.state).toBe("succeeded");
    expect(await commandState(first.id)).toBe("cancelled");
  });

  it("refuses an unknown command kind with 400", async () => {
    await createHost("kinds");
    const res = await queueCommand("kinds", "format-disk");
    expect(res.status).toBe(400);
    expect((await (await api("/api/hosts/kinds/commands")).json<{ commands: unknown[] }>()).commands).toEqual([]);
  });

  it("delivers stop for a running command, targeting it", async () => {
    const { token } = await createHost("stopper");
    const long = await queued("stopper", "test");
    await parsePoll(await poll(token, {}, 0));
    await agentFetch(token, `/commands/${long.id}/events`, { type: "started", at: new Date().toISOString() });
    const stop = await queued("stopper", "stop");
    const response = await parsePoll(await poll(token, { acks: [long.id], activeCommands: [long.id] }, 0));
    expect(response.commands).toEqual([expect.objectContaining({ id: stop.id, kind: "stop", target: long.id })]);
  });

  it("marks a command lost when the agent no longer holds it", async () => {
    const { token } = await createHost("amnesia");
    const command = await queued("amnesia", "switch");
    await parsePoll(await poll(token, {}, 0));
    await agentFetch(token, `/commands/${command.id}/events`, { type: "started", at: new Date().toISOString() });
    // The agent restarted: a new session that holds nothing.
    await parsePoll(await poll(token, { agentSession: "second-session", report: sampleReport() }, 0));
    expect(await commandState(command.id)).toBe("lost");
  });

  it("does not mark lost a command the same agent process stopped listing: its result may be on the way", async () => {
    const { token } = await createHost("in-flight");
    const command = await queued("in-flight", "pull");
    await parsePoll(await poll(token, {}, 0));
    await agentFetch(token, `/commands/${command.id}/events`, { type: "started", at: new Date().toISOString() });
    await parsePoll(await poll(token, { activeCommands: [] }, 0));
    expect(await commandState(command.id)).toBe("running");
    const finished = await agentFetch(token, `/commands/${command.id}/events`, { type: "finished", at: new Date().toISOString(), outcome: "succeeded", exitCode: 0 });
    expect(finished.status).toBe(200);
    expect(await commandState(command.id)).toBe("succeeded");
  });

  it("times out a command past its deadline: nothing stays running forever", async () => {
    const { token } = await createHost("silent");
    const command = await queued("silent", "pull");
    await parsePoll(await poll(token, {}, 0));
    // Move the deadline into the past in the coordinator's own storage, where the command lives.
    const stub = env.COORDINATOR.getByName("fleet");
    await runInDurableObject(stub, (_instance, state) => {
      state.storage.sql.exec("update commands set deadline_at = ? where id = ?", new Date(Date.now() - 1000).toISOString(), command.id);
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await commandState(command.id)).toBe("timed-out");
    const { command: view } = await (await api(`/api/commands/${command.id}`)).json<{ command: CommandView }>();
    expect(view.error).toContain("lost contact");
  });

  it("keeps a queued command for an offline host and delivers it when the host returns", async () => {
    const { token } = await createHost("laptop");
    const command = await queued("laptop", "pull");
    expect(await commandState(command.id)).toBe("queued");
    const response = await parsePoll(await poll(token, { agentSession: "back-online", report: sampleReport() }, 2));
    expect(response.commands.map((c) => c.id)).toEqual([command.id]);
  });

  it("bounds stored output and leaves a visible truncation marker", async () => {
    const { token } = await createHost("chatty");
    const command = await queued("chatty", "switch");
    await parsePoll(await poll(token, {}, 0));
    const big = "x".repeat(60 * 1024);
    for (let batch = 0; batch < 3; batch++) {
      const chunks = Array.from({ length: 8 }, (_, i) => ({ seq: batch * 8 + i, stream: "stdout", data: big }));
      expect((await agentFetch(token, `/commands/${command.id}/events`, { type: "output", chunks })).status).toBe(200);
    }
    const output = await (await api(`/api/commands/${command.id}/output`)).json<{ chunks: { stream: string; data: string }[]; truncated: boolean }>();
    expect(output.truncated).toBe(true);
    expect(output.chunks.at(-1)!.stream).toBe("system");
    expect(output.chunks.at(-1)!.data).toContain("output truncated");
    const stored = output.chunks.reduce((n, c) => n + c.data.length, 0);
    expect(stored).toBeLessThanOrEqual(1024 * 1024 + 200);
  });
});
