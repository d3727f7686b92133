// The coordinator's command history stays bounded for the whole fleet (worker/commands/history.ts):
// the real object, its history filled in one statement, pruned by commands ended through the agent API.
import { env, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { PollResponse } from "../../common/protocol.ts";
import { fleetBatch, historyBounds } from "../../worker/commands/history.ts";
import { newCommand } from "../../worker/commands/rules.ts";
import { CommandStore } from "../../worker/db/coordinator/commands.ts";
import { agentFetch, api, createHost, pollBody, queueCommand } from "./helpers.ts";

const stub = () => env.COORDINATOR.getByName("fleet");
const { bounds } = historyBounds(env.COMMAND_HISTORY_LIMIT);
const FINISHED = "state NOT IN ('queued', 'delivered', 'running')";
/** Stored ages: seeded history is older than anything this file ends through the API. */
const at = (second: number) => new Date(Date.UTC(2020, 0, 1) + second * 1000).toISOString();

/**
 * `count` finished refreshes in one statement, then the object evicted: number i belongs to `hostIds[i % hostIds.length]`,
 * was created at `at(from + i)` and has the id `${prefix}-${i}` (padded, so ids sort as they were made).
 */
async function seedFinished(prefix: string, hostIds: string[], count: number, from: number): Promise<void> {
  await runInDurableObject(stub(), (_instance, state) => {
    state.storage.sql.exec(
      `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < CAST(? AS INTEGER))
       INSERT INTO commands (id, host_id, host_name, kind, state, actor, created_at, started_at, finished_at, deadline_at, expires_at, exit_code, acked, parameters)
       SELECT ? || '-' || printf('%08d', i), json_extract(?, '$[' || (i % CAST(? AS INTEGER)) || ']'), 'seeded', 'refresh', 'succeeded', 'seed',
              strftime('%Y-%m-%dT%H:%M:%fZ', ? , '+' || (CAST(? AS INTEGER) + i) || ' seconds'), NULL, NULL, '2020-01-02T00:00:00.000Z', '2020-01-02T00:00:00.000Z', 0, 1, '{}'
       FROM n`,
      count,
      prefix,
      JSON.stringify(hostIds),
      hostIds.length,
      at(0).replace(/\.\d+Z$/, ""),
      from,
    );
  });
  // Written behind the store's back: the object starts again, as after a restart, and counts its history afresh.
  await evictDurableObject(stub());
}

const sql = <T>(query: string, ...params: SqlStorageValue[]) =>
  runInDurableObject(stub(), (_instance, state) => state.storage.sql.exec(query, ...params).toArray() as T[]);
const finishedCount = async () => (await sql<{ n: number }>(`SELECT count(*) AS n FROM commands WHERE ${FINISHED}`))[0]!.n;
const prunedTotal = async () => (await sql<{ n: number }>("SELECT coalesce(sum(commands), 0) AS n FROM command_history_pruned"))[0]!.n;
/**
 * The seeded fleet's commands still kept are all newer than every one pruned: its hosts have hundreds
 * each, so none of its oldest are a host's newest 20, and the pass had to take them oldest first.
 */
async function oldestFirst(): Promise<boolean> {
  const [row] = await sql<{ kept: string; pruned: string }>(
    `SELECT (SELECT min(created_at) FROM commands WHERE id LIKE 'cmd_fleet-%') AS kept,
            (SELECT max(newest_created_at) FROM command_history_pruned) AS pruned`,
  );
  expect(row?.kept).toBeTypeOf("string");
  expect(row?.pruned).toBeTypeOf("string");
  return row!.pruned < row!.kept;
}
const databaseSize = () => runInDurableObject(stub(), (_instance, state) => state.storage.sql.databaseSize);

/** Queues a refresh for the host and has its agent take, start and end it: the end is what prunes. */
async function runOne(host: { name: string; token: string }): Promise<string> {
  expect((await queueCommand(host.name, "refresh")).status).toBe(202);
  const { commands } = PollResponse.parse(await (await agentFetch(host.token, "/poll?wait=0", pollBody({ agentSession: `s-${host.name}` }))).json());
  const [command] = commands;
  if (!command) throw new Error(`${host.name}: no command delivered`);
  const now = new Date().toISOString();
  expect((await agentFetch(host.token, `/commands/${command.id}/events`, { type: "started", at: now })).status).toBe(200);
  expect((await agentFetch(host.token, `/commands/${command.id}/events`, { type: "finished", at: now, outcome: "succeeded", exitCode: 0 })).status).toBe(200);
  return command.id;
}

async function listed(name: string) {
  const res = await api(`/api/hosts/${name}/commands?limit=200`);
  expect(res.status).toBe(200);
  return res.json<{ commands: Array<{ id: string }>; prunedCommands: { count: number; newestCreatedAt: string } | null }>();
}

async function makeHost(name: string) {
  const { token, id } = await createHost(name);
  return { name, token, id };
}

describe("the coordinator's command history", () => {
  it("a host keeps its newest 200 finished commands, and its command list says how many older ones were pruned and when the newest of them was made", async () => {
    const host = await makeHost("history-busy");
    expect((await listed(host.name)).prunedCommands).toBeNull();
    await seedFinished("cmd_busy", [host.id], bounds.perHostMax + 5, 0);
    const ended = await runOne(host);

    const list = await listed(host.name);
    expect(list.commands).toHaveLength(bounds.perHostMax);
    expect(list.commands[0]!.id).toBe(ended);
    // The seeded 205 and the one ended: the 6 oldest went, the newest of them seeded sixth.
    expect(list.prunedCommands).toEqual({ count: 6, newestCreatedAt: at(5) });
    expect(list.commands.at(-1)!.id).toBe("cmd_busy-00000006");
    // And the host page's own read says the same.
    const page = await (await api(`/api/hosts/${host.name}`)).json<{ prunedCommands: unknown }>();
    expect(page.prunedCommands).toEqual({ count: 6, newestCreatedAt: at(5) });
  });

  it("past the fleet's limit the oldest finished commands of any host go first, a batch at a time, but never a host's newest 20, and the storage stops growing", async () => {
    const quiet = await makeHost("history-quiet");
    const active = await makeHost("history-active");
    const busy = await makeHost("history-fleet-busy");
    // The quiet host's whole history is older than the rest of the fleet's: its 20 stay, it has no newer ones.
    await seedFinished("cmd_quiet", [quiet.id], bounds.perHostKept, 500);
    // The rest of the limit spread over many hosts (ids only: the history does not read the catalogue).
    const others = Array.from({ length: 100 }, (_, i) => `host_other${i}`);
    await seedFinished("cmd_fleet", [...others, busy.id], bounds.fleetLimit - 1 - (await finishedCount()), 1_000);
    const prunedBefore = await prunedTotal();
    // The first end fills the limit, and nothing goes; the object counted its history once, then keeps the count.
    await runOne(active);
    expect(await finishedCount()).toBe(bounds.fleetLimit);
    expect(await prunedTotal()).toBe(prunedBefore);
    const full = await databaseSize();

    // One more end passes the limit: a batch and the one over go, oldest first.
    await runOne(active);
    const batch = fleetBatch(bounds);
    expect(await finishedCount()).toBe(bounds.fleetLimit - batch);
    expect(await prunedTotal()).toBe(prunedBefore + batch + 1);
    expect(await oldestFirst()).toBe(true);
    // The first test's host, its history the oldest of all: down to its newest 20.
    expect((await listed("history-busy")).commands).toHaveLength(bounds.perHostKept);
    expect(await sql(`SELECT id FROM commands WHERE host_id = ?`, quiet.id)).toHaveLength(bounds.perHostKept);
    expect((await listed(quiet.name)).prunedCommands).toBeNull();
    const busyPruned = (await listed(busy.name)).prunedCommands;
    expect(busyPruned?.count).toBeGreaterThan(0);

    // Two more batches, each passed by an end through the API: the freed pages are used again, the file
    // does not grow (two batches kept would have made it about a tenth larger).
    for (let round = 0; round < 2; round++) {
      await seedFinished(`cmd_more${round}`, [...others, busy.id], batch, 100_000 + round * batch);
      await runOne(active);
      expect(await finishedCount()).toBe(bounds.fleetLimit - batch);
    }
    expect(await oldestFirst()).toBe(true);
    expect(await databaseSize()).toBeLessThanOrEqual(full * 1.02);
    expect((await listed(busy.name)).prunedCommands!.count).toBeGreaterThan(busyPruned!.count);
    expect(await sql(`SELECT id FROM commands WHERE host_id = ?`, quiet.id)).toHaveLength(bounds.perHostKept);
  });

  it("twelve hosts ending commands at once past the fleet's limit: each end counted once, kept or pruned, the limit held, every host's own end kept", async () => {
    const hosts = await Promise.all(Array.from({ length: 12 }, (_, i) => makeHost(`history-at-once-${i}`)));
    await seedFinished("cmd_at_once", ["host_seeded_at_once"], bounds.fleetLimit - 1 - (await finishedCount()), 200_000);
    const prunedBefore = await prunedTotal();
    const everBefore = (await finishedCount()) + prunedBefore;

    const ended = await Promise.all(hosts.map((host) => runOne(host)));

    expect(await prunedTotal()).toBeGreaterThan(prunedBefore);
    expect(await finishedCount()).toBeLessThanOrEqual(bounds.fleetLimit);
    expect((await finishedCount()) + (await prunedTotal())).toBe(everBefore + hosts.length);
    for (const [i, host] of hosts.entries()) expect((await listed(host.name)).commands[0]?.id).toBe(ended[i]);
  });

  it("the command store counts each change to commands and no read: what tells a verdict whether the host's commands its two judges share went stale", async () => {
    await runInDurableObject(stub(), (_instance, state) => {
      const store = new CommandStore(state.storage.sql, bounds);
      const hostId = "host_changes";
      const record = newCommand({ id: "cmd_changes-1", hostId, hostName: "changes", kind: "refresh", target: null, commit: null, actor: "alice", now: Date.now(), ttlSeconds: 3600 });
      const changed = (write: () => unknown) => {
        const before = store.changes;
        write();
        return store.changes - before;
      };
      expect(changed(() => store.insertCommand(record))).toBe(1);
      expect(changed(() => [store.hostCommands(hostId, 20), store.activeCommandsOf(hostId), store.activeDeadlines(), store.command(record.id)])).toBe(0);
      expect(changed(() => store.updateCommand(record.id, "running", { state: "succeeded" }))).toBe(0);
      expect(changed(() => store.updateCommand(record.id, "queued", { state: "delivered", deliveredAt: new Date().toISOString() }))).toBe(1);
      expect(changed(() => store.acknowledge(hostId, [record.id]))).toBe(1);
      expect(changed(() => store.appendOutput(record.id, [], { outputBytes: 0, outputTruncated: false, outputHighWater: 0 }))).toBe(1);
      expect(changed(() => store.prune(hostId))).toBe(1);
      expect(changed(() => store.forgetHost(hostId))).toBe(1);
      expect(store.hostCommands(hostId, 20)).toEqual([]);
    });
  });
});
