// Reboots and activation modes through the real coordinator (docs/hosts.md "Activation modes and
// reboots"): a reboot goes out only inside the host's maintenance window unless forced, a switch
// carries its activation mode (its own, or the rollout's) to the agent, and a reboot that never comes
// back ends lost. Storage is per test file: each test sets the windows it needs.
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CommandView, ErrorBody, PollResponse, RolloutView, Settings, WEEKDAYS, type MaintenanceWindow } from "../../common/protocol.ts";
import { agentFetch, api, createHost, pollBody, sampleReport } from "./helpers.ts";

const stub = () => env.COORDINATOR.getByName("fleet");
const sha = (n: number) => n.toString(16).padStart(2, "0").repeat(20);

async function setWindows(windows: MaintenanceWindow[]): Promise<void> {
  const current = Settings.parse((await (await api("/api/settings")).json<{ settings: unknown }>()).settings);
  const res = await api("/api/settings", { method: "PUT", json: { ...current, windows } });
  expect(res.status, await res.clone().text()).toBe(200);
}

/** A window on tomorrow's weekday only (UTC): closed now, whatever the time. */
function closedWindow(): { window: MaintenanceWindow; day: string } {
  // WEEKDAYS starts on Monday and getUTCDay() on Sunday: today's index plus one is getUTCDay().
  const tomorrow = WEEKDAYS[new Date().getUTCDay()]!;
  const day = tomorrow.charAt(0).toUpperCase() + tomorrow.slice(1);
  return { window: { days: [tomorrow], start: "02:00", end: "03:00", timeZone: "UTC" }, day };
}

/** Two windows that together cover every minute of every day. */
const ALWAYS_OPEN: MaintenanceWindow[] = [
  { days: [...WEEKDAYS], start: "00:00", end: "12:00", timeZone: "UTC" },
  { days: [...WEEKDAYS], start: "12:00", end: "00:00", timeZone: "UTC" },
];

const command = (host: string, json: Record<string, unknown>) => api(`/api/hosts/${host}/commands`, { method: "POST", json });
const queued = async (res: Response) => {
  expect(res.status, await res.clone().text()).toBe(202);
  return CommandView.parse((await res.json<{ command: unknown }>()).command);
};
const hostCommands = async (host: string) => (await (await api(`/api/hosts/${host}/commands`)).json<{ commands: CommandView[] }>()).commands;
const pollNow = async (token: string, session: string, extra: Parameters<typeof pollBody>[0] = {}) => {
  const res = await agentFetch(token, "/poll?wait=0", pollBody({ agentSession: session, ...extra }));
  expect(res.status).toBe(200);
  return PollResponse.parse(await res.json());
};

