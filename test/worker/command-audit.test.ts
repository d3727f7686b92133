/**
 * A person's command and its audit entry against the real coordinator and real D1: the entry is stored
 * in the coordinator with the command and carried to D1 by its outbox (docs/architecture.md, "The audit
 * log"). It reaches D1 once, the audit API shows it right after the 202, many commands at once keep
 * every entry once and in the order stored, and an eviction between the commit and the carry loses none.
 */
import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { CommandView } from "../../common/protocol.ts";
import { Dispatch } from "../../worker/coordinator/dispatch.ts";
import { AUDIT_CARRY_DELAY_MS } from "../../worker/coordinator/outbox.ts";
import { api, createHost, queueCommand } from "./helpers.ts";

const stub = () => env.COORDINATOR.getByName("fleet");

const AuditPage = z.object({
  entries: z.array(z.object({ id: z.number(), actor: z.string(), role: z.string().nullable(), action: z.string(), target: z.string().nullable(), result: z.string(), details: z.record(z.string(), z.unknown()).nullable() })),
});
const Queued = z.object({ command: z.object({ id: z.string() }) });

/** The outbox's pending audit entries, in the order written: their effect keys (the D1 rows' effect_key). */
const pendingAudit = () =>
  runInDurableObject(stub(), (_instance, state) =>
    state.storage.sql.exec("select body from outbox where key like 'audit:%' order by seq").toArray().map((row) => z.object({ key: z.string() }).parse(JSON.parse(String(row.body))).key),
  );

/** D1's command entries on these hosts, in the order of their ids. */
async function d1Entries(hosts: string[]) {
  const { results } = await env.DB.prepare(`select id, effect_key, action, target, result, role, details from audit_log where action like 'command.%' and target in (${hosts.map(() => "?").join(", ")}) order by id`)
    .bind(...hosts)
    .all<{ id: number; effect_key: string | null; action: string; target: string; result: string; role: string | null; details: string | null }>();
  return results;
}

// Each try goes through the outbox and D1 on a loaded machine: longer than vi.waitFor's default.
const until = (check: () => Promise<void>) => vi.waitFor(check, { timeout: 20_000, interval: 20 });

// The store the carry writes to fails for real (its table moved away), so the entries stay in the outbox.
const breakAuditLog = () => env.DB.exec("ALTER TABLE audit_log RENAME TO audit_log_away");
const mendAuditLog = () => env.DB.exec("ALTER TABLE audit_log_away RENAME TO audit_log");
// A test that failed with the table moved away must not fail the next ones for that reason.
afterEach(async () => {
  if (await env.DB.prepare("select 1 from sqlite_master where name = 'audit_log_away'").first()) await mendAuditLog();
});

