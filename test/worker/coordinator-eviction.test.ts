// The coordinator evicted (its memory gone, its storage kept) with commands in
// every state: nothing lost, nothing delivered twice after an acknowledgement,
// nothing stuck, output bytes exact.
import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CommandView, PollResponse } from "../../common/protocol.ts";
import { agentFetch, api, createHost, poll, queueCommand } from "./helpers.ts";

const stub = () => env.COORDINATOR.getByName("fleet");

async function queued(host: string, kind: string): Promise<CommandView> {
  const res = await queueCommand(host, kind);
  expect(res.status).toBe(202);
  return CommandView.parse((await res.json<{ command: unknown }>()).command);
}

const polled = async (res: Response) => PollResponse.parse(await res.json());
const view = async (id: string) => CommandView.parse((await (await api(`/api/commands/${id}`)).json<{ command: unknown }>()).command);
const event = (token: string, id: string, body: unknown) => agentFetch(token, `/commands/${id}/events`, body);
const chunk = (seq: number) => ({ seq, stream: "stdout", data: `line ${seq}\n` });

describe("an evicted coordinator resumes from its own storage", () => {
  it("queued, delivered, acknowledged, running and half-streamed commands all survive exactly", async () => {
    const q = await createHost("ev-queued");
    const d = await createHost("ev-delivered");
    const a = await createHost("ev-acked");
    const r = await createHost("ev-running");

    const queuedCmd = await queued("ev-queued", "switch");
    const deliveredCmd = await queued("ev-delivered", "switch");
    expect((await polled(await poll(d.token, {}, 0))).commands.map((c) => c.id)).toEqual([deliveredCmd.id]);
    const ackedCmd = await queued("ev-acked", "switch");
    expect((await polled(await poll(a.token, {}, 0))).commands.map((c) => c.id)).toEqual([ackedCmd.id]);
    expect((await polled(await poll(a.token, { acks: [ackedCmd.id], activeCommands: [ackedCmd.id] }, 0))).commands).toEqual([]);
    const runningCmd = await queued("ev-running", "switch");
    await polled(await poll(r.token, {}, 0));
    expect((await event(r.token, runningCmd.id, { type: "started", at: new Date().toISOString() })).status).toBe(200);
    expect((await event(r.token, runningCmd.id, { type: "output", chunks: [0, 1, 2, 3, 4].map(chunk) })).status).toBe(200);

    await evictDurableObject(stub());

    // Nothing lost: the queued command is delivered, once.
    expect((await polled(await poll(q.token, {}, 0))).commands.map((c) => c.id)).toEqual([queuedCmd.id]);
    expect((await polled(await poll(q.token, { acks: [queuedCmd.id], activeCommands: [queuedCmd.id] }, 0))).commands).toEqual([]);
    // Delivered but never acknowledged: delivered again.
    expect((await polled(await poll(d.token, {}, 0))).commands.map((c) => c.id)).toEqual([deliveredCmd.id]);
    // Acknowledged: never delivered again, even by a restarted coordinator.
    expect((await polled(await poll(a.token, { activeCommands: [ackedCmd.id] }, 0))).commands).toEqual([]);
    // Half-sent output: the agent resends from seq 3; only 5..7 are new.
    expect((await event(r.token, runningCmd.id, { type: "output", chunks: [3, 4, 5, 6, 7].map(chunk) })).status).toBe(200);
    expect(
      (await event(r.token, runningCmd.id, { type: "finished", at: new Date().toISOString(), outcome: "succeeded", exitCode: 0 })).status,
    ).toBe(200);
    const output = await (await api(`/api/commands/${runningCmd.id}/output`)).json<{ chunks: { seq: number; data: string }[] }>();
    expect(output.chunks.map((c) => c.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    const bytes = await runInDurableObject(stub(), (_instance, state) =>
      Number(state.storage.sql.exec("select output_bytes from commands where id = ?", runningCmd.id).one().output_bytes),
    );
    expect(bytes).toBe(output.chunks.reduce((n, c) => n + new TextEncoder().encode(c.data).byteLength, 0));
    expect((await view(runningCmd.id)).state).toBe("succeeded");
  });

  it("nothing stuck: after an eviction the deadline alarm still ends a silent command", async () => {
    const { token } = await createHost("ev-silent");
    const command = await queued("ev-silent", "pull");
    await polled(await poll(token, {}, 0));
    await runInDurableObject(stub(), (_instance, state) => {
      state.storage.sql.exec("update commands set deadline_at = ? where id = ?", new Date(Date.now() - 1000).toISOString(), command.id);
    });
    await evictDurableObject(stub());
    await runDurableObjectAlarm(stub());
    expect((await view(command.id)).state).toBe("timed-out");
  });

  it("an agent killed mid-switch: its command ends lost when the agent's new session polls, also across an eviction", async () => {
    const { token } = await createHost("ev-killed");
    const command = await queued("ev-killed", "switch");
    await polled(await poll(token, { agentSession: "first-process" }, 0));
    await event(token, command.id, { type: "started", at: new Date().toISOString() });
    await evictDurableObject(stub());
    await polled(await poll(token, { agentSession: "second-process", activeCommands: [] }, 0));
    const ended = await view(command.id);
    expect(ended.state).toBe("lost");
    expect(ended.error).toContain("no longer holds");
  });
});