describe("reboots and the maintenance window", () => {
  it("refuses a reboot outside the host's window with 409 outside_maintenance_window naming the next window, queues nothing, and sends it with force", async () => {
    const { window, day } = closedWindow();
    await setWindows([window]);
    await createHost("reboot-closed");
    const refused = await command("reboot-closed", { kind: "reboot" });
    expect(refused.status).toBe(409);
    const { error } = ErrorBody.parse(await refused.json());
    expect(error.code).toBe("outside_maintenance_window");
    expect(error.message).toContain("reboot-closed is outside its maintenance window: a reboot goes out only inside it");
    expect(error.message).toContain(`its next window opens ${day} 02:00 UTC (${day} 02:00–03:00 UTC)`);
    expect(error.message).toContain(`Send it with "force": true to reboot now`);
    expect(await hostCommands("reboot-closed")).toEqual([]);

    const forced = await queued(await command("reboot-closed", { kind: "reboot", force: true }));
    expect(forced).toMatchObject({ kind: "reboot", state: "queued" });
    const audit = await (await api("/api/audit")).json<{ entries: Array<{ action: string; target: string; result: string; details: unknown }> }>();
    const entries = audit.entries.filter((e) => e.action === "command.reboot" && e.target === "reboot-closed");
    expect(entries.map((e) => e.result)).toEqual(expect.arrayContaining([expect.stringContaining("refused: reboot-closed is outside"), "queued"]));
  });

  it("lets a reboot through inside the window, and a window for other hosts does not hold this one back", async () => {
    await setWindows(ALWAYS_OPEN);
    await createHost("reboot-open");
    expect((await queued(await command("reboot-open", { kind: "reboot" }))).kind).toBe("reboot");
    await setWindows([{ ...closedWindow().window, hosts: ["someone-else"] }]);
    await createHost("reboot-unwindowed");
    expect((await queued(await command("reboot-unwindowed", { kind: "reboot" }))).kind).toBe("reboot");
  });

  it("refuses a switch that may reboot (its own mode or the host's reported one) outside the window, and sends boot or switch with the mode in the delivery", async () => {
    await setWindows([closedWindow().window]);
    const own = await createHost("mode-own");
    const refused = await command("mode-own", { kind: "pull-switch", activation: "boot-then-reboot-if-needed" });
    expect(refused.status).toBe(409);
    const { error } = ErrorBody.parse(await refused.json());
    expect(error.code).toBe("outside_maintenance_window");
    expect(error.message).toContain(`Send it with "activation": "boot" to make the new system the boot default now`);
    const boot = await queued(await command("mode-own", { kind: "pull-switch", activation: "boot" }));
    const delivered = (await pollNow(own.token, "session-mode-own")).commands;
    expect(delivered).toEqual([expect.objectContaining({ id: boot.id, kind: "pull-switch", activation: "boot" })]);

    const reported = await createHost("mode-reported");
    await pollNow(reported.token, "session-mode-reported", { report: sampleReport({ hostname: "mode-reported", activation: "boot-then-reboot-if-needed" }) });
    expect((await command("mode-reported", { kind: "switch" })).status).toBe(409);
    const plain = await queued(await command("mode-reported", { kind: "switch", activation: "switch" }));
    expect((await pollNow(reported.token, "session-mode-reported")).commands).toEqual([expect.objectContaining({ id: plain.id, activation: "switch" })]);
  });

  it("refuses an activation mode on a command kind that does not switch, with a 400 naming the field", async () => {
    await createHost("mode-wrong-kind");
    const res = await command("mode-wrong-kind", { kind: "reboot", activation: "boot" });
    expect(res.status).toBe(400);
    expect(JSON.stringify(ErrorBody.parse(await res.json()))).toContain("only switch and pull-switch take an activation mode");
    expect(await hostCommands("mode-wrong-kind")).toEqual([]);
  });
});

describe("a reboot that does not come back", () => {
  it("ends lost at its deadline, from the alarm, saying the host did not come back", async () => {
    await setWindows([]);
    const { token } = await createHost("reboot-gone");
    const reboot = await queued(await command("reboot-gone", { kind: "reboot" }));
    const { commands } = await pollNow(token, "session-reboot-gone");
    expect(commands.map((c) => c.id)).toEqual([reboot.id]);
    // The verification's deadline: ten minutes from the delivery.
    const left = Date.parse(commands[0]!.deadlineAt) - Date.now();
    expect(left).toBeGreaterThan(9 * 60_000);
    expect(left).toBeLessThanOrEqual(10 * 60_000);
    const started = await agentFetch(token, `/commands/${reboot.id}/events`, { type: "started", at: new Date().toISOString() });
    expect(started.status).toBe(200);
    await runInDurableObject(stub(), (_instance, state) => {
      state.storage.sql.exec("update commands set deadline_at = ? where id = ?", new Date(Date.now() - 1000).toISOString(), reboot.id);
    });
    expect(await runDurableObjectAlarm(stub())).toBe(true);
    const [ended] = (await hostCommands("reboot-gone")).filter((c) => c.id === reboot.id);
    expect(ended?.state).toBe("lost");
    expect(ended?.error).toMatch(/^the host did not come back from the reboot by the deadline \(.+\): no agent reported a new boot$/);
  });
});

