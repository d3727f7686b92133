/**
 * Host incidents through the real coordinator and Notifier inside workerd: reports (and a failed
 * switch) turning hosts red and green reach a webhook receiver — caught at fetch, the network layer —
 * as exactly one alert and one recovery per incident, a flapping host included; an evicted coordinator
 * sends no alert twice and still owes its recovery; and an incident after a rollout is linked to it
 * in the Update history's API.
 */
import { env, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { HostView, NotificationEvent, RolloutIncident, RolloutView, SettingsResponse, type Report } from "../../common/protocol.ts";
import { eventually } from "../support/wait.ts";
import { agentFetch, api, createHost, pollBody, queueCommand, sampleReport } from "./helpers.ts";

const stub = () => env.COORDINATOR.getByName("fleet");
const RECEIVER = "http://127.0.0.1:9/alerts/in";
/** The quiet period before a recovery: short, for a test. */
const RECOVER_AFTER_SECONDS = 3;
/** The flapping host's: longer than any gap between two of its reports on a loaded machine, which would end the incident mid-flap. */
const FLAP_RECOVER_AFTER_SECONDS = 10;

/** Every event the webhook receiver got, parsed from its body (the generic webhook's body is the event). */
const received: NotificationEvent[] = [];
const realFetch = globalThis.fetch;

beforeAll(async () => {
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const request = new Request(input, init);
    if (!request.url.startsWith(RECEIVER)) return realFetch(request);
    received.push(NotificationEvent.parse(await request.json()));
    return new Response("ok");
  });
  const { settings } = SettingsResponse.parse(await (await api("/api/settings")).json());
  const res = await api("/api/settings", {
    method: "PUT",
    json: { ...settings, notifications: [...settings.notifications, { kind: "webhook", id: "ch_alerts_hook", url: RECEIVER, events: ["host-red", "tests-failed", "disk-low", "host-recovered"] }] },
  });
  expect(res.status, await res.clone().text()).toBe(200);
  await quietPeriod(RECOVER_AFTER_SECONDS);
});
afterAll(() => {
  vi.restoreAllMocks();
});

async function quietPeriod(seconds: number): Promise<void> {
  const { settings } = SettingsResponse.parse(await (await api("/api/settings")).json());
  const res = await api("/api/settings", { method: "PUT", json: { ...settings, alerts: { ...settings.alerts, recoverAfterSeconds: seconds } } });
  expect(res.status, await res.clone().text()).toBe(200);
}

const SYSTEM = "/nix/store/abc-nixos-system-hsb0";
let serial = 0;

/** A report whose last test run passed or failed; each one new, so the coordinator stores and judges it. */
function testsReport(name: string, passed: boolean, over: Partial<Report> = {}, autoRunAfterSwitch = false): Report {
  serial++;
  return sampleReport({
    hostname: name,
    tests: {
      configured: true,
      autoRunAfterSwitch,
      last: {
        system: SYSTEM,
        finishedAt: new Date(Date.now() - 1000 + serial).toISOString(),
        results: [{ name: "smoke", passed, exitCode: passed ? 0 : 1, durationMs: serial, output: "" }],
      },
    },
    ...over,
  });
}

async function report(token: string, session: string, body: Report): Promise<void> {
  const res = await agentFetch(token, "/poll?wait=0", pollBody({ agentSession: session, report: body }));
  expect(res.status, await res.clone().text()).toBe(200);
}

const ofHost = (host: string) => received.filter((event) => event.host === host);
const kinds = (host: string) => ofHost(host).map((event) => (event.event === "host-recovered" ? `recovered:${String(event.details.incident)}` : event.event));
const openIncidents = (hostId: string) =>
  runInDurableObject(stub(), (_instance, state) => state.storage.sql.exec("SELECT kind FROM incidents WHERE host_id = ?", hostId).toArray().map((row) => String(row.kind)));
const outboxSize = () => runInDurableObject(stub(), (_instance, state) => Number(state.storage.sql.exec("SELECT count(*) AS n FROM outbox").one().n));