describe("a person's command and its audit entry", () => {
  it("reaches D1 exactly once, with the actor's role and the command's id, and leaves the outbox empty", async () => {
    await createHost("audit-once");
    const res = await queueCommand("audit-once", "refresh");
    expect(res.status).toBe(202);
    const { id } = Queued.parse(await res.json()).command;
    await until(async () => expect(await pendingAudit()).toEqual([]));
    const rows = await d1Entries(["audit-once"]);
    expect(rows.filter((row) => row.action === "command.refresh")).toEqual([
      expect.objectContaining({ result: "queued", role: "admin", details: JSON.stringify({ commandId: id }), effect_key: expect.any(String) }),
    ]);
  });

  it("is in the audit API's answer right after the 202, also when the outbox's own carry failed and waits out a retry", async () => {
    await createHost("audit-read");
    const first = await queueCommand("audit-read", "refresh");
    expect(first.status).toBe(202);
    const firstId = Queued.parse(await first.json()).command.id;
    const page = AuditPage.parse(await (await api("/api/audit?limit=500")).json());
    expect(page.entries.filter((entry) => entry.details?.commandId === firstId)).toEqual([expect.objectContaining({ action: "command.refresh", target: "audit-read", result: "queued" })]);

    // The carry after the step fails and backs off for 30 s: only the read's own carry can bring the entry in time.
    await breakAuditLog();
    const second = await queueCommand("audit-read", "refresh");
    expect(second.status).toBe(202);
    const secondId = Queued.parse(await second.json()).command.id;
    await until(async () => {
      const tried = await runInDurableObject(stub(), (_instance, state) => Number(state.storage.sql.exec("select count(*) as n from outbox where key like 'audit:%' and attempts > 0").one().n));
      expect(tried).toBe(1);
    });
    await mendAuditLog();
    const after = AuditPage.parse(await (await api("/api/audit?limit=500")).json());
    expect(after.entries.filter((entry) => entry.details?.commandId === secondId)).toEqual([expect.objectContaining({ action: "command.refresh", role: "admin" })]);
    expect(await pendingAudit()).toEqual([]);
  });

  it("many commands at once, queued and refused: every one has exactly one entry, in D1 in the order the coordinator stored them", async () => {
    const hosts = Array.from({ length: 6 }, (_, i) => `audit-many-${i}`);
    for (const host of hosts) await createHost(host);
    // Held in the outbox until every request is answered, so the order stored can be read before the carry.
    await breakAuditLog();
    // Two pulls per host (one queued, the other refused: the host is busy) and a refresh, all at once.
    const requests = hosts.flatMap((host) => [queueCommand(host, "pull"), queueCommand(host, "pull"), queueCommand(host, "refresh")]);
    const statuses = (await Promise.all(requests)).map((res) => res.status);
    expect(statuses.filter((status) => status === 202)).toHaveLength(2 * hosts.length);
    expect(statuses.filter((status) => status === 409)).toHaveLength(hosts.length);
    const stored = await pendingAudit();
    expect(stored).toHaveLength(3 * hosts.length);

    await mendAuditLog();
    await stub().carryAudit();
    const rows = await d1Entries(hosts);
    expect(rows.map((row) => row.effect_key)).toEqual(stored);
    expect(rows.filter((row) => row.result === "queued")).toHaveLength(2 * hosts.length);
    expect(rows.filter((row) => row.result.startsWith("refused: ") && row.details === JSON.stringify({ code: "host_busy" }))).toHaveLength(hosts.length);
    expect(await pendingAudit()).toEqual([]);
  });

  it("evicted between the commit and the carry: every entry reaches D1 after the restart, once, also when a carried entry comes back as after a lost delete", async () => {
    const hosts = ["audit-evict-a", "audit-evict-b"];
    for (const host of hosts) await createHost(host);
    await breakAuditLog();
    for (const host of hosts) expect((await queueCommand(host, "refresh")).status).toBe(202);
    const rows = await runInDurableObject(stub(), (_instance, state) =>
      state.storage.sql.exec("select key, body from outbox where key like 'audit:%' order by seq").toArray().map((row) => ({ key: String(row.key), body: String(row.body) })),
    );
    expect(rows).toHaveLength(hosts.length);

    await evictDurableObject(stub());
    await mendAuditLog();
    await runDurableObjectAlarm(stub());
    await until(async () => expect(await pendingAudit()).toEqual([]));
    const keys = rows.map((row) => z.object({ key: z.string() }).parse(JSON.parse(row.body)).key);
    expect((await d1Entries(hosts)).map((row) => row.effect_key)).toEqual(keys);

    // Back in the outbox, as a crash after D1's commit and before the outbox's delete would leave them.
    await runInDurableObject(stub(), (_instance, state) => {
      for (const row of rows) state.storage.sql.exec("INSERT INTO outbox (key, body, next_at) VALUES (?, ?, ?)", row.key, row.body, Date.now());
    });
    await evictDurableObject(stub());
    await runDurableObjectAlarm(stub());
    await until(async () => expect(await pendingAudit()).toEqual([]));
    expect((await d1Entries(hosts)).map((row) => row.effect_key)).toEqual(keys);
  });
  it("a queued command's step asks no clock before its answer: the alarm rings for the entry, then arbitrates the command's deadline", async () => {
    await createHost("audit-alarm");
    // Nothing else under way: earlier tests' entries carried, so no other run asks the clocks meanwhile.
    await until(async () => expect(await pendingAudit()).toEqual([]));
    const asked = vi.spyOn(Dispatch.prototype, "nextWakeAt");
    try {
      const before = Date.now();
      const res = await queueCommand("audit-alarm", "refresh");
      expect(res.status).toBe(202);
      expect(asked).not.toHaveBeenCalled();
      const ringsAt = await runInDurableObject(stub(), (_instance, state) => state.storage.getAlarm());
      expect(ringsAt).toBeGreaterThanOrEqual(before + AUDIT_CARRY_DELAY_MS);
      expect(ringsAt).toBeLessThanOrEqual(Date.now() + AUDIT_CARRY_DELAY_MS);

      await until(async () => expect(await pendingAudit()).toEqual([]));
      expect(asked).toHaveBeenCalled();
      const command = CommandView.parse((await stub().getCommand(Queued.parse(await res.json()).command.id)) ?? null);
      const next = await runInDurableObject(stub(), (_instance, state) => state.storage.getAlarm());
      expect(next).toBeGreaterThan(ringsAt ?? Number.POSITIVE_INFINITY);
      expect(next).toBeLessThanOrEqual(Date.parse(command.expiresAt));
    } finally {
      asked.mockRestore();
    }
  });
});