describe("a switch that reboots the host", () => {
  const SYSTEM = "/nix/store/2123456789abcdfghijklmnpqrsvwxyz-nixos-system-reboot-switch";
  /** A boot-then-reboot-if-needed switch delivered and started on a new host; its agent then says it reboots. */
  async function rebootingSwitch(name: string) {
    await setWindows([]);
    const { token } = await createHost(name);
    const sent = await queued(await command(name, { kind: "switch", activation: "boot-then-reboot-if-needed" }));
    const [delivery] = (await pollNow(token, `session-${name}`)).commands;
    expect(delivery).toMatchObject({ id: sent.id, activation: "boot-then-reboot-if-needed" });
    // Without the event a switch has its own half hour.
    expect(Date.parse(delivery!.deadlineAt) - Date.now()).toBeGreaterThan(29 * 60_000);
    const events = (body: unknown) => agentFetch(token, `/commands/${sent.id}/events`, body);
    expect((await events({ type: "started", at: new Date().toISOString() })).status).toBe(200);
    const before = Date.now();
    const rebooting = await events({ type: "rebooting", at: new Date().toISOString(), system: SYSTEM });
    expect(rebooting.status, await rebooting.clone().text()).toBe(200);
    const [view] = (await hostCommands(name)).filter((c) => c.id === sent.id);
    return { token, id: sent.id, before, view: view!, events };
  }

  it("gets the reboot's ten-minute deadline from the agent's rebooting event, is audited as rebooting to activate the system, and ends lost at it from the alarm", async () => {
    const { id, before, view, events } = await rebootingSwitch("reboot-switch-gone");
    expect(view.state).toBe("running");
    const deadline = Date.parse(view.deadlineAt);
    expect(deadline).toBeGreaterThanOrEqual(before + 10 * 60_000);
    expect(deadline).toBeLessThanOrEqual(Date.now() + 10 * 60_000);
    // The object's alarm was moved up to the new deadline (from the switch's half hour).
    const alarm = await runInDurableObject(stub(), (_instance, state) => state.storage.getAlarm());
    expect(alarm).not.toBeNull();
    expect(alarm!).toBeLessThanOrEqual(deadline);
    await expect
      .poll(async () => (await (await api("/api/audit")).json<{ entries: Array<{ action: string; target: string; details: unknown }> }>()).entries.filter((e) => e.action === "host.rebooting" && e.target === "reboot-switch-gone"))
      .toEqual([expect.objectContaining({ details: expect.objectContaining({ commandId: id, kind: "switch", system: SYSTEM, message: `rebooting to activate ${SYSTEM}` }) })]);
    // The event again (its answer lost on the way back): the deadline stays where the first one put it.
    expect((await events({ type: "rebooting", at: new Date().toISOString(), system: SYSTEM })).status).toBe(200);
    expect((await hostCommands("reboot-switch-gone")).find((c) => c.id === id)?.deadlineAt).toBe(view.deadlineAt);

    await runInDurableObject(stub(), (_instance, state) => {
      state.storage.sql.exec("update commands set deadline_at = ? where id = ?", new Date(Date.now() - 1000).toISOString(), id);
    });
    expect(await runDurableObjectAlarm(stub())).toBe(true);
    const ended = (await hostCommands("reboot-switch-gone")).find((c) => c.id === id);
    expect(ended?.state).toBe("lost");
    expect(ended?.error).toMatch(/^the host did not come back from the reboot by the deadline \(.+\): no agent reported a new boot$/);
  });

  it("is verified when the host comes back: the new agent holds it and its end stands, not lost", async () => {
    const { token, id, events } = await rebootingSwitch("reboot-switch-back");
    // The agent that starts after the reboot: a new session that holds the switch while it checks the boot.
    await pollNow(token, "session-reboot-switch-back-after", { activeCommands: [id] });
    expect((await hostCommands("reboot-switch-back")).find((c) => c.id === id)?.state).toBe("running");
    const finished = await events({ type: "finished", at: new Date().toISOString(), outcome: "succeeded", exitCode: 0, result: { systemAfter: SYSTEM } });
    expect(finished.status).toBe(200);
    const ended = (await hostCommands("reboot-switch-back")).find((c) => c.id === id);
    expect(ended).toMatchObject({ state: "succeeded", error: null, result: { systemAfter: SYSTEM } });
  });

  it("refuses a rebooting event for a command that does not reboot with 409 not_a_reboot, and leaves its deadline", async () => {
    await setWindows([]);
    const { token } = await createHost("reboot-gc");
    const gc = await queued(await command("reboot-gc", { kind: "gc" }));
    const [delivery] = (await pollNow(token, "session-reboot-gc")).commands;
    const res = await agentFetch(token, `/commands/${gc.id}/events`, { type: "rebooting", at: new Date().toISOString(), system: "/nix/store/x" });
    expect(res.status).toBe(409);
    expect(ErrorBody.parse(await res.json()).error).toMatchObject({ code: "not_a_reboot", message: `command ${gc.id} is a gc: only a reboot or a switch reboots the host` });
    expect((await hostCommands("reboot-gc")).find((c) => c.id === gc.id)?.deadlineAt).toBe(delivery!.deadlineAt);
  });
});