/** Waits until the host's recoveries reached the receiver, then until nothing more is on its way. */
/** Starts a rollout of `commit` to the host and plays the agent's pull-switch through to its finish; the rollout as the API answered it. */
async function switchedByRollout(token: string, session: string, name: string, commit: string): Promise<RolloutView> {
  const started = await api("/api/rollouts", { method: "POST", json: { commit, hosts: [name], ignoreWindows: true } });
  expect(started.status, await started.clone().text()).toBe(201);
  const rollout = RolloutView.parse((await started.json<{ rollout: unknown }>()).rollout);
  const polled = await agentFetch(token, "/poll?wait=0", pollBody({ agentSession: session }));
  const command = z.object({ commands: z.array(z.object({ id: z.string(), kind: z.string() })) }).parse(await polled.json()).commands.find((c) => c.kind === "pull-switch");
  expect(command).toBeDefined();
  const finished = await agentFetch(token, `/commands/${command!.id}/events`, {
    type: "finished",
    at: new Date().toISOString(),
    outcome: "succeeded",
    exitCode: 0,
    result: { commitBefore: "a".repeat(40), commitAfter: commit },
  });
  expect(finished.status).toBe(200);
  return rollout;
}

async function settled(host: string, hostId: string, recoveries: number): Promise<void> {
  await eventually(`${recoveries} recoveries of ${host} received`, () => ofHost(host).filter((e) => e.event === "host-recovered").length >= recoveries, {
    timeoutMs: 30_000,
    details: () => JSON.stringify(kinds(host)),
  });
  await eventually("no incident open and the outbox empty", async () => (await openIncidents(hostId)).length === 0 && (await outboxSize()) === 0);
}

