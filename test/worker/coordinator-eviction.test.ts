// The coordinator evicted (its memory gone, its storage kept) with commands in
// every state: nothing lost, nothing delivered twice after an acknowledgement,
// nothing stuck, output bytes exact. And evicted between a step and its effects:
// every effect in the outbox carried out after the restart, exactly once.
import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { CommandView, PollResponse } from "../../common/protocol.ts";
import { agentFetch, api, createHost, poll, queueCommand, sampleReport } from "./helpers.ts";

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

describe("an evicted coordinator carries out the effects its steps left in the outbox", () => {
  const notifierStub = () => env.NOTIFIER.getByName("fleet");
  const outboxKeys = () =>
    runInDurableObject(stub(), (_instance, state) =>
      state.storage.sql.exec("select key from outbox order by seq").toArray().map((row) => String(row.key)),
    );
  const auditCount = async (rolloutId: string) =>
    (await env.DB.prepare("select action, count(*) as n from audit_log where target = ? group by action order by action").bind(rolloutId).all<{ action: string; n: number }>())
      .results;
  const published = () => runInDurableObject(notifierStub(), (_instance, state) => Number(state.storage.sql.exec("select count(*) as n from published").one().n));
  // The effects' own stores fail for real (their tables moved away), so what the step wrote stays in the outbox.
  const breakStores = async () => {
    await env.DB.exec("ALTER TABLE audit_log RENAME TO audit_log_away");
    await runInDurableObject(notifierStub(), (_instance, state) => void state.storage.sql.exec("ALTER TABLE published RENAME TO published_away"));
  };
  const mendStores = async () => {
    await env.DB.exec("ALTER TABLE audit_log_away RENAME TO audit_log");
    await runInDurableObject(notifierStub(), (_instance, state) => void state.storage.sql.exec("ALTER TABLE published_away RENAME TO published"));
  };
  // Longer than vi.waitFor's default: each try goes through D1 and the Notifier on a loaded machine.
  const until = (check: () => Promise<void>) => vi.waitFor(check, { timeout: 20_000, interval: 50 });

  it("a rollout's audit entries and notification, failing until after the restart, are each carried out exactly once", async () => {
    const name = "ev-effects";
    const { token } = await createHost(name);
    const first = await poll(token, { agentSession: "effects-session", report: sampleReport({ hostname: name }) }, 0);
    expect(first.status).toBe(200);
    await until(async () => expect(await outboxKeys()).toEqual([]));
    const before = await published();

    await breakStores();
    const started = await stub().startRollout({ commit: "c".repeat(40), pr: null, lockChanges: [], hosts: [name], automatic: false, ignoreWindows: true, actor: "eviction test" });
    if (!started.ok) throw new Error(`rollout refused: ${started.message}`);
    const rolloutId = started.rollout.id;
    // The step wrote its effects; the first tries failed and left them for a retry.
    const pending = await outboxKeys();
    expect(pending.filter((key) => key.startsWith("audit:"))).toHaveLength(2);
    expect(pending.filter((key) => key.startsWith("notify:"))).toHaveLength(1);
    await until(async () => {
      const tried = await runInDurableObject(stub(), (_instance, state) => Number(state.storage.sql.exec("select count(*) as n from outbox where attempts > 0").one().n));
      expect(tried).toBe(pending.length);
    });
    // What a crash after the D1 write and before the outbox delete would leave: the rows, kept to put back below.
    const rows = await runInDurableObject(stub(), (_instance, state) =>
      state.storage.sql.exec("select key, body from outbox").toArray().map((row) => ({ key: String(row.key), body: String(row.body) })),
    );

    await evictDurableObject(stub());
    await mendStores();
    await runDurableObjectAlarm(stub());
    await until(async () => expect(await outboxKeys()).toEqual([]));
    expect(await auditCount(rolloutId)).toEqual([
      { action: "rollout.start", n: 1 },
      { action: "rollout.started", n: 1 },
    ]);
    expect(await published()).toBe(before + 1);

    // Evicted again with the same effects back in the outbox, as if their deletes were lost: nothing happens twice.
    await runInDurableObject(stub(), (_instance, state) => {
      for (const row of rows) state.storage.sql.exec("INSERT INTO outbox (key, body, next_at) VALUES (?, ?, ?)", row.key, row.body, Date.now());
    });
    await evictDurableObject(stub());
    await runDurableObjectAlarm(stub());
    await until(async () => expect(await outboxKeys()).toEqual([]));
    expect(await auditCount(rolloutId)).toEqual([
      { action: "rollout.start", n: 1 },
      { action: "rollout.started", n: 1 },
    ]);
    expect(await published()).toBe(before + 1);
  });
});

describe("holds keyed by host id", () => {
  const holdOf = async (name: string) =>
    (await (await api("/api/hosts")).json<{ hosts: { name: string; hold: { reason: string } | null }[] }>()).hosts.find((h) => h.name === name)?.hold ?? null;

  it("holds an older version stored by name are keyed by id at the next start; one whose host is gone is dropped", async () => {
    const { id } = await createHost("ev-held");
    const hold = { reason: "disk replacement", until: null, by: "ops@example.com", at: new Date().toISOString() };
    // What schema version 6 sets aside: the holds of an older version, keyed by name.
    await runInDurableObject(stub(), (_instance, state) => {
      state.storage.sql.exec("CREATE TABLE holds_by_name (host_name TEXT PRIMARY KEY, body TEXT NOT NULL)");
      for (const name of ["ev-held", "ev-gone"]) state.storage.sql.exec("INSERT INTO holds_by_name (host_name, body) VALUES (?, ?)", name, JSON.stringify(hold));
    });
    await evictDurableObject(stub());

    expect((await holdOf("ev-held"))?.reason).toBe("disk replacement");
    const stored = await runInDurableObject(stub(), (_instance, state) => ({
      holds: state.storage.sql.exec("SELECT host_id, host_name FROM holds ORDER BY host_name").toArray(),
      aside: state.storage.sql.exec("SELECT name FROM sqlite_master WHERE name = 'holds_by_name'").toArray().length,
    }));
    expect(stored).toEqual({ holds: [{ host_id: id, host_name: "ev-held" }], aside: 0 });

    // Released by name through the API, found by id.
    expect((await api("/api/hosts/ev-held/hold", { method: "DELETE" })).status).toBe(200);
    expect(await holdOf("ev-held")).toBeNull();
  });
});