describe("a rollout's activation mode", () => {
  it("is carried into every switch the rollout sends, and a switch lost in a reboot fails the rollout naming the host", async () => {
    await setWindows([]);
    const { token } = await createHost("roll-boot");
    const session = "session-roll-boot";
    const old = sha(0x0b);
    await pollNow(token, session, {
      report: sampleReport({ hostname: "roll-boot", repo: { commit: { value: old }, branch: { value: "main" }, dirty: false }, rollout: { autoUpdate: true, priority: 1, canary: false } }),
    });
    const res = await api("/api/rollouts", { method: "POST", json: { commit: sha(0x0c), hosts: ["roll-boot"], activation: "boot-then-reboot-if-needed" } });
    expect(res.status, await res.clone().text()).toBe(201);
    const rollout = RolloutView.parse((await res.json<{ rollout: unknown }>()).rollout);
    const { commands } = await pollNow(token, session);
    const sent = commands.find((c) => c.kind === "pull-switch");
    expect(sent).toMatchObject({ activation: "boot-then-reboot-if-needed", commit: sha(0x0c) });
    expect((await agentFetch(token, `/commands/${sent!.id}/events`, { type: "started", at: new Date().toISOString() })).status).toBe(200);
    // The host rebooted and its new agent does not hold the switch: the control plane ends it lost.
    await pollNow(token, "session-roll-boot-after", { activeCommands: [] });
    const view = RolloutView.parse((await (await api(`/api/rollouts/${rollout.id}`)).json<{ rollout: unknown }>()).rollout);
    expect(view.state).toBe("failed");
    expect(view.failure).toMatchObject({ host: "roll-boot", commandId: sent!.id });
  });

  it("in boot mode a host passes when its switch set the boot default, without waiting for a report of the system it runs only after a reboot", async () => {
    await setWindows([]);
    const { token } = await createHost("roll-bootonly");
    const session = "session-roll-bootonly";
    const old = sha(0x0d);
    const commit = sha(0x0e);
    await pollNow(token, session, {
      report: sampleReport({ hostname: "roll-bootonly", repo: { commit: { value: old }, branch: { value: "main" }, dirty: false } }),
    });
    const res = await api("/api/rollouts", { method: "POST", json: { commit, hosts: ["roll-bootonly"], activation: "boot" } });
    expect(res.status, await res.clone().text()).toBe(201);
    const rollout = RolloutView.parse((await res.json<{ rollout: unknown }>()).rollout);
    const sent = (await pollNow(token, session)).commands.find((c) => c.kind === "pull-switch");
    expect(sent).toMatchObject({ activation: "boot" });
    const events = (body: unknown) => agentFetch(token, `/commands/${sent!.id}/events`, body);
    expect((await events({ type: "started", at: new Date().toISOString() })).status).toBe(200);
    const running = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-roll-bootonly";
    const next = "/nix/store/1123456789abcdfghijklmnpqrsvwxyz-nixos-system-roll-bootonly";
    const finished = await events({
      type: "finished",
      at: new Date().toISOString(),
      outcome: "succeeded",
      exitCode: 0,
      result: { commitBefore: old, commitAfter: commit, systemBefore: running, systemAfter: running, bootDefault: next },
    });
    expect(finished.status).toBe(200);
    const view = RolloutView.parse((await (await api(`/api/rollouts/${rollout.id}`)).json<{ rollout: unknown }>()).rollout);
    // Its wave (the canary) soaks: the host passed its gates on the switch's result alone, with no report after it.
    expect(view.state).toBe("soaking");
    expect(view.waves.flatMap((w) => w.hosts)).toEqual([expect.objectContaining({ name: "roll-bootonly", state: "soaking", reason: "the new system is the boot default; it runs after the next reboot" })]);
  });
});