describe("host incidents reach a webhook once per incident", () => {
  it("a host reporting /boot below alerts.diskLowBelowBytes sends one disk-low, shows the warning, and recovers once it has room", async () => {
    const name = "fullboot";
    const { token, id } = await createHost(name);
    const MiB = 1024 ** 2;
    const disk = (bootFree: number): Report["disk"] => ({
      store: { path: "/nix/store", freeBytes: 40 * 1024 * MiB, totalBytes: 100 * 1024 * MiB },
      boot: { path: "/boot", freeBytes: bootFree, totalBytes: 512 * MiB },
    });
    // The fleet's threshold is 1 GiB by default; a small ESP is under it even when healthy, so the fleet lowers it.
    const { settings } = SettingsResponse.parse(await (await api("/api/settings")).json());
    expect(settings.alerts.diskLowBelowBytes).toBe(1024 * MiB);
    const put = await api("/api/settings", { method: "PUT", json: { ...settings, alerts: { ...settings.alerts, diskLowBelowBytes: 64 * MiB } } });
    expect(put.status, await put.clone().text()).toBe(200);

    await report(token, "s-disk-session", sampleReport({ hostname: name, disk: disk(38 * MiB) }));
    await eventually("the disk-low alert received", () => kinds(name).includes("disk-low"), { details: () => JSON.stringify(kinds(name)) });
    const view = HostView.parse(await (await api(`/api/hosts/${name}`)).json());
    expect(view.diskLow).toBe("disk low: /boot 38 MiB free");
    // Still low: the same incident, nothing more sent.
    await report(token, "s-disk-session", sampleReport({ hostname: name, disk: disk(37 * MiB) }));
    await report(token, "s-disk-session", sampleReport({ hostname: name, disk: disk(300 * MiB) }));
    await settled(name, id, 1);
    expect(kinds(name)).toEqual(["disk-low", "recovered:disk-low"]);
    expect(ofHost(name)[0]).toMatchObject({ title: "fullboot is low on disk space", details: { reason: "disk low: /boot 38 MiB free" } });
    expect(HostView.parse(await (await api(`/api/hosts/${name}`)).json()).diskLow).toBeNull();
    const restore = SettingsResponse.parse(await (await api("/api/settings")).json()).settings;
    await api("/api/settings", { method: "PUT", json: { ...restore, alerts: { ...restore.alerts, diskLowBelowBytes: 1024 * MiB } } });
  });


  // 60 s: the test waits out the flapping host's quiet period itself (FLAP_RECOVER_AFTER_SECONDS).
  it("a host whose tests flap red/green ten times sends one tests-failed and one host-recovered", async () => {
    const name = "flapper";
    const { token, id } = await createHost(name);
    await quietPeriod(FLAP_RECOVER_AFTER_SECONDS);
    await report(token, "s-flap-session", testsReport(name, true));
    const flapsStarted = Date.now();
    for (let i = 0; i < 10; i++) {
      await report(token, "s-flap-session", testsReport(name, false));
      await report(token, "s-flap-session", testsReport(name, true));
    }
    const flapping = Date.now() - flapsStarted;
    await settled(name, id, 1);
    await quietPeriod(RECOVER_AFTER_SECONDS);
    expect(flapping, "ten flaps within a minute").toBeLessThan(60_000);
    expect(kinds(name)).toEqual(["tests-failed", "recovered:tests-failed"]);
    const [alert, recovery] = ofHost(name);
    expect(alert).toMatchObject({ title: "flapper's tests failed", id: expect.stringMatching(/^tests-failed:flapper:/) });
    expect(recovery!.id).toBe(`host-recovered:${alert!.id}`);
    // The quiet period counted from the last green: the recovery is never sooner.
    expect(Date.parse(recovery!.at) - Date.parse(alert!.at)).toBeGreaterThanOrEqual(FLAP_RECOVER_AFTER_SECONDS * 1000);
  }, 60_000);

  it("a second incident after the quiet period alerts again, with its own recovery", async () => {
    const name = "twice";
    const { token, id } = await createHost(name);
    await report(token, "s-twice-session", testsReport(name, false));
    await report(token, "s-twice-session", testsReport(name, true));
    await settled(name, id, 1);
    await report(token, "s-twice-session", testsReport(name, false));
    await report(token, "s-twice-session", testsReport(name, true));
    await settled(name, id, 2);
    expect(kinds(name)).toEqual(["tests-failed", "recovered:tests-failed", "tests-failed", "recovered:tests-failed"]);
    expect(new Set(ofHost(name).map((e) => e.id)).size).toBe(4);
  });

  it("a failed switch turns the host red (host-red, once); a report of another running system recovers it", async () => {
    const name = "switcher";
    const { token, id } = await createHost(name);
    await report(token, "s-sw-session", testsReport(name, true));
    const queued = await queueCommand(name, "switch");
    expect(queued.status).toBe(202);
    const { command } = z.object({ command: z.object({ id: z.string() }) }).parse(await queued.json());
    await report(token, "s-sw-session", testsReport(name, true));
    const finished = await agentFetch(token, `/commands/${command.id}/events`, {
      type: "finished",
      at: new Date().toISOString(),
      outcome: "failed",
      exitCode: 1,
      error: "error: builder for '/nix/store/x-nixos-system' failed",
      result: { systemBefore: SYSTEM, systemAfter: SYSTEM },
    });
    expect(finished.status).toBe(200);
    await eventually("host-red received", () => kinds(name).includes("host-red"), { details: () => JSON.stringify(kinds(name)) });
    // The same red reported again is the same incident.
    await report(token, "s-sw-session", testsReport(name, true));
    const fixed = "/nix/store/def-nixos-system-switcher";
    await report(token, "s-sw-session", testsReport(name, true, { system: { current: { value: fixed }, builtFromCommit: "a".repeat(40) } }));
    await settled(name, id, 1);
    expect(kinds(name)).toEqual(["host-red", "recovered:host-red"]);
    expect(ofHost(name)[0]!.text).toContain("System: switch failed");
  });
});

describe("an evicted coordinator keeps its incidents", () => {
  it("sends no second alert for a red seen again after the eviction, and still sends the one recovery", async () => {
    const name = "evicted";
    const { token, id } = await createHost(name);
    await report(token, "s-ev-session", testsReport(name, false));
    await eventually("the alert received", () => kinds(name).length === 1);
    await evictDurableObject(stub());
    await report(token, "s-ev-session", testsReport(name, false));
    await report(token, "s-ev-session", testsReport(name, true));
    // Evicted again inside the quiet period: the recovery it owes comes from storage and the alarm.
    await evictDurableObject(stub());
    await settled(name, id, 1);
    expect(kinds(name)).toEqual(["tests-failed", "recovered:tests-failed"]);
  });
});

