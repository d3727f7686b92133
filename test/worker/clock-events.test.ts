// What changes with the clock alone reaches the dashboards through the
// coordinator's alarm: a lock ageing past 7 or 30 days, a command passing its
// deadline; with nothing read per poll.
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { DashboardEvent, HostView, PollResponse } from "../../common/protocol.ts";
import { nextLockThresholdAt } from "../../worker/lock-thresholds.ts";
import { eventually } from "../support/wait.ts";
import { agentFetch, api, createHost, pollBody, sampleReport } from "./helpers.ts";

const stub = () => env.COORDINATOR.getByName("fleet");
const DAY = 24 * 60 * 60;

describe("nextLockThresholdAt", () => {
  const now = Date.parse("2026-06-15T12:00:00Z");
  const ago = (days: number) => now / 1000 - days * DAY;
  it.each<{ lastModified: Record<string, number>; expected: number | null; why: string }>([
    { lastModified: { nixpkgs: ago(0) }, expected: ago(-8), why: "a fresh lock: when it turns 8 days old" },
    { lastModified: { nixpkgs: ago(7.5) }, expected: ago(-0.5), why: "7½ days old: half a day on" },
    { lastModified: { nixpkgs: ago(8) }, expected: ago(-23), why: "8 days old: past the first threshold, next when 31 days old" },
    { lastModified: { nixpkgs: ago(31) }, expected: null, why: "past both thresholds: nothing ahead" },
    { lastModified: {}, expected: null, why: "no lastModified: nothing to age" },
    { lastModified: { nixpkgs: ago(40), "home-manager": ago(1) }, expected: null, why: "nixpkgs decides, not the newer input" },
    { lastModified: { "home-manager": ago(1), agenix: ago(20) }, expected: ago(-7), why: "without nixpkgs the newest input decides" },
  ])("$why", ({ lastModified, expected }) => {
    expect(nextLockThresholdAt(lastModified, now)).toBe(expected === null ? null : expected * 1000);
  });
});

/** A dashboard's event socket, collecting what the coordinator broadcasts. */
async function dashboard(): Promise<{ events: DashboardEvent[]; close(): void }> {
  const res = await exports.default.fetch(new Request("http://localhost/api/events", { headers: { upgrade: "websocket" } }));
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  const events: DashboardEvent[] = [];
  ws.addEventListener("message", (event) => events.push(DashboardEvent.parse(JSON.parse(String(event.data)))));
  ws.accept();
  return { events, close: () => ws.close(1000, "done") };
}

async function lockReason(name: string): Promise<{ state: string; reason: string }> {
  const res = await api(`/api/hosts/${name}`);
  expect(res.status).toBe(200);
  const view = HostView.parse(await res.json());
  return { state: view.compartments.lock.state, reason: view.compartments.lock.reason };
}

/** Time between the reports and the lock crossings: the state before them is read in it, with room on a loaded machine. */
const MARGIN_SECONDS = 3;