describe("the Update history links a host that turned red after a rollout", () => {
  const Incidents = z.object({ incidents: z.array(RolloutIncident) });

  it("a host whose tests fail after the rollout switched it is linked to that rollout, and its recovery links nothing more", async () => {
    const name = "linked";
    const { token, id } = await createHost(name);
    const commit = "c".repeat(40);
    // The agent runs the tests after its switch, so the rollout sends no test command of its own.
    await report(token, "s-link-session", testsReport(name, true, {}, true));
    // The agent's side of the pull-switch, then a report at the rollout's commit with its tests green.
    const rollout = await switchedByRollout(token, "s-link-session", name, commit);
    const atCommit = { repo: { commit: { value: commit }, branch: { value: "main" }, dirty: false }, system: { current: { value: SYSTEM }, builtFromCommit: commit } };
    await report(token, "s-link-session", testsReport(name, true, atCommit, true));
    // Verified: the canary soaks (or is done), the switch is the rollout's.
    let hostState: string | undefined;
    await eventually(
      "the host verified",
      async () => {
        const view = RolloutView.parse((await (await api(`/api/rollouts/${rollout.id}`)).json<{ rollout: unknown }>()).rollout);
        hostState = view.waves.flatMap((w) => w.hosts).find((h) => h.name === name)?.state;
        return hostState === "soaking" || hostState === "done";
      },
      { details: () => `host state: ${hostState}` },
    );

    await report(token, "s-link-session", testsReport(name, false, atCommit, true));
    await eventually("the alert received", () => kinds(name).includes("tests-failed"), { details: () => JSON.stringify(kinds(name)) });
    const res = await api(`/api/rollouts/incidents?ids=${rollout.id},ro_nosuchrollout0`);
    expect(res.status).toBe(200);
    const { incidents } = Incidents.parse(await res.json());
    expect(incidents).toEqual([
      { rolloutId: rollout.id, host: name, event: "tests-failed", at: ofHost(name)[0]!.at, switchedAt: expect.any(String), reason: "tests failed: smoke" },
    ]);
    expect(Date.parse(incidents[0]!.switchedAt)).toBeLessThanOrEqual(Date.parse(incidents[0]!.at));

    // The recovery links nothing more.
    await report(token, "s-link-session", testsReport(name, true, atCommit, true));
    await settled(name, id, 1);
    expect(Incidents.parse(await (await api(`/api/rollouts/incidents?ids=${rollout.id}`)).json()).incidents).toHaveLength(1);
  });

  it("a host failing its rollout's verification is judged by its incidents with the rollback that verdict sent: its alert says the rollback is queued", async () => {
    const name = "rolledback";
    const { token } = await createHost(name);
    const commit = "d".repeat(40);
    const before = SettingsResponse.parse(await (await api("/api/settings")).json()).settings;
    const saved = await api("/api/settings", { method: "PUT", json: { ...before, rollback: { strategy: "alert-only", rollbackHosts: true } } });
    expect(saved.status, await saved.clone().text()).toBe(200);
    try {
      await report(token, "s-rb-session", testsReport(name, true, {}, true));
      await switchedByRollout(token, "s-rb-session", name, commit);
      // The verifying report says main does not evaluate here: System red, so in that one judgement the rollout fails and queues a rollback
      // to this host; its incidents must see that rollback, and the host-red alert goes out at once (alertAfterSeconds 0).
      const atCommit = {
        repo: { commit: { value: commit }, branch: { value: "main" }, dirty: false },
        system: { current: { value: SYSTEM }, builtFromCommit: commit },
        desired: { source: "local" as const, latest: { commit, tree: null, evaluatedAt: new Date().toISOString(), error: "boom" }, evaluating: null },
      };
      await report(token, "s-rb-session", testsReport(name, true, atCommit, true));
      await eventually("the alert received", () => kinds(name).includes("host-red"), { details: () => JSON.stringify(kinds(name)) });
      expect(ofHost(name).find((event) => event.event === "host-red")?.details).toMatchObject({ reason: "System: main does not build on this host: boom (rollback queued)" });
    } finally {
      const current = SettingsResponse.parse(await (await api("/api/settings")).json()).settings;
      const restored = await api("/api/settings", { method: "PUT", json: { ...current, rollback: before.rollback } });
      expect(restored.status, await restored.clone().text()).toBe(200);
    }
  });

  it("refuses a query without rollout ids, or with one that is not an id, with a clear error", async () => {
    for (const query of ["", "?ids=", "?ids=nope", `?ids=${Array.from({ length: 101 }, (_, i) => `ro_aaaaaaaaaa${i}`).join(",")}`]) {
      const res = await api(`/api/rollouts/incidents${query}`);
      expect(res.status, `${query}: ${await res.clone().text()}`).toBe(400);
      expect(await res.json()).toMatchObject({ error: { code: expect.any(String), message: expect.any(String) } });
    }
  });
});