describe("the lock-age clock", () => {
  it("pushes a host event when a lock crosses 7 and 30 days, and the host then reads with its new Lock", async () => {
    const socket = await dashboard();
    const names = ["lock-week", "lock-month"] as const;
    const tokens = new Map<string, string>();
    for (const name of names) tokens.set(name, (await createHost(name)).token);
    // Each host's lock crosses its threshold, on a whole second, at least MARGIN_SECONDS from now.
    const crossing = Math.ceil(Date.now() / 1000) + MARGIN_SECONDS;
    const hosts = [
      { name: names[0], lastModified: crossing - 8 * DAY, threshold: 8 },
      { name: names[1], lastModified: crossing - 31 * DAY, threshold: 31 },
    ];
    const crossingAt = (h: (typeof hosts)[number]) => (h.lastModified + h.threshold * DAY) * 1000;
    for (const host of hosts) {
      const report = sampleReport({ hostname: host.name, lock: { hash: { value: "b".repeat(64) }, lastModified: { nixpkgs: host.lastModified } } });
      expect((await agentFetch(tokens.get(host.name)!, "/poll?wait=0", pollBody({ agentSession: `s-${host.name}`, report }))).status).toBe(200);
    }
    const week = await lockReason("lock-week");
    const month = await lockReason("lock-month");
    // The alarm is set for the first crossing, not later.
    const alarm = await runInDurableObject(stub(), (_instance, state) => state.storage.getAlarm());
    expect(Date.now(), `reading the state before the crossing took more than ${MARGIN_SECONDS} s`).toBeLessThan(Math.min(...hosts.map(crossingAt)));
    expect(week.reason).toContain("7 days old");
    expect(month.reason).toContain("30 days old");
    expect(month.reason).not.toContain("needs update");
    expect(alarm).not.toBeNull();
    expect(alarm!).toBeLessThanOrEqual(Math.min(...hosts.map(crossingAt)));

    // A clock-driven event names the host and nothing else: no presence, no report.
    const clockEvents = () =>
      socket.events.filter((e) => e.type === "host" && hosts.some((h) => h.name === e.host) && e.online === undefined && e.reportedAt === undefined);
    const pushedBefore = clockEvents().length;
    expect(pushedBefore).toBe(0);
    const lastCrossing = Math.max(...hosts.map(crossingAt));
    await eventually(
      "the alarm to push both crossings",
      async () => {
        // Once due, the alarm is run here too, in case it has not fired by itself; running it again is harmless.
        if (Date.now() >= lastCrossing) await runDurableObjectAlarm(stub());
        return clockEvents().length - pushedBefore >= 2;
      },
      { timeoutMs: (MARGIN_SECONDS + 30) * 1000 },
    );
    const pushed = clockEvents().slice(pushedBefore);
    expect(new Set(pushed.map((e) => (e.type === "host" ? e.host : "")))).toEqual(new Set(["lock-week", "lock-month"]));

    expect((await lockReason("lock-week")).reason).toContain("8 days old, consider updating");
    expect(await lockReason("lock-month")).toMatchObject({ state: "yellow", reason: expect.stringContaining("31 days old: needs update") });
    socket.close();
  }, 60_000);

  it("costs nothing per poll: polls read no lock data from D1, a changed report alone updates the clock", async () => {
    const { token } = await createHost("lock-quiet");
    const lastModified = Math.floor(Date.now() / 1000) - 2 * DAY;
    const report = sampleReport({ hostname: "lock-quiet", lock: { hash: { value: "b".repeat(64) }, lastModified: { nixpkgs: lastModified } } });
    const first = await agentFetch(token, "/poll?wait=0", pollBody({ agentSession: "session-quiet", report }));
    expect(first.status, await first.clone().text()).toBe(200);
    const stats = async () => (await (await api("/api/stats")).json<{ counters: Record<string, number> }>()).counters;
    await expect.poll(async () => (await stats()).lockClockLoads).toBe(1);
    const before = await stats();
    for (let i = 0; i < 20; i++) expect((await agentFetch(token, "/poll?wait=0", pollBody({ agentSession: "session-quiet" }))).status).toBe(200);
    const after = await stats();
    expect(after.polls! - before.polls!).toBe(20);
    expect(after.lockClockLoads).toBe(1);
    expect(after.reportsStored).toBe(before.reportsStored);
    // The alarm waits for this host's lock to turn 8 days old (in six days), unless something else is due first.
    const alarm = await runInDurableObject(stub(), (_instance, state) => state.storage.getAlarm());
    expect(alarm).not.toBeNull();
    expect(alarm!).toBeLessThanOrEqual((lastModified + 8 * DAY) * 1000);
  });

  it("pushes a command passing its deadline as timed-out, from the alarm", async () => {
    const socket = await dashboard();
    const { token } = await createHost("deadline-host");
    expect((await api("/api/hosts/deadline-host/commands", { method: "POST", json: { kind: "pull" } })).status).toBe(202);
    const { commands } = PollResponse.parse(await (await agentFetch(token, "/poll?wait=0", pollBody({ agentSession: "session-deadline" }))).json());
    const id = commands[0]!.id;
    await runInDurableObject(stub(), (_instance, state) => {
      state.storage.sql.exec("update commands set deadline_at = ? where id = ?", new Date(Date.now() - 1000).toISOString(), id);
    });
    expect(await runDurableObjectAlarm(stub())).toBe(true);
    await expect.poll(() => socket.events.some((e) => e.type === "command" && e.command.id === id && e.command.state === "timed-out")).toBe(true);
    socket.close();
  });
});
